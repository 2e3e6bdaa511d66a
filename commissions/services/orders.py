"""Orders: the partners credited, the order's row and its commission lines (SPEC §4, §5.2).

The row builders (`order_credit`, `order_guarded`, `order_values`, `order_commission_rows`,
`order_result`) are shared with the importer (`commissions.importing`), so both paths write
the same rows.
"""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.utils import timezone

from referral_program.db import InsertPart, Returned, insert_together

from ..attribution import GUARD_SELF_REFERRAL, Attribution, Policy, is_self_referral
from ..calculation import LEAD, SALE, Item, commission_lines, order_base
from ..intake import explicit
from ..models import Commission, CommissionEntry, Event, EventKind, Notification, Order
from ..money import ZERO
from ..selectors import Chain, EngineSettings
from ..webhooks import webhook_commission_created
from .contacts import event_contact
from .events import (
    Intake,
    attribution_brief,
    chain_partners,
    chains_add,
    event_context,
    event_record,
)
from .notifications import (
    NOTIFICATION_FIELDS,
    emails_wanted,
    notification_rows,
    notifications_written,
)


class CommissionRow(NamedTuple):
    """A commission line to insert, in the order of COMMISSION_FIELDS."""

    partner: int
    order: int
    level: int
    kind: str
    entry: str
    base: Decimal
    amount: Decimal
    currency: str
    program: int
    trace: dict
    occurred_at: datetime
    payable_at: datetime  # pending until then (SPEC §11): the program's hold days after `at`


COMMISSION_FIELDS = CommissionRow._fields


ORDER_FIELDS = ("event", "order_id", "contact", "currency", "items", "discount", "shipping")
ORDER_FIELDS += ("tax", "base", "total", "refunded", "ip", "lead_partner", "sale_partner")
ORDER_FIELDS += ("lead_trace", "sale_trace", "occurred_at")


class Credit(NamedTuple):
    """The partners an order credits, and how each was found (their traces)."""

    lead_id: int | None
    lead_trace: dict
    sale_id: int | None
    sale_trace: dict


def order_credit(
    *,
    explicit_lead: Attribution | None,
    explicit_sale: Attribution | None,
    attribution: Attribution,
    lead_id: int | None,
    lead_trace: dict,
) -> Credit:
    """The lead partner is the event's `lead_partner`, else the contact's (`lead_id`); the
    sale partner the event's `sale_partner`, else the order's attribution (SPEC §4)."""
    if explicit_lead is not None:
        lead_id, lead_trace = explicit_lead.partner_id, explicit_lead.trace()
    sale = explicit_sale or attribution
    return Credit(lead_id, lead_trace, sale.partner_id, sale.trace())


def _self_referral_guarded(trace: dict | None, chain: Chain | None, buyer_email: str):
    """The trace, marked with the self-referral guard when the buyer is the credited
    partner (SPEC §9): that kind then pays nobody in the chain."""
    if trace is None or chain is None or not is_self_referral(buyer_email, chain.emails):
        return trace
    return {**trace, "guard": GUARD_SELF_REFERRAL}


def order_guarded(
    credit: Credit, *, engine: EngineSettings, chains: Mapping[int, Chain], buyer_email: str
) -> Credit:
    """The credit with each kind's trace marked when a guard stops it (SPEC §9); `chains`
    holds the credited partners'."""
    if not engine.self_referral_guard:
        return credit
    return credit._replace(
        lead_trace=_self_referral_guarded(
            credit.lead_trace, chains.get(credit.lead_id), buyer_email
        ),
        sale_trace=_self_referral_guarded(
            credit.sale_trace, chains.get(credit.sale_id), buyer_email
        ),
    )


def order_values(
    *,
    event_pk: int,
    event_id: str,
    contact_pk: int,
    data: Mapping[str, Any],
    credit: Credit,
    at: datetime,
) -> tuple[tuple, Decimal, str]:
    """An order's row (in the order of ORDER_FIELDS), its base and its currency."""
    currency = data.get("currency") or settings.DEFAULT_CURRENCY
    items = [Item(quantity=i["quantity"], unit_price=i["unit_price"]) for i in data["items"]]
    discount, shipping, tax = (data.get(k) or ZERO for k in ("discount", "shipping", "tax"))
    base = order_base(items, discount)
    stored_items = [
        {**i, "quantity": i["quantity"], "unit_price": str(i["unit_price"])} for i in data["items"]
    ]
    order = (
        event_pk, event_id, contact_pk, currency, stored_items, discount, shipping, tax, base,
        base + shipping + tax, ZERO, data.get("ip"), credit.lead_id, credit.sale_id,
        credit.lead_trace, credit.sale_trace, at,
    )  # fmt: skip
    return order, base, currency


def order_commission_rows(
    *,
    order_id: int,
    base: Decimal,
    currency: str,
    at: datetime,
    credit: Credit,
    chains: Mapping[int, Chain],
    policy: Policy,
) -> list[CommissionRow]:
    """Every commission line of an order: lead then sale, up each credited partner's chain;
    nothing for a kind nobody is credited for, or that a guard stopped."""
    rows = []
    for kind, partner_id, trace in (
        (LEAD, credit.lead_id, credit.lead_trace),
        (SALE, credit.sale_id, credit.sale_trace),
    ):
        if partner_id is not None and not (trace or {}).get("guard"):
            rows += _commission_rows(
                order_id=order_id,
                base=base,
                currency=currency,
                at=at,
                kind=kind,
                partner_id=partner_id,
                trace=trace,
                chain=chains[partner_id],
                policy=policy,
            )
    return rows


def _commission_rows(
    *,
    order_id: int,
    base: Decimal,
    currency: str,
    at: datetime,
    kind: str,
    partner_id: int,
    trace: dict,
    chain: Chain,
    policy: Policy,
) -> list[CommissionRow]:
    """The lines one kind pays up the credited partner's chain, each with its trace."""
    terms = chain.terms
    if terms is None:
        return []
    lines = commission_lines(
        terms=terms,
        kind=kind,
        chain=chain.members,
        has_parent=chain.has_parent,
        base=base,
        currency=currency,
    )
    # The same for every line (values that are never changed, so the lines share them).
    program = {"id": terms.program_id, "name": terms.name, "levels": terms.levels}
    applied = {
        "partner_selection": policy.partner_selection,
        "tracking_method": policy.tracking_method,
        "use_ip_address": policy.use_ip_address,
    }
    return [
        CommissionRow(
            partner=line.partner_id,
            order=order_id,
            level=line.level,
            kind=kind,
            entry=CommissionEntry.COMMISSION,
            base=line.base,
            amount=line.amount,
            currency=currency,
            program=terms.program_id,
            occurred_at=at,
            payable_at=at + timedelta(days=terms.hold_days),
            trace={
                "attribution": trace,
                "credited_partner_id": partner_id,
                "program": program,
                "rates": line.rates(),
                "hold_days": terms.hold_days,
                "base": str(line.base),
                "policy": applied,
            },
        )
        for line in lines
    ]


def order_result(
    *,
    event_id: str,
    base: Decimal,
    credit: Credit,
    rows: Iterable[CommissionRow],
    ids: Iterable[int],
    codes: Mapping[int, str],
) -> dict:
    """What an order answers (and its event keeps); `codes`: partner codes by id."""
    return {
        "event_id": event_id,
        "order_id": event_id,
        "base": str(base),
        "lead_partner": codes.get(credit.lead_id),
        "sale_partner": codes.get(credit.sale_id),
        "attribution": attribution_brief(credit.sale_trace),
        "commissions": [
            {
                "id": pk,
                "partner": codes[row.partner],
                "level": row.level,
                "kind": row.kind,
                "amount": str(row.amount),
                "currency": row.currency,
            }
            for pk, row in zip(ids, rows, strict=True)
        ],
    }


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
        contact, lead_id, lead_trace = event_contact(
            person=data["contact"],
            attribution=explicit_lead or tracked.attribution,
            at=at,
            tracked=tracked,
        )
        credit = order_credit(
            explicit_lead=explicit_lead,
            explicit_sale=explicit_sale,
            attribution=tracked.attribution,
            lead_id=lead_id,
            lead_trace=lead_trace,
        )
        chains_add(chains, [credit.lead_id, credit.sale_id])
        credit = order_guarded(credit, engine=engine, chains=chains, buyer_email=contact.email)
        order, base, currency = order_values(
            event_pk=event.pk,
            event_id=event.event_id,
            contact_pk=contact.pk,
            data=data,
            credit=credit,
            at=at,
        )
        rows = order_commission_rows(
            order_id=Returned(0),  # the order's id, as it is written with them
            base=base,
            currency=currency,
            at=at,
            credit=credit,
            chains=chains,
            policy=engine.policy,
        )
        partners = chain_partners(chains)
        credited = [(r.partner, r.kind) for r in rows]
        notifications = []
        if notify:
            notifications = notification_rows(
                event=event, credited=credited, engine=engine, at=at, switches=partners
            )
        else:
            skipped = emails_wanted(credited=credited, engine=engine, switches=partners)
        [order_pk], ids, notification_pks = insert_together(
            [
                InsertPart(Order, ORDER_FIELDS, [order]),
                InsertPart(Commission, COMMISSION_FIELDS, rows),
                InsertPart(Notification, NOTIFICATION_FIELDS, notifications),
            ]
        )
        webhook_commission_created(order_pk=order_pk, lines=ids)
        notifications_written(notifications, notification_pks)
        codes = {pk: p.code for pk, p in partners.items()}
        return order_result(
            event_id=event.event_id, base=base, credit=credit, rows=rows, ids=ids, codes=codes
        )

    intake = event_record(
        kind=EventKind.ORDER,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
    return replace(intake, emails_skipped=skipped)
