"""How much each partner earns on an order, and what a refund takes back (SPEC §5.2-5.4).

Pure: no ORM. Amounts are Decimal and every line is rounded once, by `round_money`.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .money import ZERO, round_money, zero_like

LEAD, SALE = "lead", "sale"
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class Item:
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Rate:
    amount: Decimal = ZERO
    percent: Decimal = ZERO


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


@dataclass(frozen=True)
class Line:
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
    gross = sum((item.unit_price * item.quantity for item in items), ZERO)
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
    for member in chain[: terms.levels]:
        if not member.active:
            continue  # an inactive partner gets nothing; the chain goes on above
        unused = member.level == 1 and terms.pay_if_unused and terms.levels >= 2 and not has_parent
        rate = (
            terms.unused.get(kind, Rate())
            if unused
            else terms.rates[kind].get(member.level, Rate())
        )
        amount = round_money(level_amount(terms=terms, rate=rate, base=base), currency)
        if amount == ZERO:
            continue
        lines.append(
            Line(
                partner_id=member.partner_id,
                level=member.level,
                kind=kind,
                base=base,
                amount=amount,
                rate_amount=rate.amount if terms.payout_amount else ZERO,
                rate_percent=rate.percent if terms.payout_percent else ZERO,
                rate_name="unused" if unused else f"level {member.level}",
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
    if refund <= ZERO:
        raise ValueError("A refund must be positive.")
    if refunded_before + refund > order_total:
        raise ValueError("The refund exceeds what is left to refund.")
    completes = refunded_before + refund == order_total
    result = []
    for line, already in zip(lines, taken, strict=True):
        left = line - already
        if completes:
            share = left
        else:
            share = min(round_money(line * refund / order_total, currency), left)
        result.append(-share)
    return result
