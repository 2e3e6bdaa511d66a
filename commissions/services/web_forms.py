"""Web forms: the contact, its referral history and lead partner; pays nothing (SPEC §5.1)."""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.utils import timezone

from referral_program.db import insert

from ..calculation import LEAD
from ..intake import explicit
from ..models import Event, EventKind, Lead
from .contacts import event_contact
from .events import (
    Intake,
    attribution_brief,
    chain_partners,
    chains_add,
    event_context,
    event_record,
)
from .notifications import emails_wanted, notifications_queue

LEAD_FIELDS = ("event", "contact", "form", "partner", "trace", "occurred_at")


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
        contact, lead_id, trace = event_contact(
            person=data["contact"],
            attribution=named or tracked.attribution,
            at=at,
            tracked=tracked,
        )
        partners = chain_partners(chains_add(chains, [lead_id]))
        lead = web_form_values(
            event_pk=event.pk, contact_pk=contact.pk, data=data, lead_id=lead_id, trace=trace, at=at
        )
        insert(Lead, LEAD_FIELDS, [lead], returning=())
        if lead_id is not None and notify:
            notifications_queue(
                event=event, credited=[(lead_id, LEAD)], engine=engine, at=at, switches=partners
            )
        elif lead_id is not None:
            skipped = emails_wanted(credited=[(lead_id, LEAD)], engine=engine, switches=partners)
        return web_form_result(
            event_id=event.event_id,
            contact_id=contact.pk,
            lead_id=lead_id,
            trace=trace,
            codes={pk: p.code for pk, p in partners.items()},
        )

    intake = event_record(
        kind=EventKind.WEB_FORM,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
    return replace(intake, emails_skipped=skipped)


def web_form_values(
    *,
    event_pk: int,
    contact_pk: int,
    data: Mapping[str, Any],
    lead_id: int | None,
    trace: dict,
    at: datetime,
) -> tuple:
    """A web form's row, in the order of LEAD_FIELDS."""
    return (event_pk, contact_pk, data.get("form", ""), lead_id, trace, at)


def web_form_result(
    *, event_id: str, contact_id: int, lead_id: int | None, trace: dict, codes: Mapping
) -> dict:
    """What a web form answers (and its event keeps); `codes`: partner codes by id."""
    return {
        "event_id": event_id,
        "contact_id": contact_id,
        "lead_partner": codes[lead_id] if lead_id is not None else None,
        "attribution": attribution_brief(trace),
    }
