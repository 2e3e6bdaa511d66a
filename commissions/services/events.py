"""The frame every event is recorded in, and what its rules read (SPEC §6).

Event intake is idempotent: the event row is inserted first under a unique
(kind, event_id) constraint, inside the same transaction as everything the event writes
(`event_record`). A concurrent copy waits on that insert and then answers with the first
copy's result.

The intake is the engine's hot path (issue 4): an event reads what its rules need in one
query (`event_context`: `engine_with_chains`), writes each table once, and its inserts are
hand-written statements (`referral_program.db`), about ten statements in all. A web form's
or an order's plan (`commissions.intake.plan`) is written by `plan_write`: the API's
writer of a batch of one.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cache, partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.utils import timezone

from partners.models import Partner
from referral_program.db import (
    InsertPart,
    columns,
    converted,
    execute,
    fields,
    insert,
    insert_together,
    prepared,
    prepared_lost,
    quote,
    table,
)

from ..attribution import Attribution
from ..intake import DatabaseReader, EventPlan, Tracked, cookie_clicks, track
from ..intake.plan import COMMISSION_FIELDS, LEAD_FIELDS, ORDER_FIELDS, chain_partners
from ..models import Commission, Event, Lead, Notification, Order, Refund
from ..selectors import Chain, EngineSettings
from ..webhooks import webhook_commission_created
from .contacts import normalise_email
from .notifications import (
    NOTIFICATION_FIELDS,
    emails_wanted,
    notification_rows,
    notifications_written,
)


def partner_codes(ids: Iterable[int | None]) -> dict[int, str]:
    """The codes of these partners, by id, in one query (none when there are no ids)."""
    ids = {pk for pk in ids if pk is not None}
    return dict(Partner.objects.filter(pk__in=ids).values_list("id", "code")) if ids else {}


def entries_brief(rows: Iterable[Commission]) -> list[dict]:
    """The entries an event wrote, as its answer lists them (clawbacks, credits)."""
    rows = list(rows)
    codes = partner_codes(row.partner_id for row in rows)
    return [
        {
            "partner": codes[row.partner_id],
            "level": row.level,
            "kind": row.kind,
            "amount": str(row.amount),
        }
        for row in rows
    ]


class UnknownOrder(Exception):
    """A refund or a payment names an order that was never recorded (answered 404)."""


@dataclass(frozen=True)
class Intake:
    result: dict
    duplicate: bool
    # Events imported from a file (`notify=False`): the emails the API would have queued for
    # this event, which nobody gets and no notification row logs (SPEC §5.6).
    emails_skipped: int = 0


EVENT_FIELDS = ("kind", "event_id", "payload", "received_at", "occurred_at")


@cache
def _event_sql() -> tuple[str, str]:
    """The statements reading an event's result and writing it."""
    events, result, kind, event_id = table(Event), quote("result"), quote("kind"), quote("event_id")
    return (
        f"SELECT {result} FROM {events} WHERE {kind} = %s AND {event_id} = %s",
        f"UPDATE {events} SET {result} = %s WHERE {quote('id')} = %s",
    )


def event_result(*, kind: str, event_id: str) -> dict | None:
    """The first result of an event already recorded, or None."""
    rows = execute(_event_sql()[0], [kind, event_id])
    return converted(fields(Event, ("result",)), rows[0])[0] if rows else None


def _event_insert(
    *, kind: str, event_id: str, payload: Any, received_at: datetime, occurred_at: datetime
) -> Event | None:
    """The new event's row, or None when this kind and id are already recorded.

    One statement, INSERT … ON CONFLICT DO NOTHING: a copy that arrives while the first is
    being recorded waits there for the first's transaction, then finds its row.
    """
    values = (kind, event_id, payload, received_at, occurred_at)
    unique = columns(Event, ("kind", "event_id"))
    rows = insert(Event, EVENT_FIELDS, [values], suffix=f"ON CONFLICT ({unique}) DO NOTHING")
    if not rows:
        return None
    return Event.from_db(DEFAULT_DB_ALIAS, None, [rows[0][0], *values, None])


def event_record(
    *,
    kind: str,
    event_id: str,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    received_at: datetime,
    handle: Callable[[Event], dict],
) -> Intake:
    """Record the event and `handle` it in one transaction; run once more when the
    connection had lost its prepared statements (`referral_program.db`)."""
    once = partial(
        _event_record_once, kind=kind, event_id=event_id, payload=payload, occurred_at=occurred_at,
        received_at=received_at, handle=handle,
    )  # fmt: skip
    try:
        return once()
    except DatabaseError as error:
        if not prepared_lost(error):
            raise
        return once()


def _event_record_once(
    *,
    kind: str,
    event_id: str,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    received_at: datetime,
    handle: Callable[[Event], dict],
) -> Intake:
    with transaction.atomic():
        event = _event_insert(
            kind=kind,
            event_id=event_id,
            payload=payload,
            received_at=received_at,
            occurred_at=occurred_at,
        )
        if event is None:
            return Intake(result=event_result(kind=kind, event_id=event_id), duplicate=True)
        result = handle(event)
        execute(_event_sql()[1], [*prepared(Event, ("result",), [result]), event.pk])
    return Intake(result=result, duplicate=False)


def order_event_record(
    *,
    kind: str,
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    handle: Callable[[Event, Order, datetime], dict],
) -> Intake:
    """An event that names an order (a refund, a customer's payment), recorded in one
    transaction (`event_record`): `handle(event, order, at)` gets the order read under
    `select_for_update`, so the events of one order wait for each other; an order never
    recorded raises `UnknownOrder`."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    def locked(event: Event) -> dict:
        order = Order.objects.select_for_update().filter(order_id=data["order_id"]).first()
        if order is None:
            raise UnknownOrder(data["order_id"])
        return handle(event, order, at)

    return event_record(
        kind=kind,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=locked,
    )


def line_entry(
    line: Commission,
    *,
    entry: str,
    amount: Decimal,
    at: datetime,
    payable_at: datetime,
    trace: dict,
    refund: Refund | None = None,
) -> Commission:
    """An entry that takes back or credits a commission line (a clawback, a credit), with
    the line's partner, level, kind, base, currency, program and program version, pointing
    at the line."""
    return Commission(
        refund=refund,
        partner_id=line.partner_id,
        order_id=line.order_id,
        clawback_of=line,
        level=line.level,
        kind=line.kind,
        entry=entry,
        base=line.base,
        amount=amount,
        currency=line.currency,
        program_id=line.program_id,
        program_version_id=line.program_version_id,
        occurred_at=at,
        payable_at=payable_at,
        trace=trace,
    )


def event_context(
    data: Mapping[str, Any], at: datetime, *named_partners: Attribution | None
) -> tuple[EngineSettings, dict[int, Chain], Tracked]:
    """What an event's rules need, read in one query when its partners are named or in its
    token: the engine settings and the chains of those partners; then its attribution."""
    clicks = cookie_clicks(data.get("tracking_token", ""))
    named = [a.partner_id for a in named_partners if a is not None]
    credits = len(named) < len(named_partners)  # a partner is left to attribution
    reader = DatabaseReader()
    engine, chains = reader.engine_and_chains([*named, *(t.partner_id for t in clicks)])
    tracked = track(
        reader=reader,
        policy=engine.policy,
        chains=chains,
        email=normalise_email(data["contact"]["email"]),
        at=at,
        clicks=clicks,
        ip=data.get("ip"),
        credits=credits,
        coupon_code=data.get("coupon"),
        subscription=data.get("subscription"),
    )
    return engine, chains, tracked


def plan_write(
    *,
    event: Event,
    plan: EventPlan,
    engine: EngineSettings,
    chains: Mapping[int, Chain],
    at: datetime,
    notify: bool,
) -> tuple[dict, int]:
    """Write an event's plan after its contact (`contacts.event_contact`): its row (the
    order or the lead), its commission lines and its notifications in one statement, the
    webhook deliveries; its result, and the emails it skipped (`notify` false: an imported
    event emails nobody and writes no notification, SPEC §5.6)."""
    partners = chain_partners(chains)
    notifications, skipped = [], 0
    if notify:
        notifications = notification_rows(
            event=event, credited=plan.credited, engine=engine, at=at, switches=partners
        )
    else:
        skipped = emails_wanted(credited=plan.credited, engine=engine, switches=partners)
    row = InsertPart(Order, ORDER_FIELDS, [plan.order])
    if plan.order is None:
        row = InsertPart(Lead, LEAD_FIELDS, [plan.lead])
    [row_pk], ids, notification_pks = insert_together(
        [
            row,
            InsertPart(Commission, COMMISSION_FIELDS, plan.lines),
            InsertPart(Notification, NOTIFICATION_FIELDS, notifications),
        ]
    )
    if plan.order is not None:
        webhook_commission_created(order_pk=row_pk, lines=ids)
    notifications_written(notifications, notification_pks)
    return plan.result(ids=ids, codes={pk: p.code for pk, p in partners.items()}), skipped


def planned_record(
    *,
    kind: str,
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    notify: bool,
    plan: Callable[[Event, datetime], tuple[EventPlan, EngineSettings, dict[int, Chain]]],
) -> Intake:
    """A web form or an order, recorded in one transaction (`event_record`): `plan(event,
    at)` reads it, writes its contact and plans it (`contacts.event_contact`), returning the
    plan with the engine settings and chains it read; `plan_write` writes the plan."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    skipped = 0

    def handle(event: Event) -> dict:
        nonlocal skipped
        planned, engine, chains = plan(event, at)
        result, skipped = plan_write(
            event=event, plan=planned, engine=engine, chains=chains, at=at, notify=notify
        )
        return result

    intake = event_record(
        kind=kind,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
    return replace(intake, emails_skipped=skipped)
