"""What-if replay (SPEC §13): what a change to the defaults or a program would have paid.

`simulation_run` replays every stored event of a range (web forms, orders, refunds and
customer payments whose `occurred_at` is in [start, end)), in the order they were recorded,
through the importer's own batch engine (`commissions.importing.Batch`: `track`, then
`order_plan` / `web_form_plan`), and compares what they would pay with what is recorded.
It writes nothing:

- **The proposed terms** are made by the save services themselves (`defaults_update`,
  `program_update`) inside a transaction that is always rolled back, after the engine's
  own selectors read the defaults and every partner's chain under them (`proposed_terms`).
  So a proposal is validated by the rules that would save it, and paid by the terms the
  engine would read; the defaults row is locked only while they are read.
- **The world as it stood** (`AsItStood`): the contacts' lead partners fixed before the
  range; the referral history stored before the first replayed event was recorded, plus
  what the replayed events add; the subscriptions' first orders from before the range, plus
  the replayed ones; clicks by their time, as stored.
- **The writer keeps rows in memory**: per partner and currency, the sums of what the
  replayed events would earn (`Commission.objects.ledger()`'s rule: the lines of programs
  that credit on payment count through their credits), each order's lines only while a
  later refund or payment of the range still needs them.

`now` is what is recorded for the same events: the ledger's commission, clawback and
credit entries dated in the range. Refunds and payments of orders from before the range are
not worked out again (their lines are not replayed): they count as recorded on both sides.
Staff's rejections are not events, and count on neither side.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import count, pairwise
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from partners.models import DefaultsChange, Partner, Program, ProgramVersion
from partners.services.defaults import defaults_update
from partners.services.programs import program_update
from partners.terms import terms_changes

from . import validation
from .aggregates import money_sum
from .attribution import ContactLead, FirstOrder, Touch
from .calculation import payment_credits, refund_shares
from .importing import (
    AFTER_ORDERS,
    DEFAULT_BATCH_SIZE,
    RULES,
    Batch,
    BatchContact,
    Line,
    StoredWorld,
    garbage_collected_per_batch,
)
from .intake.plan import ORDER_FIELDS, chain_partners
from .models import Commission, CommissionEntry, Event, EventKind, Order
from .money import ZERO, round_money
from .selectors import (
    Chain,
    EngineSettings,
    engine_with_chains,
    first_orders,
    history_picks,
    partner_chains,
    referrals_known,
)
from .serializers import partners_named
from .services.payments import payment_amount
from .services.refunds import refund_amount

ACTOR = "what-if replay"
ORDERS_SHOWN = 500  # the orders that change, detailed, at most
CHAINS_PER_QUERY = 500
REPLAYED_ENTRIES = (CommissionEntry.COMMISSION, CommissionEntry.CLAWBACK, CommissionEntry.CREDIT)
Progress = Callable[[int, int], None]


class _Proposed(Exception):
    """Leaves the transaction of the proposal (rolling it back) with what was read in it."""

    def __init__(self, engine: EngineSettings, chains: dict[int, Chain]):
        self.engine, self.chains = engine, chains


def proposed_terms(
    *, defaults: Mapping[str, Any], programs: Sequence[Mapping[str, Any]]
) -> tuple[EngineSettings, dict[int, Chain]]:
    """The engine settings and every partner's chain under the proposal: the defaults'
    `data` and each program's `program_update` arguments (`{"program": id, "data": …,
    "rates": …, …}`), saved by their services in a transaction that is rolled back.
    ValidationError names the field: `defaults.<field>`, `programs[n].<field>`."""
    try:
        with transaction.atomic():
            if defaults:
                with _named("defaults."):
                    defaults_update(data=defaults, acting_user=None, actor=ACTOR)
            for n, change in enumerate(programs):
                change = dict(change)
                pk = change.pop("program", None)
                program = Program.objects.filter(pk=pk).first() if isinstance(pk, int) else None
                if program is None:
                    raise ValidationError({f"programs[{n}].id": f"There is no program {pk!r}."})
                with _named(f"programs[{n}]."):
                    program_update(
                        program=program, data=change.pop("data", {}), actor=ACTOR, **change
                    )
            engine, _ = engine_with_chains([])
            raise _Proposed(engine, _every_chain())
    except _Proposed as proposed:
        return proposed.engine, proposed.chains


class _named:
    """Prefix the fields a ValidationError names (`defaults.`, `programs[0].`)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            raise ValidationError(
                {f"{self.prefix}{name}": messages for name, messages in error.message_dict.items()}
            ) from error


def _every_chain() -> dict[int, Chain]:
    """Every partner's chain (any partner may be credited by some event of the range)."""
    ids = list(Partner.objects.order_by("pk").values_list("pk", flat=True))
    chains: dict[int, Chain] = {}
    for start in range(0, len(ids), CHAINS_PER_QUERY):
        chains.update(partner_chains(ids[start : start + CHAINS_PER_QUERY]))
    return chains


class AsItStood(StoredWorld):
    """What a replayed batch reads: the proposal's engine and chains, and the world as it
    stood before the range (`start`) and before its first event was recorded
    (`stored_before`); what the replayed events add is carried in memory by the replay."""

    def __init__(
        self, *, engine: EngineSettings, chains: dict[int, Chain], start: datetime,
        stored_before: datetime,
    ):  # fmt: skip
        self.engine, self.every_chain = engine, chains
        self.start, self.stored_before = start, stored_before
        self.fake_ids = count(-1, -1)  # rows that are never written: ids no row has

    def engine_and_chains(self, named: Iterable[int]) -> tuple[EngineSettings, dict[int, Chain]]:
        return self.engine, self.every_chain

    def chains(self, partner_ids: Iterable[int]) -> dict[int, Chain]:
        every = self.every_chain
        return {pk: every[pk] for pk in partner_ids if pk in every}

    def first_orders(self, subscription_ids: Iterable[str]) -> dict[str, FirstOrder]:
        # Those of the range are replayed: the batch carries them (`Replay.first_orders`).
        return {
            key: first
            for key, first in first_orders(subscription_ids).items()
            if first.at < self.start
        }

    def contact_leads(self, emails: list[str]) -> dict[str, tuple[int, ContactLead]]:
        # A lead fixed at (or after) the start was fixed by a replayed event, or later.
        return {
            email: (pk, lead if lead.set_at is None or lead.set_at < self.start else ContactLead())
            for email, (pk, lead) in super().contact_leads(emails).items()
        }

    def history_picks(
        self, wanted: list[tuple[int, str, datetime]], *, rule: str
    ) -> dict[int, tuple[Touch, Chain]]:
        picked = history_picks(wanted, rule=rule, before=self.stored_before)
        every = self.every_chain
        return {n: (t, every.get(t.partner_id, c)) for n, (t, c) in picked.items()}

    def referrals_known(self, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return referrals_known(pairs, before=self.stored_before)

    def ids_reserve(self, counts: Mapping[type, int]) -> dict[type, list[int]]:
        return {model: [next(self.fake_ids) for _ in range(n)] for model, n in counts.items()}


@dataclass
class _LineState:
    """A replayed commission line a later refund or payment of the range works on."""

    partner: int
    amount: Decimal
    credited: Decimal | None  # None: credited at the order
    taken: Decimal = ZERO  # what refunds took back (positive)


@dataclass
class _OrderState:
    total: Decimal
    currency: str
    lines: list[_LineState]
    refunded: Decimal = ZERO
    paid: Decimal = ZERO


@dataclass
class Replay:
    """One replay's running state: what it carries from batch to batch, and its sums."""

    start: datetime
    end: datetime
    world: AsItStood
    detail: bool = False
    contacts: dict[str, BatchContact] = field(default_factory=dict)
    first_orders: dict[str, FirstOrder] = field(default_factory=dict)
    followed: set[str] = field(default_factory=set)  # orders a refund or payment names
    orders: dict[str, _OrderState] = field(default_factory=dict)
    # What the replayed events would earn, per (partner, currency).
    proposed: dict[tuple[int, str], Decimal] = field(
        default_factory=lambda: defaultdict(lambda: ZERO)
    )
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    changed: list[dict] = field(default_factory=list)
    changing_partner: int = 0

    def run(self, progress: Progress | None) -> None:
        events = _range(Event.objects.all(), self.start, self.end)
        total = events.count()
        self.followed = set(
            events.filter(kind__in=AFTER_ORDERS).values_list("payload__order_id", flat=True)
        )
        done = 0
        with garbage_collected_per_batch(DEFAULT_BATCH_SIZE) as collect:
            for chunk in _chunks(_stored_events(events), DEFAULT_BATCH_SIZE):
                self._batch(chunk)
                collect()
                done += len(chunk)
                if progress is not None:
                    progress(done, total)

    def _batch(self, chunk: list[tuple]) -> None:
        lines = _lines(chunk)
        for line in lines:
            self.counts[line.kind] += 1
        valid = [line for line in lines if line.data is not None]
        self.counts["not_replayed"] += len(lines) - len(valid)
        intake = [line for line in valid if line.kind not in AFTER_ORDERS]
        if intake:
            batch = Batch(intake, carried=self.contacts, first_orders=self.first_orders,
                          world=self.world, traced=False)  # fmt: skip
            batch.plan()
            for contact in batch.contacts.values():
                contact.entries = [*contact.carried, *contact.entries]  # nothing is stored
                self.contacts[contact.email] = contact
            self.first_orders.update(batch.first_orders)
            recorded = _recorded_lines(batch) if self.detail else {}
            codes = {pk: p.code for pk, p in batch.partners.items()}
            for event in batch.events:
                if event.is_order:
                    self._order(event, recorded.get(event.order_pk), codes)
        for line in valid:
            if line.kind in AFTER_ORDERS:
                self._after_order(line)

    def _order(self, event: Any, recorded: list | None, codes: Mapping[int, str]) -> None:
        plan, line = event.plan, event.line
        order = dict(zip(ORDER_FIELDS, plan.order, strict=True))
        for row in plan.lines:
            if row.credited is None:
                self.proposed[row.partner, row.currency] += row.amount
        order_id = order["order_id"]
        if order_id in self.followed:
            self.orders[order_id] = _OrderState(
                total=order["total"],
                currency=order["currency"],
                lines=[_LineState(r.partner, r.amount, r.credited) for r in plan.lines],
            )
        was = (line.recorded_lead, line.recorded_sale)
        moved = was != (order["lead_partner"], order["sale_partner"])
        self.changing_partner += moved
        if not self.detail:
            return
        lines = sorted((r.partner, r.level, r.kind, r.amount) for r in plan.lines)
        if (moved or lines != sorted(recorded or [])) and len(self.changed) < ORDERS_SHOWN + 1:
            self.changed.append(
                {
                    "order_pk": event.order_pk,
                    "order_id": order_id,
                    "occurred_at": event.at.isoformat(),
                    "proposed": _order_side(
                        order["lead_partner"], order["sale_partner"], lines,
                        order["lead_trace"], order["sale_trace"], codes,
                    ),
                }
            )  # fmt: skip

    def _after_order(self, line: Line) -> None:
        """A refund or a customer's payment, on the order as the replay left it; one of an
        order from before the range counts as recorded (`now`) on both sides."""
        data = line.data
        state = self.orders.get(data["order_id"])
        if state is None:
            self.counts["as_recorded"] += 1
            return
        on_payment = any(one.credited is not None for one in state.lines)
        try:
            if line.kind == EventKind.REFUND:
                left = (state.paid if on_payment else state.total) - state.refunded
                amount = refund_amount(
                    given=data.get("amount"), left=left, credited_on_payment=on_payment
                )
            else:
                amount = payment_amount(given=data["amount"], left=state.total - state.paid)
        except ValidationError:
            self.counts["refused"] += 1  # the proposal leaves it nothing to refund or pay
            return
        if line.kind == EventKind.REFUND:
            shares = refund_shares(
                lines=[one.amount for one in state.lines],
                credited=[one.credited for one in state.lines],
                taken=[one.taken for one in state.lines],
                order_total=state.total, paid=state.paid, refunded_before=state.refunded,
                refund=amount, currency=state.currency,
            )  # fmt: skip
            for one, share in zip(state.lines, shares, strict=True):
                one.taken -= share
                self.proposed[one.partner, state.currency] += share
            state.refunded += amount
            return
        paid_lines = [one for one in state.lines if one.credited is not None]
        shares = payment_credits(
            lines=[one.amount for one in paid_lines],
            credited_so_far=[one.credited for one in paid_lines],
            order_total=state.total, paid_before=state.paid, payment=amount,
            currency=state.currency,
        )  # fmt: skip
        for one, share in zip(paid_lines, shares, strict=True):
            one.credited += share
            self.proposed[one.partner, state.currency] += share
        state.paid += amount


def _range(events: Any, start: datetime, end: datetime) -> Any:
    kinds = [EventKind.WEB_FORM, EventKind.ORDER, EventKind.REFUND, EventKind.PAYMENT]
    return events.filter(occurred_at__gte=start, occurred_at__lt=end, kind__in=kinds)


@dataclass
class StoredLine(Line):
    """A stored event as the batch engine takes it, with the partners its order was
    recorded with."""

    recorded_lead: int | None = None
    recorded_sale: int | None = None


def _stored_events(events: Any) -> Iterator[tuple]:
    """The range's events in the order they were recorded, streamed (a server-side cursor
    on PostgreSQL), each with its order's id and recorded partners."""
    return (
        events.order_by("id")
        .values_list(
            "id",
            "kind",
            "payload",
            "occurred_at",
            "order__id",
            "order__lead_partner_id",
            "order__sale_partner_id",
        )
        .iterator(chunk_size=DEFAULT_BATCH_SIZE)
    )


def _chunks(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _lines(chunk: list[tuple]) -> list[StoredLine]:
    """The chunk's events validated again by the API's rules (`data` None: no longer valid,
    e.g. a partner it names is gone), each dated as it was recorded."""
    codes = set()
    for _, kind, payload, *_ in chunk:
        codes |= validation.codes_named(RULES[kind], payload)
    partners = partners_named(codes)
    lines = []
    for n, (pk, kind, payload, at, order_pk, lead, sale) in enumerate(chunk):
        line = StoredLine(number=n, kind=kind, payload=payload, event_pk=pk, order_pk=order_pk)
        line.recorded_lead, line.recorded_sale = lead, sale
        try:
            line.data = {**RULES[kind].validate(payload, partners), "occurred_at": at}
        except validation.Invalid as error:
            line.errors = error.detail
        lines.append(line)
    return lines


def _recorded_lines(batch: Batch) -> dict[int, list[tuple]]:
    """The recorded lines of the batch's orders (partner, level, kind, amount), by order id:
    one query."""
    found: dict[int, list[tuple]] = defaultdict(list)
    rows = Commission.objects.filter(
        order__in=[e.order_pk for e in batch.events if e.is_order],
        entry=CommissionEntry.COMMISSION,
    ).values_list("order_id", "partner_id", "level", "kind", "amount")
    for order_pk, *line in rows:
        found[order_pk].append(tuple(line))
    return found


def _order_side(
    lead: int | None, sale: int | None, lines: Iterable[tuple], lead_trace: dict,
    sale_trace: dict, codes: Mapping[int, str],
) -> dict:  # fmt: skip
    return {
        "lead_partner": codes.get(lead),
        "sale_partner": codes.get(sale),
        "lines": [
            {"partner": codes.get(partner), "level": level, "kind": kind, "amount": str(amount)}
            for partner, level, kind, amount in lines
        ],
        "lead_trace": lead_trace,
        "sale_trace": sale_trace,
    }


def recorded_sums(start: datetime, end: datetime) -> tuple[dict, dict]:
    """What is recorded for the range's events, per (partner, currency): the ledger's
    commission, clawback and credit entries dated in the range, those of orders of the range
    (replayed) and of orders from before it (counted as recorded on both sides)."""
    entries = Commission.objects.ledger().filter(
        occurred_at__gte=start, occurred_at__lt=end, entry__in=REPLAYED_ENTRIES
    )
    of_range = {"order__occurred_at__gte": start, "order__occurred_at__lt": end}
    sums = []
    for rows in (entries.filter(**of_range), entries.exclude(**of_range)):
        grouped = rows.values("partner", "currency").annotate(total=money_sum("amount"))
        sums.append({(r["partner"], r["currency"]): r["total"] for r in grouped})
    return sums[0], sums[1]


def settings_changed(start: datetime) -> list[dict]:
    """The saves of the defaults and the programs' new terms since `start`: what was
    recorded since then was worked out under other terms than today's."""
    changed = [
        {"at": change.at.isoformat(), "what": "defaults",
         "changes": terms_changes(
             {k: v.get("old") for k, v in change.changes.items()},
             {k: v.get("new") for k, v in change.changes.items()},
         )}
        for change in DefaultsChange.objects.filter(at__gte=start).order_by("at", "id")
    ]  # fmt: skip
    newer = ProgramVersion.objects.filter(created_at__gte=start, number__gt=1)
    programs = set(newer.values_list("program_id", flat=True))
    versions = ProgramVersion.objects.filter(program_id__in=programs).select_related("program")
    by_program: dict[int, list[ProgramVersion]] = defaultdict(list)
    for version in versions.order_by("program_id", "number"):
        by_program[version.program_id].append(version)
    for history in by_program.values():
        for before, version in pairwise(history):
            if version.created_at >= start:
                changed.append(
                    {"at": version.created_at.isoformat(),
                     "what": f"program {version.program.name} (version {version.number})",
                     "changes": terms_changes(before.terms, version.terms)}
                )  # fmt: skip
    return sorted(changed, key=lambda one: one["at"])


def simulation_run(
    *,
    start: datetime,
    end: datetime,
    defaults: Mapping[str, Any] | None = None,
    programs: Sequence[Mapping[str, Any]] = (),
    detail: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Replay the range's events under the proposal (SPEC §13) and compare with what is
    recorded; writes nothing. ValidationError names a bad field."""
    if end <= start:
        raise ValidationError({"end": "The end must be after the start."})
    engine, chains = proposed_terms(defaults=defaults or {}, programs=programs)
    first = _range(Event.objects.all(), start, end).order_by("id").values_list("received_at")
    stored_before = first.first()
    world = AsItStood(
        engine=engine, chains=chains, start=start,
        stored_before=stored_before[0] if stored_before else end,
    )  # fmt: skip
    replay = Replay(start=start, end=end, world=world, detail=detail)
    replay.run(progress)
    now, before_range = recorded_sums(start, end)
    proposed = dict(replay.proposed)
    for key, amount in before_range.items():
        now[key] = now.get(key, ZERO) + amount
        proposed[key] = proposed.get(key, ZERO) + amount
    return _answer(replay, now, proposed, chains)


def _answer(replay: Replay, now: dict, proposed: dict, chains: Mapping[int, Chain]) -> dict:
    currency = settings.DEFAULT_CURRENCY
    names = dict(
        Partner.objects.filter(pk__in={pk for pk, _ in now.keys() | proposed.keys()}).values_list(
            "pk", "name"
        )
    )
    codes = {pk: p.code for pk, p in chain_partners(chains).items()}
    rows = []
    for key in now.keys() | proposed.keys():
        was, will = now.get(key, ZERO), proposed.get(key, ZERO)
        if was == ZERO and will == ZERO:
            continue
        partner, its_currency = key
        rows.append(
            {"partner": codes.get(partner), "name": names.get(partner, ""),
             "currency": its_currency, "now": _money(was, its_currency),
             "proposed": _money(will, its_currency), "change": _money(will - was, its_currency)}
        )  # fmt: skip
    rows.sort(key=lambda r: (-abs(Decimal(r["change"])), r["partner"] or "", r["currency"]))
    totals = {
        side: sum((v for (_, c), v in sums.items() if c == currency), ZERO)
        for side, sums in (("now", now), ("proposed", proposed))
    }
    answer = {
        "start": replay.start.isoformat(),
        "end": replay.end.isoformat(),
        "events": sum(replay.counts[kind] for kind in EventKind.values),
        "orders": replay.counts[EventKind.ORDER],
        "web_forms": replay.counts[EventKind.WEB_FORM],
        "refunds": replay.counts[EventKind.REFUND],
        "payments": replay.counts[EventKind.PAYMENT],
        "not_replayed": replay.counts["not_replayed"],
        "refused": replay.counts["refused"],
        "orders_changing_partner": replay.changing_partner,
        "currency": currency,
        "total_now": _money(totals["now"], currency),
        "total_proposed": _money(totals["proposed"], currency),
        "change": _money(totals["proposed"] - totals["now"], currency),
        "partners": rows,
        "settings_changed": settings_changed(replay.start),
    }
    if replay.detail:
        answer["orders_changed"] = _orders_changed(replay.changed[:ORDERS_SHOWN], codes)
        answer["orders_changed_truncated"] = len(replay.changed) > ORDERS_SHOWN
    return answer


def _money(value: Decimal, currency: str) -> str:
    return str(round_money(value, currency) + 0)  # + 0: no "-0.00"


def _orders_changed(changed: list[dict], codes: Mapping[int, str]) -> list[dict]:
    """The orders that change, each with its recorded side (`now`): two queries."""
    pks = [one["order_pk"] for one in changed]
    orders = {
        pk: rest
        for pk, *rest in Order.objects.filter(pk__in=pks).values_list(
            "pk", "lead_partner_id", "sale_partner_id", "lead_trace", "sale_trace"
        )
    }
    lines: dict[int, list] = defaultdict(list)
    for order_pk, *line in (
        Commission.objects.filter(order__in=pks, entry=CommissionEntry.COMMISSION)
        .order_by("partner_id", "level", "kind")
        .values_list("order_id", "partner_id", "level", "kind", "amount")
    ):
        lines[order_pk].append(tuple(line))
    answer = []
    for one in changed:
        pk = one.pop("order_pk")
        lead, sale, lead_trace, sale_trace = orders[pk]
        now = _order_side(lead, sale, sorted(lines[pk]), lead_trace, sale_trace, codes)
        answer.append({**one, "now": now})
    return answer
