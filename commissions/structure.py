"""A partner's commission structure (SPEC §12 "My programs", "My commission structure"):
every rate that pays them, worked out by the engine's own rules.

Pure: no ORM, no clock. The figures are not read off the programs: each one is what
`calculation.program_lines` pays this partner on a representative order (one item of
`PROBE_PRICE`, with the sku of the rate, the partner at the level of the rate: a price no
nonzero rate rounds to nothing at), and what it pays on one item of `EXAMPLE_PRICE`, so the
page says what the engine does, whatever the flags, overrides, product or renewal rates.
`calculation.item_programs` says whether a program's rate is ever used: an item goes to the
first program by priority that covers it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .calculation import (
    LEAD,
    PAYMENT,
    SALE,
    ChainMember,
    Item,
    Override,
    Program,
    item_programs,
    program_lines,
)
from .explain import RATE_SOURCES, plain_number
from .money import ZERO

EXAMPLE_PRICE = Decimal("100.00")
PROBE_PRICE = Decimal(10) ** 12
KINDS = (SALE, LEAD)
# Who pays at each level, as the partner reads it.
WHOSE = {
    (SALE, 1): "each sale you refer",
    (SALE, 2): "the sales of partners you recruit",
    (SALE, 3): "the sales of partners your recruits recruit",
    (LEAD, 1): "each order of a customer you brought in (the lead)",
    (LEAD, 2): "the orders of customers your recruits brought in",
    (LEAD, 3): "the orders of customers their recruits brought in",
}


@dataclass(frozen=True)
class Figure:
    """One rate that pays the partner: what the engine paid on the representative order."""

    program_id: int
    kind: str
    level: int
    sku: str  # "" for any item
    cycle: int  # 1, or 2 for a renewal
    unused: bool  # the pay-if-unused rate (level 1, nobody above)
    rate: str  # the rate that paid: "default", "product", "override", "renewal", "unused"
    amount: Decimal  # 0 when the flags leave the amount out
    percent: Decimal  # 0 when the flags leave the percent out
    per_unit: bool
    example: Decimal  # what the engine paid on one item of EXAMPLE_PRICE
    applies: bool  # False when a program before this one pays the item
    currency: str = ""

    @property
    def source(self) -> str:
        return RATE_SOURCES.get(self.rate, "no rate")

    @property
    def words(self) -> str:
        """ "10 %", "5.00 EUR per unit", "2.00 EUR + 5 %", or "nothing"."""
        parts = []
        if self.amount:
            parts.append(f"{self.amount} {self.currency}" + (" per unit" if self.per_unit else ""))
        if self.percent:
            parts.append(f"{plain_number(str(self.percent))} %")
        return " + ".join(parts) or "nothing"


@dataclass(frozen=True)
class ProgramStructure:
    program: Program
    rates: tuple[Figure, ...]  # every item: per kind, per level
    unused: tuple[Figure, ...]  # level 1 when nobody is above the partner
    products: tuple[tuple[str, tuple[Figure, ...]], ...]  # (sku, figures), by sku
    renewals: tuple[Figure, ...]  # renewal rates of their own, when the program has them
    sentences: tuple[str, ...]

    @property
    def terms(self):
        return self.program.terms

    @property
    def credit_words(self) -> str:
        if self.program.credit_on == PAYMENT:
            return "as the customer pays (a share of each payment)"
        return "when the order is placed"

    @property
    def renewal_words(self) -> str:
        cycles = self.program.renewal_cycles
        if cycles == 0:
            return "Renewals of a subscription earn nothing."
        if cycles is None:
            how_many = "Every renewal of a subscription earns"
        elif cycles == 1:
            how_many = "The first renewal of a subscription earns"
        else:
            how_many = f"The first {cycles} renewals of a subscription earn"
        rates = "at the renewal rates below" if self.renewals else "at the same rates"
        return f"{how_many} commission, {rates}."


def figure(
    *,
    partner_id: int,
    program: Program,
    programs: Sequence[Program],
    overrides: Sequence[Override],
    kind: str,
    level: int,
    sku: str = "",
    cycle: int = 1,
    unused: bool = False,
    currency: str,
) -> Figure:
    """What `program` pays the partner at `level` on one item of `sku`, by `program_lines`:
    the partner is level `level` of a chain whose members below them are others (ids below
    0); `unused` puts them alone at level 1, with no parent."""
    chain = [ChainMember(-n, n, True) for n in range(1, level)]
    chain.append(ChainMember(partner_id, level, True))

    def paid(price: Decimal):
        lines = program_lines(
            programs=[program],
            overrides=overrides,
            items=[Item(quantity=1, unit_price=price, sku=sku)],
            discount=ZERO,
            kind=kind,
            chain=chain,
            has_parent=not unused,
            currency=currency,
            cycle=cycle,
        ).lines
        return next((line for line in lines if line.partner_id == partner_id), None)

    line = paid(PROBE_PRICE)
    item = Item(quantity=1, unit_price=EXAMPLE_PRICE, sku=sku)
    [chosen] = item_programs([item], programs)
    applies = chosen is not None and chosen.id == program.id
    if line is None:
        return Figure(
            program.id, kind, level, sku, cycle, unused, "none", ZERO, ZERO, False, ZERO, applies,
            currency,
        )  # fmt: skip
    [pay] = line.items
    return Figure(
        program_id=program.id,
        kind=kind,
        level=level,
        sku=sku,
        cycle=cycle,
        unused=unused,
        rate=pay.rate,
        amount=pay.amount,
        percent=pay.percent,
        per_unit=pay.per_unit,
        example=getattr(paid(EXAMPLE_PRICE), "amount", ZERO),
        applies=applies,
        currency=currency,
    )


def _sentence(figures: Sequence[Figure], *, lead_in: str = "You earn") -> str:
    """ "You earn 10 % of each sale you refer, and 5 % of the sales of partners you
    recruit." over the figures that pay something; "" when none does."""
    parts = [f"{f.words} of {WHOSE[(f.kind, f.level)]}" for f in figures if f.amount or f.percent]
    if not parts:
        return ""
    return f"{lead_in} {', and '.join(parts)}."


def commission_structure(
    *,
    partner_id: int,
    programs: Iterable[Program],
    overrides: Iterable[Override] = (),
    currency: str,
) -> list[ProgramStructure]:
    """Every program that pays the partner, in priority order, with each of its rates as
    the engine pays them. `programs` are the partner's (as `selectors.partner_chains`
    builds them for the engine); `overrides` any of the partner's own rates."""
    ordered = sorted(programs, key=lambda p: (p.priority, p.id))
    own = [o for o in overrides if o.partner_id == partner_id]
    result = []
    for program in ordered:
        terms = program.terms
        kinds = [kind for kind in KINDS if terms.pays(kind)]
        levels = range(1, terms.levels + 1)

        def pays(kind: str, level: int, program: Program = program, **more) -> Figure:
            return figure(
                partner_id=partner_id, program=program, programs=ordered, overrides=own,
                kind=kind, level=level, currency=currency, **more,
            )  # fmt: skip

        rates = tuple(pays(kind, level) for kind in kinds for level in levels)
        unused = ()
        if terms.pay_if_unused and terms.levels >= 2:
            unused = tuple(pays(kind, 1, unused=True) for kind in kinds)
        skus = set(program.product_rates)
        skus |= {o.sku for o in own if o.program_id == program.id and o.sku}
        products = tuple(
            (sku, tuple(pays(kind, level, sku=sku) for kind in kinds for level in levels))
            for sku in sorted(skus)
        )
        renewals = ()
        if program.renewal_rates is not None and program.renewal_cycles != 0:
            renewals = tuple(pays(kind, level, cycle=2) for kind in kinds for level in levels)
        sentences = []
        if program.pays_default:
            for kind in kinds:
                sentence = _sentence([f for f in rates if f.kind == kind])
                sentences.append(sentence or f"This program pays you nothing on {kind}s.")
        for sku, figures in products:
            for kind in kinds:
                sentence = _sentence(
                    [f for f in figures if f.kind == kind], lead_in=f"On {sku} you earn"
                )
                if sentence:
                    sentences.append(sentence)
        result.append(
            ProgramStructure(
                program=program,
                rates=rates if program.pays_default else (),
                unused=unused,
                products=products,
                renewals=renewals,
                sentences=tuple(sentences),
            )
        )
    return result
