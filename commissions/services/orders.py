"""Orders: the partners credited and the commissions, written in one transaction (SPEC §4,
§5.2). The decision is the engine's (`commissions.intake.order_plan`), shared with the
importer, so both paths write the same rows.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from referral_program.db import Returned

from ..intake import DatabaseReader, EventPlan, explicit, order_plan
from ..intake.plan import order_named
from ..models import Event, EventKind
from ..selectors import Chain, EngineSettings
from .contacts import event_contact, normalise_email
from .events import Intake, event_context, planned_record


def order_record(
    *, data: Mapping[str, Any], payload: Mapping[str, Any], notify: bool = True
) -> Intake:
    """An order: attribution of its lead and sale partner, and the commissions (§4, §5.2)."""

    def plan(event: Event, at: datetime) -> tuple[EventPlan, EngineSettings, dict[int, Chain]]:
        explicit_lead = explicit(data.get("lead_partner"))
        explicit_sale = explicit(data.get("sale_partner"))
        engine, chains, tracked = event_context(data, at, explicit_lead, explicit_sale)
        reader, email = DatabaseReader(), normalise_email(data["contact"]["email"])
        _, planned = event_contact(
            person=data["contact"],
            # A renewal's lead partner is its first order's (`order_named`), as the plan says.
            attribution=order_named(tracked, explicit_lead, explicit_sale)[0]
            or tracked.attribution,
            at=at,
            plan=lambda contact_pk, contact: order_plan(
                reader=reader, data=data, at=at, engine=engine, chains=chains, tracked=tracked,
                explicit_lead=explicit_lead, explicit_sale=explicit_sale, email=email,
                contact_pk=contact_pk, contact=contact, event_pk=event.pk,
                order_pk=Returned(0),  # the order's id, as it is written with them
            ),
        )  # fmt: skip
        return planned, engine, chains

    return planned_record(
        kind=EventKind.ORDER, data=data, payload=payload, notify=notify, plan=plan
    )
