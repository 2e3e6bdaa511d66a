"""Web forms: the contact, its referral history and lead partner; pays nothing (SPEC §5.1).
The decision is the engine's (`commissions.intake.web_form_plan`), shared with the importer.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.utils import timezone

from ..intake import DatabaseReader, explicit, web_form_plan
from ..models import Event, EventKind
from .contacts import event_contact
from .events import Intake, event_context, event_record, plan_write


def web_form_record(
    *, data: Mapping[str, Any], payload: Mapping[str, Any], notify: bool = True
) -> Intake:
    """A web form: the contact, its referral history and lead partner. Pays nothing (§5.1)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    skipped = 0

    def handle(event: Event) -> dict:
        nonlocal skipped
        named = explicit(data.get("lead_partner"))
        engine, chains, tracked = event_context(data, at, named)
        reader = DatabaseReader()
        _, planned = event_contact(
            person=data["contact"],
            attribution=named or tracked.attribution,
            at=at,
            plan=lambda contact_pk, contact: web_form_plan(
                reader=reader, data=data, at=at, chains=chains, tracked=tracked,
                explicit_lead=named, contact_pk=contact_pk, contact=contact, event_pk=event.pk,
            ),
        )  # fmt: skip
        result, skipped = plan_write(
            event=event, plan=planned, engine=engine, chains=chains, at=at, notify=notify
        )
        return result

    intake = event_record(
        kind=EventKind.WEB_FORM,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
    return replace(intake, emails_skipped=skipped)
