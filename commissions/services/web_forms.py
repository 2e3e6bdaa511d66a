"""Web forms: the contact, its referral history and lead partner; pays nothing (SPEC §5.1).
The decision is the engine's (`commissions.intake.web_form_plan`), shared with the importer.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..intake import DatabaseReader, EventPlan, explicit, web_form_plan
from ..models import Event, EventKind
from ..selectors import Chain, EngineSettings
from .contacts import event_contact
from .events import Intake, event_context, planned_record


def web_form_record(
    *, data: Mapping[str, Any], payload: Mapping[str, Any], notify: bool = True
) -> Intake:
    """A web form: the contact, its referral history and lead partner. Pays nothing (§5.1)."""

    def plan(event: Event, at: datetime) -> tuple[EventPlan, EngineSettings, dict[int, Chain]]:
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
        return planned, engine, chains

    return planned_record(
        kind=EventKind.WEB_FORM, data=data, payload=payload, notify=notify, plan=plan
    )
