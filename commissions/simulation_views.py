"""*Preview the effect* (SPEC §13) on the Referral Partner Defaults page and the program page.

The page's preview button posts the page's own form, with the range to replay, here: the
form is validated as its Save validates it, a `SimulationRun` is queued
(`services.simulations.preview_create`), and the same page is shown again with the values
as typed (not saved: Save still posts to the page's own address) and the preview above the
Save button. The page's script polls the run's status (`SimulationStatusView`, JSON) for the
progress bar, then puts in the result, rendered here by the same template as a finished run
on the page (`staff/simulations/result.html`). Staff only, like every staff page; starting a
preview needs the permission the page's Save needs.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.views import View
from django.views.generic import TemplateView

from partners.forms import (
    PreviewRangeForm,
    ReferralDefaultsForm,
    add_service_errors,
    program_edit_form,
)
from partners.models import Program
from partners.selectors import defaults_get
from partners.views import (
    CHANGE_DEFAULTS_PERMISSION,
    DefaultsView,
    ProgramUpdateView,
    StaffRequiredMixin,
)

from .csv_files import csv_response, csv_text
from .explain import explain_attribution
from .models import SimulationKind, SimulationRun, SimulationStatus
from .services.simulations import posted_form, preview_create
from .settings_selectors import simulation_runs

CSV_HEADER = ("partner", "name", "currency", "now", "proposed", "change")


def preview_start(
    request: HttpRequest, *, kind: str, program: Program | None, form: Any
) -> tuple[PreviewRangeForm, SimulationRun | None]:
    """Validate the page's form and the range; queue the run. A bad value puts its error on
    the form (naming the field) and nothing is written: the run is None then."""
    range_form = PreviewRangeForm(request.POST)
    form_valid = form.is_valid()
    if not (range_form.is_valid() and form_valid):
        return range_form, None
    try:
        run = preview_create(
            kind=kind,
            program=program,
            form_data=posted_form(request.POST),
            start=range_form.cleaned_data["preview_start"],
            end=range_form.cleaned_data["preview_end"],
            requested_by=request.user,
        )
    except ValidationError as error:
        add_service_errors(form, error)
        return range_form, None
    run.refresh_from_db()  # without a broker it ran in-process as the request committed
    if run.status == SimulationStatus.FAILED and run.error:
        # Refused by the rules that would save it: the page's field says so too.
        add_service_errors(form, ValidationError(_by_field(run.error)))
    return range_form, run


def _by_field(error: dict[str, list[str]]) -> dict[str, list[str]]:
    """A run's errors by the page's field names: the replay names a field of its proposal
    (`defaults.levels`, `programs[0].rates`)."""
    return {name.rpartition(".")[2]: messages for name, messages in error.items()}


def _labels(run: SimulationRun) -> dict[str, str]:
    """Each field of the run's form by its label, to name a field in an error."""
    if run.kind == SimulationKind.DEFAULTS:
        form = ReferralDefaultsForm(instance=defaults_get())
    elif run.program is not None:
        form = program_edit_form(run.program)
    else:
        return {}
    return {name: str(field.label) for name, field in form.fields.items()}


def _side(side: dict[str, Any], at: datetime) -> dict[str, Any]:
    """One side (now, or proposed) of an order that changes: its partners and lines, and
    why each partner was found, in words (`explain_attribution`, as the order page says)."""
    return {
        **side,
        "sale_words": explain_attribution(trace=side.get("sale_trace") or {}, at=at),
        "lead_words": explain_attribution(trace=side.get("lead_trace") or {}, at=at),
    }


def _change(change: str) -> dict[str, str]:
    """A change of money as shown: signed ("+2.50", or a minus sign), and which way it goes."""
    amount = Decimal(change)
    if amount > 0:
        return {"change_text": f"+{change}", "direction": "up"}
    if amount < 0:
        return {"change_text": f"\u2212{change[1:]}", "direction": "down"}
    return {"change_text": change, "direction": ""}


def result_context(run: SimulationRun) -> dict[str, Any]:
    """What `staff/simulations/result.html` shows of a run."""
    context: dict[str, Any] = {"run": run}
    if run.error:
        labels = _labels(run)
        context["errors"] = [
            (labels.get(name, "" if name == NON_FIELD_ERRORS else name), message)
            for name, messages in _by_field(run.error).items()
            for message in messages
        ]
    if run.answer:
        answer = run.answer
        orders = []
        for order in answer.get("orders_changed") or []:
            at = datetime.fromisoformat(order["occurred_at"])
            orders.append(
                {
                    **order,
                    "at": at,
                    "now": _side(order["now"], at),
                    "proposed": _side(order["proposed"], at),
                }
            )
        context.update(
            answer=answer,
            partners=[{**row, **_change(row["change"])} for row in answer["partners"]],
            total_change=_change(answer["change"])["change_text"],
            total_direction=_change(answer["change"])["direction"],
            orders_changed=orders,
            settings_changed=[
                {**change, "at": datetime.fromisoformat(change["at"])}
                for change in answer.get("settings_changed") or []
            ],
        )
    return context


def preview_context(run: SimulationRun | None) -> dict[str, Any] | None:
    """The page's preview panel: the run and, once it has finished, its result."""
    return None if run is None else result_context(run)


class DefaultsPreviewView(DefaultsView):
    """POST: preview the defaults form's values (the page shown again, not saved)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(CHANGE_DEFAULTS_PERMISSION):
            raise PermissionDenied("You may look at the defaults but not preview a change.")
        form = ReferralDefaultsForm(request.POST, instance=defaults_get())
        range_form, run = preview_start(
            request, kind=SimulationKind.DEFAULTS, program=None, form=form
        )
        return self.render_page(
            form, can_change=True, preview_form=range_form, preview=preview_context(run)
        )


class ProgramPreviewView(ProgramUpdateView):
    """POST: preview the program form's values (the page shown again, not saved)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()
        form = self.get_form(request.POST)
        range_form, run = preview_start(
            request, kind=SimulationKind.PROGRAM, program=self.object, form=form
        )
        context = self.get_context_data(
            form=form, preview_form=range_form, preview=preview_context(run)
        )
        return render(request, self.template_name, context)


def run_or_404(pk: Any) -> SimulationRun:
    return get_object_or_404(simulation_runs(), pk=pk)


class SimulationStatusView(StaffRequiredMixin, View):
    """A run's progress as JSON, for the page that polls it: `status`, `done`, `total`, and
    once it has finished the result's HTML (`html`)."""

    def get(self, request: HttpRequest, pk: Any) -> JsonResponse:
        run = run_or_404(pk)
        body: dict[str, Any] = {"status": run.status, "done": run.done, "total": run.total}
        if run.finished:
            body["html"] = render_to_string(
                "staff/simulations/result.html", {"preview": result_context(run)}, request
            )
        response = JsonResponse(body)
        response["Cache-Control"] = "no-store"
        return response


class SimulationDetailView(StaffRequiredMixin, TemplateView):
    """A run on a page of its own: the preview without the form (and without a script, the
    place to look again while a run is on its way)."""

    template_name = "staff/simulations/detail.html"
    section = "settings"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        run = run_or_404(self.kwargs["pk"])
        return super().get_context_data(preview=result_context(run), **kwargs)


class SimulationCsvView(StaffRequiredMixin, View):
    """The run's table per partner as CSV: code, name, currency, now, proposed, change."""

    def get(self, request: HttpRequest, pk: Any) -> HttpResponse:
        run = run_or_404(pk)
        if run.answer is None:
            raise Http404("This preview has no table (yet).")
        partners = run.answer["partners"]
        rows = (
            [
                csv_text(p["partner"]),
                csv_text(p["name"]),
                p["currency"],
                p["now"],
                p["proposed"],
                p["change"],
            ]
            for p in partners
        )
        return csv_response(f"preview-{run.created_at:%Y-%m-%d}-{run.pk}.csv", CSV_HEADER, rows)
