"""Orders: the partners credited and the commissions, written in one transaction (SPEC §4,
§5.2). The decision is the engine's (`commissions.intake.order_plan`), shared with the
importer, so both paths write the same rows.
"""

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from django.utils import timezone

from referral_program.db import InsertPart, Returned, insert_together

from ..intake import DatabaseReader, explicit, order_plan
from ..intake.plan import COMMISSION_FIELDS, ORDER_FIELDS, chain_partners
from ..models import Commission, Event, EventKind, Notification, Order
from ..webhooks import webhook_commission_created
from .contacts import event_contact, normalise_email
from .events import Intake, event_context, event_record
from .notifications import (
    NOTIFICATION_FIELDS,
    emails_wanted,
    notification_rows,
    notifications_written,
)


def order_record(
    *, data: Mapping[str, Any], payload: Mapping[str, Any], notify: bool = True
) -> Intake:
    """An order: attribution of its lead and sale partner, and the commissions (§4, §5.2)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    skipped = 0

    def handle(event: Event) -> dict:
        nonlocal skipped
        explicit_lead = explicit(data.get("lead_partner"))
        explicit_sale = explicit(data.get("sale_partner"))
        engine, chains, tracked = event_context(data, at, explicit_lead, explicit_sale)
        email = normalise_email(data["contact"]["email"])
        plan = partial(
            order_plan, reader=DatabaseReader(), data=data, at=at, engine=engine, chains=chains,
            tracked=tracked, explicit_lead=explicit_lead, explicit_sale=explicit_sale,
            email=email, event_pk=event.pk,
            order_pk=Returned(0),  # the order's id, as it is written with them
        )  # fmt: skip
        _, planned = event_contact(
            person=data["contact"],
            attribution=explicit_lead or tracked.attribution,
            at=at,
            plan=lambda contact_pk, contact: plan(contact_pk=contact_pk, contact=contact),
        )
        partners = chain_partners(chains)
        notifications = []
        if notify:
            notifications = notification_rows(
                event=event, credited=planned.credited, engine=engine, at=at, switches=partners
            )
        else:
            skipped = emails_wanted(credited=planned.credited, engine=engine, switches=partners)
        [order_pk], ids, notification_pks = insert_together(
            [
                InsertPart(Order, ORDER_FIELDS, [planned.order]),
                InsertPart(Commission, COMMISSION_FIELDS, planned.lines),
                InsertPart(Notification, NOTIFICATION_FIELDS, notifications),
            ]
        )
        webhook_commission_created(order_pk=order_pk, lines=ids)
        notifications_written(notifications, notification_pks)
        return planned.result(ids=ids, codes={pk: p.code for pk, p in partners.items()})

    intake = event_record(
        kind=EventKind.ORDER,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
    return replace(intake, emails_skipped=skipped)
