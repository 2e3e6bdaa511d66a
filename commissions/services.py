"""Every write of the commissions engine: contacts, referral history, events, notifications.

Event intake (SPEC §6) is idempotent: the event row is inserted first under a unique
(kind, event_id) constraint, inside the same transaction as everything the event writes.
A concurrent copy waits on that insert and then answers with the first copy's result.

The intake is the engine's hot path (issue 4): an order reads what its rules need in one
query (`engine_with_chains`), writes each table once, and its inserts are hand-written
statements (`referral_program.db`), about ten statements in all.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache, partial
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from partners.models import Partner, PartnerStatus
from referral_program.db import (
    InsertPart,
    Returned,
    columns,
    converted,
    db,
    defaulted,
    execute,
    fields,
    insert,
    insert_together,
    prepared,
    prepared_lost,
    quote,
    table,
)

from .aggregates import money_sum
from .attribution import (
    GUARD_SELF_REFERRAL,
    Attribution,
    ContactLead,
    Policy,
    Touch,
    contact_lead,
    expiry,
    is_self_referral,
    lead_trace,
)
from .calculation import LEAD, SALE, Item, clawbacks, commission_lines, order_base
from .intake import DatabaseReader, Tracked, cookie_clicks, explicit, track
from .models import (
    Commission,
    CommissionEntry,
    Contact,
    Event,
    EventKind,
    Lead,
    Notification,
    NotificationKind,
    NotificationStatus,
    Order,
    Referral,
    ReferralSource,
    Refund,
)
from .money import ZERO
from .selectors import (
    Chain,
    EngineSettings,
    partner_chains,
)
from .webhooks import webhook_commission_clawed_back, webhook_commission_created


class UnknownOrder(Exception):
    """A refund names an order that was never recorded (answered 404)."""


@dataclass(frozen=True)
class Intake:
    result: dict
    duplicate: bool
    # Events imported from a file (`notify=False`): the emails the API would have queued for
    # this event, which nobody gets and no notification row logs (SPEC §5.6).
    emails_skipped: int = 0


# --- Contacts and referral history -----------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


CONTACT_FIELDS = tuple(f.name for f in Contact._meta.concrete_fields)
# What the upsert writes, in this order; any field added later is written with its default.
CONTACT_WRITTEN = ("email", "first_name", "last_name", "lead_partner", "lead_partner_set_at")
CONTACT_WRITTEN += ("lead_trace", "created_at")
CONTACT_WRITTEN += defaulted(Contact, CONTACT_WRITTEN)


def contact_conflict_sql(*, fix_lead: bool) -> str:
    """The ON CONFLICT clause of every contact upsert (the API's one contact, the importer's
    batch): names given replace old ones (an empty one keeps the old); with `fix_lead`, the
    lead partner, its time and trace are set where the contact has none yet."""
    contacts, first, last = table(Contact), quote("first_name"), quote("last_name")
    sql = f"""
        ON CONFLICT ({quote("email")}) DO UPDATE
           SET {first} = COALESCE(NULLIF(EXCLUDED.{first}, ''), {contacts}.{first}),
               {last} = COALESCE(NULLIF(EXCLUDED.{last}, ''), {contacts}.{last})"""
    if fix_lead:
        lead, set_at, trace = (
            columns(Contact, (name,))
            for name in ("lead_partner", "lead_partner_set_at", "lead_trace")
        )
        sql += f""",
               {lead} = COALESCE({contacts}.{lead}, EXCLUDED.{lead}),
               {set_at} = CASE WHEN {contacts}.{lead} IS NULL THEN EXCLUDED.{set_at}
                               ELSE {contacts}.{set_at} END,
               {trace} = CASE WHEN {contacts}.{lead} IS NULL THEN EXCLUDED.{trace}
                              ELSE {contacts}.{trace} END"""
    return sql


@cache
def _contact_write_sql(vendor: str) -> str:
    # PostgreSQL tells a new row by `xmax = 0`; SQLite (where writers queue anyway) by the
    # creation time this statement gave it.
    made = "xmax = 0" if vendor == "postgresql" else f"{quote('created_at')} = %s"
    return f"""
        INSERT INTO {table(Contact)} ({columns(Contact, CONTACT_WRITTEN)})
        VALUES ({", ".join(["%s"] * len(CONTACT_WRITTEN))})
        {contact_conflict_sql(fix_lead=False)}
        RETURNING {columns(Contact, CONTACT_FIELDS)}, {made}
    """


def _contact_write(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    lead: tuple[int, datetime, dict] | None = None,
) -> tuple[Contact, bool]:
    """The contact with this email in one statement, and whether it was made now.

    A new contact is made with `lead` (partner id, when, trace) as its lead partner; an
    existing one gets the names given (empty ones keep the old) and keeps its lead partner.
    INSERT … ON CONFLICT (email) DO UPDATE also locks an existing contact until the
    transaction ends, so two events of one contact are recorded one after the other.
    """
    lead_id, lead_at, trace = lead or (None, None, {})
    now = timezone.now()
    values = [normalise_email(email), first_name, last_name, lead_id, lead_at, trace, now]
    values += [f.get_default() for f in fields(Contact, CONTACT_WRITTEN[len(values) :])]
    params = prepared(Contact, CONTACT_WRITTEN, values)
    vendor = db().vendor
    if vendor != "postgresql":
        params += prepared(Contact, ("created_at",), [now])
    *row, is_new = execute(_contact_write_sql(vendor), params)[0]
    values = converted(fields(Contact, CONTACT_FIELDS), row)
    return Contact.from_db(DEFAULT_DB_ALIAS, None, values), bool(is_new)


def contact_upsert(*, email: str, first_name: str = "", last_name: str = "") -> Contact:
    """The contact with this email, made if new; names given fill in or replace old ones."""
    return _contact_write(email=email, first_name=first_name, last_name=last_name)[0]


@transaction.atomic
def referral_add_manual(
    *, email: str, partner: Partner, at: datetime | None = None, created_by: str = ""
) -> Referral:
    """A history entry staff add by hand, for a referral by phone or email."""
    if partner.status != PartnerStatus.ACTIVE:
        raise ValidationError({"partner": f"Partner {partner.code} is not active."})
    at = at or timezone.now()
    contact = contact_upsert(email=email)
    return Referral.objects.create(
        contact=contact,
        partner=partner,
        source=ReferralSource.MANUAL,
        set_at=at,
        expires_at=expiry(at, partner.cookie_days),
        created_by=created_by,
    )


REFERRAL_FIELDS = ("contact", "partner", "source", "click_id", "set_at", "expires_at")
REFERRAL_FIELDS += ("created_by", "created_at")


def history_entry(
    *, contact_id: int, touch: Touch, source: str, cookie_days: int | None, now: datetime
) -> tuple:
    """A history entry for a click (or the coupon) an event came with, in the order of
    REFERRAL_FIELDS: it expires the partner's cookie days after the click."""
    return (
        contact_id,
        touch.partner_id,
        source,
        None if source == ReferralSource.COUPON else touch.ref,  # a coupon is no click
        touch.at,
        expiry(touch.at, cookie_days),
        "",
        now,
    )


def history_record(
    *,
    contact: Contact,
    touches: Iterable[Touch],
    source: str,
    cookie_days: Mapping[int, int | None],
) -> None:
    """Add the clicks an event came with to the contact's history (once per click)."""
    now = timezone.now()
    entries = [
        history_entry(
            contact_id=contact.pk,
            touch=touch,
            source=source,
            cookie_days=cookie_days.get(touch.partner_id),
            now=now,
        )
        for touch in touches
    ]
    # ON CONFLICT without a target: the unique (contact, click_id) index is partial.
    insert(Referral, REFERRAL_FIELDS, entries, returning=(), suffix="ON CONFLICT DO NOTHING")


# --- Attribution of one event ------------------------------------------------------------


def contact_fix_lead(*, contact: Contact, attribution: Attribution, at: datetime) -> tuple:
    """The contact's lead partner and its trace, fixing it at the first attribution."""
    current = ContactLead(contact.lead_partner_id, contact.lead_partner_set_at, contact.lead_trace)
    fix, lead_id, trace = contact_lead(current, attribution, at)
    if fix is None:
        return lead_id, trace
    fixed = Contact.objects.filter(pk=contact.pk, lead_partner__isnull=True).update(
        lead_partner_id=fix.partner_id, lead_partner_set_at=fix.set_at, lead_trace=fix.trace
    )
    if fixed:
        contact.lead_partner_id, contact.lead_partner_set_at = fix.partner_id, fix.set_at
        contact.lead_trace = fix.trace
        return lead_id, trace
    # Fixed by another event meanwhile: that one counts.
    contact.refresh_from_db(fields=["lead_partner", "lead_partner_set_at", "lead_trace"])
    current = ContactLead(contact.lead_partner_id, contact.lead_partner_set_at, contact.lead_trace)
    return contact_lead(current, attribution, at)[1:]


def _event_contact(
    *, person: Mapping[str, str], attribution: Attribution, at: datetime, tracked: Tracked
) -> tuple[Contact, int | None, dict]:
    """The event's contact, its new history entries, and its lead partner with the trace:
    fixed by `attribution` when the contact had none (a new contact is made with it)."""
    lead = None
    if attribution.partner_id is not None:
        lead = (attribution.partner_id, at, lead_trace(attribution, at))
    contact, made = _contact_write(**person, lead=lead)
    days = {pk: state.cookie_days for pk, state in tracked.partners.items()}
    # At most one of cookie and IP: the IP address is looked at only when nothing else
    # decided; a coupon that decided is an entry of its own (SPEC §11).
    for source, touches in (
        (ReferralSource.COOKIE, tracked.cookie),
        (ReferralSource.IP, tracked.ip),
        (ReferralSource.COUPON, tracked.coupon),
    ):
        if touches:
            history_record(contact=contact, touches=touches, source=source, cookie_days=days)
    if made:  # made now, with the lead partner `contact_lead` gives a new contact
        return contact, *contact_lead(ContactLead(), attribution, at)[1:]
    return contact, *contact_fix_lead(contact=contact, attribution=attribution, at=at)


# --- Event intake ------------------------------------------------------------------------

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


def _intake(
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
        _intake_once, kind=kind, event_id=event_id, payload=payload, occurred_at=occurred_at,
        received_at=received_at, handle=handle,
    )  # fmt: skip
    try:
        return once()
    except DatabaseError as error:
        if not prepared_lost(error):
            raise
        return once()


def _intake_once(
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


def _codes(ids: Iterable[int | None]) -> dict[int, str]:
    ids = {pk for pk in ids if pk is not None}
    return dict(Partner.objects.filter(pk__in=ids).values_list("id", "code")) if ids else {}


def _brief(attribution: Mapping[str, Any]) -> dict:
    brief = {"source": attribution.get("source"), "rule": attribution.get("rule")}
    if attribution.get("guard"):
        brief["guard"] = attribution["guard"]  # the guard that stopped the commissions
    return brief


def _self_referral_guarded(trace: dict | None, chain: Chain | None, buyer_email: str):
    """The trace, marked with the self-referral guard when the buyer is the credited
    partner (SPEC §9): that kind then pays nobody in the chain."""
    if trace is None or chain is None or not is_self_referral(buyer_email, chain.emails):
        return trace
    return {**trace, "guard": GUARD_SELF_REFERRAL}


def _chains_add(chains: dict[int, Chain], ids: Iterable[int | None]) -> dict[int, Chain]:
    """`chains` with those of `ids` it lacks (one query when any is missing)."""
    missing = {pk for pk in ids if pk is not None and pk not in chains}
    if missing:
        chains.update(partner_chains(missing))
    return chains


def chain_partners(chains: Mapping[int, Chain]) -> dict:
    """Every partner of the chains, by id: code and email switches."""
    return {p.id: p for chain in chains.values() for p in chain.partners}


def _intake_context(
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
    )
    return engine, chains, tracked


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
        engine, chains, tracked = _intake_context(data, at, named)
        contact, lead_id, trace = _event_contact(
            person=data["contact"],
            attribution=named or tracked.attribution,
            at=at,
            tracked=tracked,
        )
        partners = chain_partners(_chains_add(chains, [lead_id]))
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

    intake = _intake(
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
        "attribution": _brief(trace),
    }


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
        "attribution": _brief(credit.sale_trace),
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
        engine, chains, tracked = _intake_context(data, at, explicit_lead, explicit_sale)
        contact, lead_id, lead_trace = _event_contact(
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
        _chains_add(chains, [credit.lead_id, credit.sale_id])
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

    intake = _intake(
        kind=EventKind.ORDER,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
    return replace(intake, emails_skipped=skipped)


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
    payable_at = at + timedelta(days=terms.hold_days)
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
            payable_at=payable_at,
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


def refund_record(*, data: Mapping[str, Any], payload: Mapping[str, Any]) -> Intake:
    """A refund or cancellation: each commission line gives back the refund's share (§5.4)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    def handle(event: Event) -> dict:
        order = Order.objects.select_for_update().filter(order_id=data["order_id"]).first()
        if order is None:
            raise UnknownOrder(data["order_id"])
        left = order.total - order.refunded
        amount = data.get("amount")
        amount = left if amount is None else amount
        if left <= ZERO:
            raise ValidationError({"amount": "Nothing is left to refund on this order."})
        if amount <= ZERO or amount > left:
            raise ValidationError({"amount": f"Refund between 0.01 and {left} (what is left)."})
        lines = list(order.commissions.filter(entry=CommissionEntry.COMMISSION).order_by("id"))
        # A rejection took back all that was left of its line: nothing more to claw back.
        taken = dict(
            order.commissions.filter(
                entry__in=[CommissionEntry.CLAWBACK, CommissionEntry.REJECTION]
            )
            .values("clawback_of")
            .annotate(total=money_sum("amount"))
            .values_list("clawback_of", "total")
        )
        shares = clawbacks(
            lines=[line.amount for line in lines],
            taken=[-taken.get(line.pk, ZERO) for line in lines],
            order_total=order.total,
            refunded_before=order.refunded,
            refund=amount,
            currency=order.currency,
        )
        refund = Refund.objects.create(event=event, order=order, amount=amount, occurred_at=at)
        rows = [
            Commission(
                partner_id=line.partner_id,
                order=order,
                refund=refund,
                clawback_of=line,
                level=line.level,
                kind=line.kind,
                entry=CommissionEntry.CLAWBACK,
                base=line.base,
                amount=share,
                currency=line.currency,
                program_id=line.program_id,
                occurred_at=at,
                payable_at=line.payable_at,  # pending or payable with the line it takes back
                trace={
                    "refund": event.event_id,
                    "refunded": str(amount),
                    "order_total": str(order.total),
                    "clawback_of": line.pk,
                    "completes_refund": order.refunded + amount == order.total,
                },
            )
            for line, share in zip(lines, shares, strict=True)
            if share != ZERO
        ]
        Commission.objects.bulk_create(rows)
        webhook_commission_clawed_back(refund_pk=refund.pk, lines=rows)
        Order.objects.filter(pk=order.pk).update(refunded=order.refunded + amount)
        codes = _codes(row.partner_id for row in rows)
        return {
            "event_id": event.event_id,
            "order_id": order.order_id,
            "refunded": str(amount),
            "clawbacks": [
                {
                    "partner": codes[row.partner_id],
                    "level": row.level,
                    "kind": row.kind,
                    "amount": str(row.amount),
                }
                for row in rows
            ],
        }

    return _intake(
        kind=EventKind.REFUND,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )


# --- Notifications -------------------------------------------------------------------------


NOTIFICATION_FIELDS = ("partner", "event", "kind", "status", "reason", "created_at")


class QueuedNotification(NamedTuple):
    """A notification row as `notifications_queue` wrote it."""

    pk: int
    partner_id: int
    kind: str
    status: str
    reason: str


def notifications_queue(
    *,
    event: Event,
    credited: Iterable[tuple[int, str]],
    engine: EngineSettings,
    at: datetime,
    switches: Mapping[int, Any] | None = None,
) -> list[QueuedNotification]:
    """One notification per partner and kind, queued or skipped with the reason (§5.6).

    The emails are sent by a task queued after the transaction commits. Events imported
    from a file write none (`emails_wanted` counts what they skip). `switches`: the
    partners' `notify_lead` and `notify_sale` by id when the caller has read
    them (a `ChainPartner` does); read here otherwise.
    """
    rows = notification_rows(
        event=event, credited=credited, engine=engine, at=at, switches=switches
    )
    return notifications_written(
        rows, [pk for [pk] in insert(Notification, NOTIFICATION_FIELDS, rows)]
    )


def notification_rows(
    *,
    event: Event,
    credited: Iterable[tuple[int, str]],
    engine: EngineSettings,
    at: datetime,
    switches: Mapping[int, Any] | None = None,
) -> list[tuple]:
    """The rows `notifications_queue` writes (values in the order of NOTIFICATION_FIELDS),
    for a caller that writes them with other rows; then `notifications_written`."""
    wanted = list(dict.fromkeys(credited))
    if not wanted:
        return []
    if switches is None:
        switches = {
            p.pk: p
            for p in Partner.objects.filter(pk__in={p for p, _ in wanted}).only(
                "id", "notify_lead", "notify_sale"
            )
        }
    decisions = notification_decisions(credited=wanted, engine=engine, switches=switches)
    return [(partner_id, event.pk, *decision, at) for partner_id, *decision in decisions]


def notifications_written(rows: Sequence[tuple], pks: Sequence[int]) -> list[QueuedNotification]:
    """The notification rows as written (their ids `pks`); the emails of those queued are
    sent by one task, once the transaction commits."""
    written = [
        QueuedNotification(pk, partner_id, kind, status, reason)
        for pk, (partner_id, _, kind, status, reason, _) in zip(pks, rows, strict=True)
    ]
    queued = [row.pk for row in written if row.status == NotificationStatus.QUEUED]
    if queued:
        from .tasks import send_notifications

        transaction.on_commit(lambda: send_notifications.delay(queued))
    return written


def notification_decisions(
    *,
    credited: Iterable[tuple[int, str]],
    engine: EngineSettings,
    switches: Mapping[int, Any],
) -> list[tuple[int, str, str, str]]:
    """(partner id, kind, status, reason) of each notification: one per partner and kind,
    queued, or skipped with the reason (§5.6). `switches`: the partners' `notify_lead` and
    `notify_sale` by id."""
    result = []
    for partner_id, kind in dict.fromkeys(credited):
        partner = switches[partner_id]
        if engine.skip_notifications:
            status, reason = NotificationStatus.SKIPPED, "Skip notifications is on in the defaults."
        elif not (partner.notify_lead if kind == LEAD else partner.notify_sale):
            status, reason = NotificationStatus.SKIPPED, f"The partner turned off {kind} emails."
        else:
            status, reason = NotificationStatus.QUEUED, ""
        result.append((partner_id, kind, status, reason))
    return result


def emails_wanted(
    *, credited: Iterable[tuple[int, str]], engine: EngineSettings, switches: Mapping[int, Any]
) -> int:
    """How many emails the credited partners would be sent for an event (its notifications
    that would be queued): what an imported event skips, since it emails nobody and logs no
    notification (SPEC §5.6)."""
    decisions = notification_decisions(credited=credited, engine=engine, switches=switches)
    return sum(1 for *_, status, _ in decisions if status == NotificationStatus.QUEUED)


def notification_send(*, notification_id: int) -> bool:
    """Send one queued notification; a second run of the same id sends nothing."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("partner", "event", "payment__batch", "details_change")
            .filter(pk=notification_id, status=NotificationStatus.QUEUED)
            .first()
        )
        if notification is None:
            return False
        context = _notification_context(notification)
        subject = render_to_string(f"emails/{notification.kind}_subject.txt", context).strip()
        body = render_to_string(f"emails/{notification.kind}_body.txt", context)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [notification.partner.email])
        notification.status = NotificationStatus.SENT
        notification.sent_at = timezone.now()
        notification.save(update_fields=["status", "sent_at"])
    return True


def _notification_context(notification: Notification) -> dict:
    if notification.kind in PARTNER_EMAIL_CONTEXTS:
        return PARTNER_EMAIL_CONTEXTS[notification.kind](notification)
    event = notification.event
    if notification.commission_id is not None:  # a rejection (SPEC §11)
        line = Commission.objects.select_related("order").get(pk=notification.commission_id)
        return {
            "partner": notification.partner,
            "kind": notification.kind,
            "commission": line,
            "order": line.order,
            "reason": line.reason,
            "site_url": settings.SITE_URL,
        }
    commissions = []
    order = Order.objects.filter(event=event).first()
    if order is not None:
        commissions = list(
            order.commissions.filter(
                partner=notification.partner,
                kind=notification.kind,
                entry=CommissionEntry.COMMISSION,
            ).order_by("level")
        )
    lead = Lead.objects.filter(event=event).select_related("contact").first()
    return {
        "partner": notification.partner,
        "kind": notification.kind,
        "order": order,
        "lead": lead,
        "commissions": commissions,
        "total": sum((c.amount for c in commissions), Decimal(0)),
        "site_url": settings.SITE_URL,
    }


def _payout_context(notification: Notification) -> dict:
    payment = notification.payment
    return {
        "partner": notification.partner,
        "payment": payment,
        "batch": payment.batch,
        "site_url": settings.SITE_URL,
    }


def _payout_details_context(notification: Notification) -> dict:
    from .payout_details import change_description

    change = notification.details_change
    return {
        "partner": notification.partner,
        "change": change,
        "description": change_description(change),
        "site_url": settings.SITE_URL,
    }


# Emails that are not about an event (SPEC §11): the context of each kind.
PARTNER_EMAIL_CONTEXTS = {
    NotificationKind.PAYOUT: _payout_context,
    NotificationKind.PAYOUT_DETAILS: _payout_details_context,
}
