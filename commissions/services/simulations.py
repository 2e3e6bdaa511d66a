"""*Preview the effect* (SPEC §13): a what-if replay of the defaults or program page's unsaved
values, run in the background and kept in a `SimulationRun` row the page polls.

- `preview_proposal`: the posted form, validated as its Save validates it, as the proposal
  `commissions.replay.simulation_run` replays (its `defaults` and `programs`);
- `preview_create`: the run's row, queued for the task `commissions.tasks.run_simulation`
  once it commits (in-process right after the commit without a broker, SPEC §8);
- `preview_run`: the task's work: validate the stored form again, replay, record the answer.

Nothing here saves the defaults or a program: the forms only validate, the replay writes
nothing, and the only rows written are the run's.
"""

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from partners.forms import ReferralDefaultsForm, program_edit_form
from partners.models import Program
from partners.selectors import defaults_get
from referral_program.background import task_queue_on_commit

from ..ledger import day_after, day_start
from ..models import SimulationKind, SimulationRun, SimulationStatus
from ..replay import simulation_run

log = logging.getLogger(__name__)

RUNS_KEPT = timedelta(days=1)  # a run older than this is deleted when a new one is made
RUN_TASK = "commissions.tasks.run_simulation"
# Posted fields a proposal never reads: the CSRF token and the preview's own range.
NOT_PROPOSED = frozenset({"csrfmiddlewaretoken", "preview_start", "preview_end"})
FAILED_UNEXPECTEDLY = "The replay stopped on an unexpected error; try again, or a shorter range."


def posted_form(data: MultiValueDict) -> dict[str, list[str]]:
    """A posted form as JSON (every value of every field), without what no proposal reads."""
    return {name: values for name, values in data.lists() if name not in NOT_PROPOSED}


def error_messages(error: ValidationError) -> dict[str, list[str]]:
    """A ValidationError as field → messages (`__all__` for what names no field)."""
    if hasattr(error, "error_dict"):
        return {
            name: [str(m) for m in ValidationError(found).messages]
            for name, found in error.error_dict.items()
        }
    return {NON_FIELD_ERRORS: list(error.messages)}


def _valid(form: Any) -> Any:
    if not form.is_valid():
        raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
    return form


def preview_proposal(
    *, kind: str, program: Program | None, form_data: Mapping[str, list[str]]
) -> dict[str, Any]:
    """`simulation_run`'s `defaults` and `programs` for a page's posted form: the values its
    Save would hand `defaults_update` or `program_update`. Raises ValidationError naming
    each bad field, as the page's Save does."""
    data = MultiValueDict(dict(form_data))
    if kind == SimulationKind.DEFAULTS:
        form = _valid(ReferralDefaultsForm(data, instance=defaults_get()))
        return {"defaults": dict(form.cleaned_data), "programs": []}
    if program is None:
        raise ValidationError({"program": "No such program."})
    form = _valid(program_edit_form(program, data))
    return {"defaults": None, "programs": [{"program": program.pk, **form.service_arguments()}]}


@transaction.atomic
def preview_create(
    *,
    kind: str,
    program: Program | None,
    form_data: Mapping[str, list[str]],
    start: date,
    end: date,
    requested_by: AbstractBaseUser | None,
) -> SimulationRun:
    """A preview of the form's values over the whole UTC days `start` to `end`, queued.

    The form is validated first: a bad value raises ValidationError (naming its field) and
    nothing is written. Runs older than RUNS_KEPT are deleted here: a preview is looked at
    while the page is open, and nothing else needs it afterwards.
    """
    if start > end:
        raise ValidationError({"preview_end": "The end must not be before the start."})
    preview_proposal(kind=kind, program=program, form_data=form_data)
    now = timezone.now()
    SimulationRun.objects.filter(created_at__lt=now - RUNS_KEPT).delete()
    run = SimulationRun.objects.create(
        kind=kind,
        program=program,
        requested_by=requested_by,
        created_at=now,
        start=day_start(start),
        end=day_after(end),
        form_data=dict(form_data),
    )
    task_queue_on_commit(RUN_TASK, str(run.pk))
    return run


def _finish(run_id: Any, **fields: Any) -> None:
    SimulationRun.objects.filter(pk=run_id).update(finished_at=timezone.now(), **fields)


def preview_run(*, run_id: Any) -> str | None:
    """Replay a queued run and record its answer (or why it failed); its status then.

    Safe to run twice: only a queued run is started (the second run finds it running or
    finished and does nothing, answering None). The stored form is validated again, against
    the defaults or program as they are now. `done` and `total` are written after each batch
    of events, so the page's progress bar moves while the replay runs.
    """
    started = SimulationRun.objects.filter(pk=run_id, status=SimulationStatus.QUEUED).update(
        status=SimulationStatus.RUNNING
    )
    if not started:
        return None
    run = SimulationRun.objects.select_related("program").get(pk=run_id)

    def progress(done: int, total: int) -> None:
        SimulationRun.objects.filter(pk=run_id).update(done=done, total=total)

    try:
        proposal = preview_proposal(kind=run.kind, program=run.program, form_data=run.form_data)
        answer = simulation_run(
            start=run.start, end=run.end, detail=True, progress=progress, **proposal
        )
    except ValidationError as error:
        _finish(run_id, status=SimulationStatus.FAILED, error=error_messages(error))
        return SimulationStatus.FAILED
    except Exception:  # the page must hear that the run ended, whatever ended it
        log.exception("Simulation run %s failed", run_id)
        failed = {NON_FIELD_ERRORS: [FAILED_UNEXPECTEDLY]}
        _finish(run_id, status=SimulationStatus.FAILED, error=failed)
        return SimulationStatus.FAILED
    events = answer["events"]
    _finish(run_id, status=SimulationStatus.DONE, answer=answer, done=events, total=events)
    return SimulationStatus.DONE
