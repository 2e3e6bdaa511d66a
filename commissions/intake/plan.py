"""The decision of one event: its write plan (SPEC §4, §5.1, §5.2).

An event's rules run once, here, whichever door brought it: `order_plan` and
`web_form_plan` take what was read (the engine settings, the chains, what `track` found,
the contact's lead partner before the event) and return an `EventPlan`: the rows of each
table, the contact's change, the history entries, the (partner, kind) pairs credited, and
the event's result once the ids of its commission lines are known. The API writes a plan
of one event with INSERT … RETURNING (`commissions.services`); the importer collects the
plans of a batch and writes them by COPY (`commissions.importing`).

The plan reads nothing but the chains of the partners it credits that were not read yet,
through the reader (`Reader.chains`).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from django.conf import settings

from ..attribution import (
    GUARD_SELF_REFERRAL,
    Attribution,
    ContactLead,
    PartnerState,
    Policy,
    Touch,
    contact_lead,
    is_self_referral,
)
from ..calculation import (
    LEAD,
    OVERRIDE,
    PAYMENT,
    SALE,
    Item,
    ProgramLine,
    order_base,
    program_lines,
)
from ..models import CommissionEntry, ReferralSource
from ..money import ZERO
from ..selectors import Chain, EngineSettings
from .reader import Reader
from .track import Tracked


class HistoryEntry(NamedTuple):
    """A click (or the coupon) an event adds to its contact's referral history."""

    touch: Touch
    source: str
    partner: PartnerState  # its partner's (cookie days: when the entry expires)


@dataclass(frozen=True)
class EventPlan:
    """What one web form or order writes, decided; the ids it names are those given to
    its plan (or placeholders the writer fills in)."""

    lead_fix: ContactLead | None  # the contact's lead partner, fixed by this event
    entries: tuple[HistoryEntry, ...]  # for the contact's history, once per click
    order: tuple | None  # an order's row, in the order of ORDER_FIELDS
    lead: tuple | None  # a web form's row, in the order of LEAD_FIELDS
    lines: tuple["CommissionRow", ...]  # an order's commission lines
    credited: tuple[tuple[int, str], ...]  # (partner id, kind) to notify
    # The event's result, given the ids of its commission lines and the partners' codes.
    answer: Callable[..., dict]

    def result(self, *, ids: Sequence[int], codes: Mapping[int, str]) -> dict:
        """What the event answers (and its event row keeps)."""
        return self.answer(rows=self.lines, ids=ids, codes=codes)


def history_entries(tracked: Tracked) -> tuple[HistoryEntry, ...]:
    """The history entries of what `track` found: the cookie's clicks that count or the
    IP address's click that decided (at most one of them: the IP address is looked at
    only when nothing else decided), and a coupon that decided (SPEC §11)."""
    return tuple(
        HistoryEntry(touch, source, tracked.partners[touch.partner_id])
        for source, touches in (
            (ReferralSource.COOKIE, tracked.cookie),
            (ReferralSource.IP, tracked.ip),
            (ReferralSource.COUPON, tracked.coupon),
        )
        for touch in touches
    )


def order_plan(
    *,
    reader: Reader,
    data: Mapping[str, Any],
    at: datetime,
    engine: EngineSettings,
    chains: dict[int, Chain],
    tracked: Tracked,
    explicit_lead: Attribution | None,
    explicit_sale: Attribution | None,
    contact_pk: int,
    contact: ContactLead,
    email: str,
    event_pk: int,
    order_pk: Any,
    traced: bool = True,
) -> EventPlan:
    """An order of the contact `contact_pk` (`email`, normalised; its lead partner before
    the event `contact`): its lead and sale partners (SPEC §4) and its commission lines
    up their chains (§5.2). `order_pk`: the order's id, or the placeholder of a writer
    that learns it as it writes. `traced` False: the lines without their traces (a what-if
    replay, which only sums them)."""
    explicit_lead, explicit_sale = order_named(tracked, explicit_lead, explicit_sale)
    fix, lead_id, lead_trace = contact_lead(contact, explicit_lead or tracked.attribution, at)
    credit = order_credit(
        explicit_lead=explicit_lead,
        explicit_sale=explicit_sale,
        attribution=tracked.attribution,
        lead_id=lead_id,
        lead_trace=lead_trace,
    )
    reader.chains([credit.lead_id, credit.sale_id], chains)
    credit = order_guarded(credit, engine=engine, chains=chains, buyer_email=email)
    items = order_items(data)
    order, base, currency = order_values(
        event_pk=event_pk,
        event_id=data["event_id"],
        contact_pk=contact_pk,
        data=data,
        items=items,
        credit=credit,
        at=at,
    )
    lines, unpaid = order_commission_rows(
        order_id=order_pk,
        base=base,
        items=items,
        discount=data.get("discount") or ZERO,
        currency=currency,
        at=at,
        credit=credit,
        chains=chains,
        policy=engine.policy,
        cycle=subscription_cycle(data),
        traced=traced,
    )
    if unpaid:
        order = order_unpaid(order, unpaid)
    return EventPlan(
        lead_fix=fix,
        entries=history_entries(tracked),
        order=order,
        lead=None,
        lines=tuple(lines),
        credited=tuple((line.partner, line.kind) for line in lines),
        answer=partial(order_result, event_id=data["event_id"], base=base, credit=credit),
    )


def web_form_plan(
    *,
    reader: Reader,
    data: Mapping[str, Any],
    at: datetime,
    chains: dict[int, Chain],
    tracked: Tracked,
    explicit_lead: Attribution | None,
    contact_pk: int,
    contact: ContactLead,
    event_pk: int,
) -> EventPlan:
    """A web form of the contact `contact_pk` (its lead partner before the event
    `contact`): its lead partner, fixed at the contact's first attribution. Pays nothing
    (SPEC §5.1)."""
    fix, lead_id, trace = contact_lead(contact, explicit_lead or tracked.attribution, at)
    reader.chains([lead_id], chains)
    return EventPlan(
        lead_fix=fix,
        entries=history_entries(tracked),
        order=None,
        lead=web_form_values(
            event_pk=event_pk, contact_pk=contact_pk, data=data, lead_id=lead_id, trace=trace, at=at
        ),
        lines=(),
        credited=((lead_id, LEAD),) if lead_id is not None else (),
        answer=partial(
            _web_form_answer, event_id=data["event_id"], contact_id=contact_pk, lead_id=lead_id,
            trace=trace,
        ),
    )  # fmt: skip


def _web_form_answer(*, rows: Sequence, ids: Sequence[int], codes: Mapping, **result) -> dict:
    return web_form_result(codes=codes, **result)


def order_named(
    tracked: Tracked, explicit_lead: Attribution | None, explicit_sale: Attribution | None
) -> tuple[Attribution | None, Attribution | None]:
    """The lead and sale partners an order names: a renewal's are those of its
    subscription's first order, whatever the event names (SPEC §10, `Tracked.renewal`)."""
    if tracked.renewal is not None:
        return tracked.renewal.lead, tracked.renewal.sale
    return explicit_lead, explicit_sale


def subscription_cycle(data: Mapping[str, Any]) -> int:
    """The order's cycle of its subscription; 1 (a first payment) without one."""
    return (data.get("subscription") or {}).get("cycle", 1)


def chain_partners(chains: Mapping[int, Chain]) -> dict:
    """Every partner of the chains, by id: code and email switches."""
    return {p.id: p for chain in chains.values() for p in chain.partners}


def attribution_brief(attribution: Mapping[str, Any]) -> dict:
    """The attribution an event answers: its source and rule, and a guard that stopped it."""
    brief = {"source": attribution.get("source"), "rule": attribution.get("rule")}
    if attribution.get("guard"):
        brief["guard"] = attribution["guard"]  # the guard that stopped the commissions
    return brief


# --- The rows (the order of the fields each table is written with) -------------------------


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
    program_version: int | None  # the program's terms it was worked out with (SPEC §10)
    trace: dict
    occurred_at: datetime
    payable_at: datetime  # pending until then (SPEC §11): the program's hold days after `at`
    # A program that credits on payment (SPEC §10): 0, credited as the customer pays.
    credited: Decimal | None = None


COMMISSION_FIELDS = CommissionRow._fields


ORDER_FIELDS = ("event", "order_id", "contact", "currency", "items", "discount", "shipping")
ORDER_FIELDS += ("tax", "base", "total", "refunded", "ip", "lead_partner", "sale_partner")
ORDER_FIELDS += ("lead_trace", "sale_trace", "occurred_at", "subscription_id", "subscription_cycle")


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
    items: Sequence[Item],
    credit: Credit,
    at: datetime,
) -> tuple[tuple, Decimal, str]:
    """An order's row (in the order of ORDER_FIELDS), its base and its currency; `items`:
    its items as the rules take them (`order_items`)."""
    currency = data.get("currency") or settings.DEFAULT_CURRENCY
    discount, shipping, tax = (data.get(k) or ZERO for k in ("discount", "shipping", "tax"))
    base = order_base(items, discount)
    subscription = data.get("subscription") or {}
    stored_items = [
        {**i, "quantity": i["quantity"], "unit_price": str(i["unit_price"])} for i in data["items"]
    ]
    order = (
        event_pk, event_id, contact_pk, currency, stored_items, discount, shipping, tax, base,
        base + shipping + tax, ZERO, data.get("ip"), credit.lead_id, credit.sale_id,
        credit.lead_trace, credit.sale_trace, at, subscription.get("id", ""),
        subscription.get("cycle"),
    )  # fmt: skip
    return order, base, currency


def order_unpaid(order: tuple, unpaid: Mapping[str, Mapping[int, str]]) -> tuple:
    """The order's row with, on the trace of each kind, why programs paid it nothing: a
    renewal past their limit (SPEC §10), `"unpaid": {program id: why}`."""
    row = dict(zip(ORDER_FIELDS, order, strict=True))
    for kind, reasons in unpaid.items():
        trace = f"{kind}_trace"
        row[trace] = {**row[trace], "unpaid": {str(pk): why for pk, why in reasons.items()}}
    return tuple(row.values())


def order_items(data: Mapping[str, Any]) -> list[Item]:
    """An order's items as the rules take them (quantity, unit price, sku)."""
    return [
        Item(quantity=i["quantity"], unit_price=i["unit_price"], sku=i.get("sku") or "")
        for i in data["items"]
    ]


def order_commission_rows(
    *,
    order_id: int,
    base: Decimal,
    items: Sequence[Item],
    discount: Decimal,
    currency: str,
    at: datetime,
    credit: Credit,
    chains: Mapping[int, Chain],
    policy: Policy,
    cycle: int = 1,
    traced: bool = True,
) -> tuple[list[CommissionRow], dict[str, dict[int, str]]]:
    """Every commission line of an order: lead then sale, up each credited partner's chain;
    nothing for a kind nobody is credited for, or that a guard stopped. With them, by kind,
    the programs that paid nothing because the order (`cycle` of its subscription) is a
    renewal past their limit, and why (SPEC §10)."""
    rows, unpaid = [], {}
    for kind, partner_id, trace in (
        (LEAD, credit.lead_id, credit.lead_trace),
        (SALE, credit.sale_id, credit.sale_trace),
    ):
        if partner_id is not None and not (trace or {}).get("guard"):
            lines, unpaid[kind] = _commission_rows(
                order_id=order_id,
                base=base,
                items=items,
                discount=discount,
                currency=currency,
                at=at,
                kind=kind,
                partner_id=partner_id,
                trace=trace,
                chain=chains[partner_id],
                policy=policy,
                cycle=cycle,
                traced=traced,
            )
            rows += lines
    return rows, {kind: reasons for kind, reasons in unpaid.items() if reasons}


def _commission_rows(
    *,
    order_id: int,
    base: Decimal,
    items: Sequence[Item],
    discount: Decimal,
    currency: str,
    at: datetime,
    kind: str,
    partner_id: int,
    trace: dict,
    chain: Chain,
    policy: Policy,
    cycle: int = 1,
    traced: bool = True,
) -> tuple[list[CommissionRow], Mapping[int, str]]:
    """The lines one kind pays up the credited partner's chain, each with its trace: one
    per (partner, level, program) (SPEC §10, `calculation.program_lines`); and the programs
    a renewal (`cycle` 2 and on) past their limit left unpaid, with why.

    With one program and no product rates (SPEC §5.2 exactly), on a line no override paid,
    the trace is as it always was: the rate of the level and the order's base. Otherwise it
    also says, per item, which
    rate paid it (`items`) and which items no program covers (`uncovered`), and the base is
    that of the items the line's program pays."""
    if not chain.programs:
        return [], {}
    paid = program_lines(
        programs=chain.programs,
        overrides=chain.overrides,
        items=items,
        discount=discount,
        kind=kind,
        chain=chain.members,
        has_parent=chain.has_parent,
        currency=currency,
        cycle=cycle,
    )
    one_program = len(chain.programs) == 1 and not chain.programs[0].product_rates
    # The same for every line (values that are never changed, so the lines share them).
    hold_days = {p.id: p.terms.hold_days for p in chain.programs}
    payable_at = {pk: at + timedelta(days=days) for pk, days in hold_days.items()}
    on_payment = {p.id for p in chain.programs if p.credit_on == PAYMENT}
    if traced:
        uncovered = [{"item": i, "sku": items[i].sku} for i in paid.uncovered]
        programs = {
            p.id: {"id": p.id, "name": p.terms.name, "levels": p.terms.levels,
                   "version": p.version_id}
            for p in chain.programs
        }  # fmt: skip
        applied = {
            "partner_selection": policy.partner_selection,
            "tracking_method": policy.tracking_method,
            "use_ip_address": policy.use_ip_address,
        }
    rows = []
    for line in paid.lines:
        # A line paid with an override says so per item, as any line beyond §5.2 does.
        simple = one_program and OVERRIDE not in line.rates_paid()
        row_base = base if simple else line.base
        row_trace = _line_trace(
            line, trace=trace, partner_id=partner_id, program=programs[line.program_id],
            simple=simple, uncovered=uncovered, hold_days=hold_days[line.program_id],
            base=row_base, policy=applied,
        ) if traced else {}  # fmt: skip
        rows.append(
            CommissionRow(
                partner=line.partner_id,
                order=order_id,
                level=line.level,
                kind=kind,
                entry=CommissionEntry.COMMISSION,
                base=row_base,
                amount=line.amount,
                currency=currency,
                program=line.program_id,
                program_version=line.program_version_id,
                occurred_at=at,
                payable_at=payable_at[line.program_id],
                trace=row_trace,
                credited=ZERO if line.program_id in on_payment else None,
            )
        )
    return rows, paid.unpaid


def _line_trace(
    line: ProgramLine, *, trace: dict, partner_id: int, program: dict, simple: bool,
    uncovered: list, hold_days: int, base: Decimal, policy: dict,
) -> dict:  # fmt: skip
    """How a line was worked out: the attribution, the program, the rate of its level (one
    program without product rates or overrides: SPEC §5.2's trace) or each item's rate, its
    hold days, base and the policy applied."""
    row_trace = {"attribution": trace, "credited_partner_id": partner_id, "program": program}
    if simple:
        row_trace["rates"] = _level_rates(line)
    else:
        row_trace["items"] = [item.trace() for item in line.items]
        if uncovered:
            row_trace["uncovered"] = uncovered
    row_trace.update(hold_days=hold_days, base=str(base), policy=policy)
    return row_trace


def _level_rates(line: ProgramLine) -> dict:
    """The one rate a line of a single program without product rates was paid at (every
    item has it): "level N" or "unused", with its amount and percent (SPEC §5.2's trace)."""
    first = line.items[0]
    names = {"unused": "unused", "renewal": f"renewal level {line.level}"}
    return {
        "rate": names.get(first.rate, f"level {line.level}"),
        "amount": str(first.amount),
        "percent": str(first.percent),
    }


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


LEAD_FIELDS = ("event", "contact", "form", "partner", "trace", "occurred_at")


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
