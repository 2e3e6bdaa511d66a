"""How much each partner earns on an order, and what a refund takes back (SPEC §5.2-5.4);
commission programs in depth (SPEC §10): discount shares, which program pays each item,
product, override, unused and renewal rates, credit on payment.

Pure: no ORM, no clock. Amounts are Decimal and every line is rounded once, by
`round_money`. The engine pays orders with `program_lines`; `commission_lines` is §5.2's
one-program rule, which `program_lines` equals for one program without product rates and
takes as its shortcut then (the usual order: a third of the general rule's cost). The
values made per order (items, lines) are named tuples: a frozen dataclass costs several
times as much to make, per line of every order.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from .money import ZERO, round_money, zero_like

LEAD, SALE = "lead", "sale"
HUNDRED = Decimal("100")


class Item(NamedTuple):
    quantity: int
    unit_price: Decimal
    sku: str = ""  # "" has no product rate

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Rate:
    amount: Decimal = ZERO
    percent: Decimal = ZERO


NO_RATE = Rate()  # what a level or kind without a rate pays: one object, not one per lookup


@dataclass(frozen=True)
class Terms:
    """A program as the rules need it: structure, per-level rates, pay-if-unused rates."""

    program_id: int
    name: str
    levels: int
    payout_on_lead: bool
    payout_on_sale: bool
    payout_amount: bool
    payout_percent: bool
    pay_if_unused: bool
    # {"lead": {1: Rate, 2: Rate, 3: Rate}, "sale": {...}}
    rates: Mapping[str, Mapping[int, Rate]] = field(default_factory=dict)
    # {"lead": Rate, "sale": Rate}
    unused: Mapping[str, Rate] = field(default_factory=dict)
    # Days its commissions are pending (SPEC §11): the program's, else the defaults'.
    hold_days: int = 0

    def pays(self, kind: str) -> bool:
        return self.payout_on_lead if kind == LEAD else self.payout_on_sale


@dataclass(frozen=True)
class ChainMember:
    """A partner at one level of the chain: level 1 is the credited partner."""

    partner_id: int
    level: int
    active: bool


class Line(NamedTuple):
    partner_id: int
    level: int
    kind: str
    base: Decimal
    amount: Decimal
    rate_amount: Decimal
    rate_percent: Decimal
    rate_name: str  # "level 1", "level 2", "level 3" or "unused"

    def rates(self) -> dict:
        return {
            "rate": self.rate_name,
            "amount": str(self.rate_amount),
            "percent": str(self.rate_percent),
        }


def order_base(items: Iterable[Item], discount: Decimal) -> Decimal:
    """Items' quantity x unit price, less the discount, never below 0. No shipping, no tax."""
    gross = sum((item.total for item in items), ZERO)
    base = gross - discount
    return base if base > ZERO else zero_like(base)


def level_amount(*, terms: Terms, rate: Rate, base: Decimal) -> Decimal:
    """(amount if payout_amount) + (base x percent / 100 if payout_percent), unrounded."""
    amount = rate.amount if terms.payout_amount else ZERO
    if terms.payout_percent:
        amount += base * rate.percent / HUNDRED
    return amount


def commission_lines(
    *,
    terms: Terms,
    kind: str,
    chain: Sequence[ChainMember],
    has_parent: bool,
    base: Decimal,
    currency: str,
) -> list[Line]:
    """The lines one kind pays up the chain of the credited partner.

    `chain` is the credited partner and those above it, level 1 first (it may be longer
    than the program's levels; the rest is ignored). `has_parent` says whether the credited
    partner has a parent at all, for pay-if-unused (SPEC §5.3).
    """
    if not terms.pays(kind) or not chain:
        return []
    lines = []
    rates, by_amount, by_percent = terms.rates[kind], terms.payout_amount, terms.payout_percent
    unused_first = terms.pay_if_unused and terms.levels >= 2 and not has_parent
    for member in chain[: terms.levels]:
        if not member.active:
            continue  # an inactive partner gets nothing; the chain goes on above
        level = member.level
        unused = unused_first and level == 1
        rate = terms.unused.get(kind, NO_RATE) if unused else rates.get(level, NO_RATE)
        amount = round_money(level_amount(terms=terms, rate=rate, base=base), currency)
        if amount == ZERO:
            continue
        lines.append(
            Line(
                partner_id=member.partner_id,
                level=level,
                kind=kind,
                base=base,
                amount=amount,
                rate_amount=rate.amount if by_amount else ZERO,
                rate_percent=rate.percent if by_percent else ZERO,
                rate_name="unused" if unused else f"level {level}",
            )
        )
    return lines


def clawbacks(
    *,
    lines: Sequence[Decimal],
    taken: Sequence[Decimal],
    order_total: Decimal,
    refunded_before: Decimal,
    refund: Decimal,
    currency: str,
) -> list[Decimal]:
    """What a refund takes back from each commission line, as negative amounts.

    `lines` are the commission amounts, `taken` what earlier refunds already took back
    from each (positive). Each line loses the refund's share of the order total; the refund
    that completes the total takes back exactly what is left, so a full refund nets to zero.
    """
    shares = _shares_of(
        lines=lines, done=taken, total=order_total, before=refunded_before, amount=refund,
        currency=currency, what=("refund", "refund"),
    )  # fmt: skip
    return [-share for share in shares]


def _shares_of(
    *,
    lines: Sequence[Decimal],
    done: Sequence[Decimal],
    total: Decimal,
    before: Decimal,
    amount: Decimal,
    currency: str,
    what: tuple[str, str],
) -> list[Decimal]:
    """Each line's share of `amount` (a refund, a payment) out of `total`: line x amount /
    total (half-up), never beyond what is left of the line (line - done); the amount that
    completes the total takes exactly what is left. `what` names it in the errors."""
    noun, verb = what
    if amount <= ZERO:
        raise ValueError(f"A {noun} must be positive.")
    if before + amount > total:
        raise ValueError(f"The {noun} exceeds what is left to {verb}.")
    completes = before + amount == total
    result = []
    for line, already in zip(lines, done, strict=True):
        left = line - already
        share = left if completes else min(round_money(line * amount / total, currency), left)
        result.append(share)
    return result


# --- Commission programs in depth (SPEC §10) -------------------------------------------


def discount_shares(items: Sequence[Item], discount: Decimal, currency: str) -> list[Decimal]:
    """The order's discount spread over its items in proportion to their totals (§10).

    Each share is the item's total x discount / items' total, rounded half-up by
    `round_money`; the last item, in the event's order, takes what is left, so the shares
    always sum exactly to the discount (no items: no shares). Two cases the rule leaves open:

    - All totals 0: there is nothing to be proportional to, so every share but the last is
      0 and the last takes the whole discount; every base is 0 anyway.
    - The discount is at least the items' total: the shares stay proportional (the last
      taking what is left) and every base is 0, as the order's base is (§5.2).

    Otherwise every share lies between 0 and its item's total: when the rounding of many
    small items adds up to more than the last item can take (or leaves it a negative
    share), the difference moves to the items before it, last first, so the item bases
    always sum to `order_base`.
    """
    if discount < ZERO:
        raise ValueError("A discount cannot be negative.")
    if not items:
        return []
    totals = [item.total for item in items]
    gross = sum(totals, ZERO)
    if gross == ZERO:
        return [zero_like(discount)] * (len(items) - 1) + [discount]
    shares = [round_money(total * discount / gross, currency) for total in totals[:-1]]
    if discount >= gross:
        return [*shares, discount - sum(shares, ZERO)]
    shares = [min(share, total) for share, total in zip(shares, totals[:-1], strict=True)]
    shares.append(discount - sum(shares, ZERO))
    # Move what the last item cannot take (or gives back) to the items before it.
    surplus = shares[-1] - totals[-1] if shares[-1] > totals[-1] else min(shares[-1], ZERO)
    shares[-1] -= surplus
    for index in reversed(range(len(shares) - 1)):
        if surplus == ZERO:
            break
        room = totals[index] - shares[index] if surplus > ZERO else -shares[index]
        moved = min(surplus, room) if surplus > ZERO else max(surplus, room)
        shares[index] += moved
        surplus -= moved
    return shares


def item_bases(items: Sequence[Item], discount: Decimal, currency: str) -> list[Decimal]:
    """Each item's total less its discount share, never below 0; they sum to `order_base`."""
    shares = discount_shares(items, discount, currency)
    if discount >= sum((item.total for item in items), ZERO):
        return [zero_like(item.total - share) for item, share in zip(items, shares, strict=True)]
    bases = [item.total - share for item, share in zip(items, shares, strict=True)]
    return [base if base > ZERO else zero_like(base) for base in bases]


@dataclass(frozen=True)
class ProductRate:
    """A program's rates for one sku, shaped as its own: per kind per level, and unused."""

    sku: str
    rates: Mapping[str, Mapping[int, Rate]] = field(default_factory=dict)
    unused: Mapping[str, Rate] = field(default_factory=dict)


ORDER, PAYMENT = "order", "payment"
OVERRIDE = "override"  # the rate name of an item paid at a partner's override


@dataclass(frozen=True)
class Program:
    """A program's pay rules (§10): its `Terms` (flags, default rates, unused rates) and more.

    `renewal_cycles`: how many renewals (cycles 2, 3, ...) earn commission, None for every
    renewal, 0 for none; `renewal_rates` (per kind per level) what they earn, None for the
    normal rates.
    """

    terms: Terms
    priority: int
    version_id: int | None = None
    pays_default: bool = True
    product_rates: Mapping[str, ProductRate] = field(default_factory=dict)
    renewal_cycles: int | None = None
    renewal_rates: Mapping[str, Mapping[int, Rate]] | None = None
    credit_on: str = ORDER

    @property
    def id(self) -> int:
        return self.terms.program_id

    def covers(self, item: Item) -> bool:
        return self.pays_default or (bool(item.sku) and item.sku in self.product_rates)

    def product_rate(self, item: Item) -> ProductRate | None:
        return self.product_rates.get(item.sku) if item.sku else None


@dataclass(frozen=True)
class Override:
    """One partner's rates for a program at one level, for one sku or (None) every item."""

    partner_id: int
    program_id: int
    sku: str | None
    level: int
    rates: Mapping[str, Rate] = field(default_factory=dict)  # {"lead": Rate, "sale": Rate}


def item_programs(items: Sequence[Item], programs: Iterable[Program]) -> list[Program | None]:
    """The program that pays each item: the first, by priority then id, that covers it
    (a product rate for its sku, or `pays_default`); None for an item none covers."""
    ordered = sorted(programs, key=lambda program: (program.priority, program.id))
    return [next((p for p in ordered if p.covers(item)), None) for item in items]


def renewal_limit_reason(program: Program, cycle: int) -> str:
    """Why a subscription's cycle earns nothing under `program`, or "" when it earns."""
    if cycle < 1:
        raise ValueError("A subscription's cycle starts at 1.")
    renewal = cycle - 1
    if renewal == 0 or program.renewal_cycles is None or renewal <= program.renewal_cycles:
        return ""
    return (
        f"cycle {cycle} is renewal {renewal}; program {program.id} pays "
        f"{program.renewal_cycles} renewal{'s' if program.renewal_cycles != 1 else ''}"
    )


class ItemPay(NamedTuple):
    """How one item was paid on one line: the rate that paid it and the figures (the trace).

    `rate` is "product", "default", "override", "renewal" or "unused"; `amount` and
    `percent` are the rate's, each 0 when the flags (§2) leave it out. A `per_unit` amount
    is paid x quantity; otherwise once for the line, whatever the number of such items.
    """

    index: int  # in the event's items
    sku: str
    quantity: int
    base: Decimal
    rate: str
    amount: Decimal
    percent: Decimal
    per_unit: bool

    def trace(self) -> dict:
        return {
            "item": self.index,
            "sku": self.sku,
            "quantity": self.quantity,
            "base": str(self.base),
            "rate": self.rate,
            "amount": str(self.amount),
            "percent": str(self.percent),
            "per_unit": self.per_unit,
        }


class ProgramLine(NamedTuple):
    """One line per (partner, level, kind, program), with how each of its items was paid."""

    partner_id: int
    level: int
    kind: str
    program_id: int
    program_version_id: int | None
    base: Decimal  # the bases of the items the program pays
    amount: Decimal
    items: Sequence[ItemPay]  # a tuple, or `OneRatePays` (equal to the tuple)

    def rates_paid(self) -> frozenset[str]:
        """The names of the rates its items were paid at ("default", "override", ...)."""
        if isinstance(self.items, OneRatePays):
            return frozenset((self.items.rate,))
        return frozenset(item.rate for item in self.items)

    def trace(self) -> dict:
        return {
            "program": self.program_id,
            "program_version": self.program_version_id,
            "items": [item.trace() for item in self.items],
        }


class OneRatePays(Sequence):
    """The `ItemPay`s of a line whose items were all paid at one rate, made when read: most
    lines' traces never read them (§5.2's trace names the rate once), and making them for
    every line cost a third of `program_lines`. Equal to the tuple of the same `ItemPay`s."""

    __slots__ = ("_paid", "_rate")

    def __init__(self, paid: Sequence[tuple], rate: str, amount: Decimal, percent: Decimal):
        self._paid = paid  # (index, sku, quantity, base) of each item
        self._rate = (rate, amount, percent, False)

    @property
    def rate(self) -> str:
        """The rate every item was paid at."""
        return self._rate[0]

    def __len__(self) -> int:
        return len(self._paid)

    def __iter__(self) -> Iterator[ItemPay]:
        return (ItemPay(*item, *self._rate) for item in self._paid)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(ItemPay(*item, *self._rate) for item in self._paid[index])
        return ItemPay(*self._paid[index], *self._rate)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


@dataclass(frozen=True)
class ProgramLines:
    """What one kind pays up the chain, and what the trace must say was not paid: the items
    no program covers (indexes) and the programs past their renewal limit ({id: reason})."""

    lines: list[ProgramLine]
    uncovered: tuple[int, ...] = ()
    unpaid: Mapping[int, str] = field(default_factory=dict)


def _item_rate(
    *,
    program: Program,
    kind: str,
    level: int,
    unused: bool,
    renewal: bool,
    overrides: Mapping[str | None, Override],
    item: Item,
) -> tuple[str, Rate, bool]:
    """(rate name, rate, per unit) for one item at one level. The first that applies wins:
    the partner's override for the item's sku, its override for every item, the unused rate
    (§5.3; the product's for a product-rated item), the renewal rates, the product rate, the
    program's default rate. A rate for one sku is paid per unit, the others once per line."""
    by_sku = overrides.get(item.sku) if item.sku else None
    if by_sku is not None:
        return OVERRIDE, by_sku.rates.get(kind, NO_RATE), True
    if None in overrides:
        return OVERRIDE, overrides[None].rates.get(kind, NO_RATE), False
    product = program.product_rate(item)
    if unused:
        source = product.unused if product else program.terms.unused
        return "unused", source.get(kind, NO_RATE), product is not None
    if renewal and program.renewal_rates is not None:
        return "renewal", program.renewal_rates.get(kind, {}).get(level, NO_RATE), False
    if product is not None:
        return "product", product.rates.get(kind, {}).get(level, NO_RATE), True
    return "default", program.terms.rates.get(kind, {}).get(level, NO_RATE), False


def _program_line(
    *,
    program: Program,
    member: ChainMember,
    kind: str,
    unused: bool,
    renewal: bool,
    overrides: Mapping[str | None, Override],
    paid: Sequence[tuple[int, Item, Decimal]],
    currency: str,
) -> ProgramLine | None:
    terms = program.terms
    pays, per_unit, once, percent_sum = [], ZERO, None, ZERO
    for index, item, base in paid:
        name, rate, unit = _item_rate(
            program=program, kind=kind, level=member.level, unused=unused,
            renewal=renewal, overrides=overrides, item=item,
        )  # fmt: skip
        amount = rate.amount if terms.payout_amount else ZERO
        percent = rate.percent if terms.payout_percent else ZERO
        if unit:
            per_unit += amount * item.quantity
        elif once is None:
            once = amount  # every once-per-line item of a line has the same rate
        percent_sum += base * percent
        pays.append(ItemPay(index, item.sku, item.quantity, base, name, amount, percent, unit))
    amount = round_money(per_unit + (once or ZERO) + percent_sum / HUNDRED, currency)
    if amount == ZERO:
        return None
    return ProgramLine(
        partner_id=member.partner_id,
        level=member.level,
        kind=kind,
        program_id=program.id,
        program_version_id=program.version_id,
        base=sum((base for _, _, base in paid), ZERO),
        amount=amount,
        items=tuple(pays),
    )


def _default_rates_only(
    programs: Sequence[Program], overrides: Sequence[Override], cycle: int
) -> bool:
    """Whether every item is paid at one program's default rates: one program covering
    every item without product rates, no override, not a renewal."""
    if cycle != 1 or overrides or len(programs) != 1:
        return False
    return programs[0].pays_default and not programs[0].product_rates


def _default_lines(
    *,
    program: Program,
    items: Sequence[Item],
    discount: Decimal,
    kind: str,
    chain: Sequence[ChainMember],
    has_parent: bool,
    currency: str,
) -> ProgramLines:
    """`program_lines` for one program paying every item at its default rates (no product
    rate, no override, not a renewal): §5.2's `commission_lines` over the order's base, each
    line's items paid at its level's rate. The same lines as the general rule (a property
    test holds them equal for all inputs), at a third of its cost: every order of a
    program without product rates is paid this way."""
    lines = commission_lines(
        terms=program.terms, kind=kind, chain=chain, has_parent=has_parent,
        base=order_base(items, discount), currency=currency,
    )  # fmt: skip
    if not lines:
        return ProgramLines(lines=[])
    bases = item_bases(items, discount, currency) if discount else [i.total for i in items]
    paid = [
        (index, item.sku, item.quantity, base)
        for index, (item, base) in enumerate(zip(items, bases, strict=True))
    ]
    return ProgramLines(lines=[_default_line(program, kind, line, paid) for line in lines])


def _default_line(program: Program, kind: str, line: Line, paid: Sequence[tuple]) -> ProgramLine:
    rate = "unused" if line.rate_name == "unused" else "default"
    items = OneRatePays(paid, rate, line.rate_amount, line.rate_percent)
    return ProgramLine(
        line.partner_id, line.level, kind, program.id, program.version_id, line.base,
        line.amount, items,
    )  # fmt: skip


def program_lines(
    *,
    programs: Iterable[Program],
    overrides: Iterable[Override] = (),
    items: Sequence[Item],
    discount: Decimal,
    kind: str,
    chain: Sequence[ChainMember],
    has_parent: bool,
    currency: str,
    cycle: int = 1,
) -> ProgramLines:
    """The lines one kind pays up the chain of the credited partner, under §10.

    `programs` are the level-1 partner's (or the default program alone); `chain` and
    `has_parent` are as for `commission_lines`, each program paying its own `levels` of it;
    `overrides` are any chain member's (each applies to its own partner only); `cycle` is
    the subscription's (1, the first payment, for an order without one). With one program,
    no product rates, no overrides and cycle 1 the lines are `commission_lines`' own.
    """
    overrides = tuple(overrides)
    programs = tuple(programs)
    if _default_rates_only(programs, overrides, cycle):
        return _default_lines(
            program=programs[0], items=items, discount=discount, kind=kind, chain=chain,
            has_parent=has_parent, currency=currency,
        )  # fmt: skip
    bases = item_bases(items, discount, currency)
    chosen = item_programs(items, programs)
    by_program: dict[int, tuple[Program, list[tuple[int, Item, Decimal]]]] = {}
    for index, (item, base, program) in enumerate(zip(items, bases, chosen, strict=True)):
        if program is not None:
            by_program.setdefault(program.id, (program, []))[1].append((index, item, base))
    uncovered = tuple(i for i, program in enumerate(chosen) if program is None)
    unpaid = {}
    payable = []
    for program, paid in by_program.values():
        reason = renewal_limit_reason(program, cycle)
        if reason:
            unpaid[program.id] = reason
        elif program.terms.pays(kind):
            payable.append((program, paid))
    rules: dict[tuple[int, int, int], dict[str | None, Override]] = {}
    for override in overrides:
        key = (override.partner_id, override.program_id, override.level)
        rules.setdefault(key, {})[override.sku] = override
    lines = []
    for position, member in enumerate(chain):
        if not member.active:
            continue  # an inactive partner gets nothing; the chain goes on above
        for program, paid in payable:
            terms = program.terms
            if position >= terms.levels:
                continue  # the chain is level 1 first: each program pays its own levels
            line = _program_line(
                program=program,
                member=member,
                kind=kind,
                unused=member.level == 1
                and terms.pay_if_unused
                and terms.levels >= 2
                and not has_parent,
                renewal=cycle >= 2,
                overrides=rules.get((member.partner_id, program.id, member.level), {}),
                paid=paid,
                currency=currency,
            )
            if line is not None:
                lines.append(line)
    return ProgramLines(lines=lines, uncovered=uncovered, unpaid=unpaid)


def payment_credits(
    *,
    lines: Sequence[Decimal],
    credited_so_far: Sequence[Decimal],
    order_total: Decimal,
    paid_before: Decimal,
    payment: Decimal,
    currency: str,
) -> list[Decimal]:
    """What a customer's payment credits each line of a program that credits on payment.

    Each line is credited line x payment / order total (half-up), never beyond what is
    left of it; the payment that completes the total credits exactly what is left, so an
    order paid in full has credited every line in full. A payment beyond the total raises.
    """
    return _shares_of(
        lines=lines, done=credited_so_far, total=order_total, before=paid_before,
        amount=payment, currency=currency, what=("payment", "pay"),
    )  # fmt: skip


def refund_shares(
    *,
    lines: Sequence[Decimal],
    credited: Sequence[Decimal | None],
    taken: Sequence[Decimal],
    order_total: Decimal,
    paid: Decimal,
    refunded_before: Decimal,
    refund: Decimal,
    currency: str,
) -> list[Decimal]:
    """What a refund takes back from each commission line of an order (negative), in the
    lines' order (SPEC §5.4, §10): a line credited at the order (`credited` None) loses the
    refund's share of the order total (`clawbacks`), a line credited on payment the same
    share of what it was credited: `clawbacks` over what each line was credited and what
    the customer paid, so that a refund beyond what was paid raises, and the refund that
    completes what was paid takes back exactly what is left. `taken`: what earlier refunds
    and rejections took back from each line (positive)."""
    at_order = [n for n, c in enumerate(credited) if c is None]
    on_payment = [n for n, c in enumerate(credited) if c is not None]
    shares = [ZERO] * len(lines)
    # Each group by `clawbacks`: over the lines and the order total, or over what each
    # line was credited and what was paid.
    for group, amounts, total in ((at_order, lines, order_total), (on_payment, credited, paid)):
        if not group:
            continue
        got = clawbacks(
            lines=[amounts[n] for n in group], taken=[taken[n] for n in group],
            order_total=total, refunded_before=refunded_before, refund=refund,
            currency=currency,
        )  # fmt: skip
        for n, share in zip(group, got, strict=True):
            shares[n] = share
    return shares
