"""The commission structure a partner reads (SPEC §12) agrees with what the engine pays:
random programs (product rates, renewal terms, overrides), and each figure shown checked
against `program_lines` on a matching order of another price and quantity."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commissions.calculation import (
    LEAD,
    SALE,
    ChainMember,
    Item,
    Override,
    ProductRate,
    Program,
    Rate,
    Terms,
    program_lines,
)
from commissions.money import round_money
from commissions.structure import commission_structure

PARTNER = 7
cents = st.integers(min_value=0, max_value=10**6).map(lambda n: Decimal(n).scaleb(-2))
percents = st.integers(min_value=0, max_value=500_000).map(lambda n: Decimal(n).scaleb(-4))
rates = st.builds(Rate, amount=cents, percent=percents)
levels_rates = st.fixed_dictionaries(
    {kind: st.fixed_dictionaries({n: rates for n in (1, 2, 3)}) for kind in (LEAD, SALE)}
)


@st.composite
def programs(draw):
    ids = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True))
    result = []
    for pk in ids:
        terms = Terms(
            program_id=pk,
            name=f"P{pk}",
            levels=draw(st.integers(1, 3)),
            payout_on_lead=draw(st.booleans()),
            payout_on_sale=draw(st.booleans()),
            payout_amount=draw(st.booleans()),
            payout_percent=draw(st.booleans()),
            pay_if_unused=draw(st.booleans()),
            rates=draw(levels_rates),
            unused={LEAD: draw(rates), SALE: draw(rates)},
            hold_days=draw(st.integers(0, 60)),
        )
        skus = draw(st.lists(st.sampled_from(["A", "B"]), unique=True, max_size=2))
        result.append(
            Program(
                terms=terms,
                priority=draw(st.integers(0, 3)),
                pays_default=draw(st.booleans()),
                product_rates={
                    sku: ProductRate(
                        sku=sku,
                        rates=draw(levels_rates),
                        unused={LEAD: draw(rates), SALE: draw(rates)},
                    )
                    for sku in skus
                },
                renewal_cycles=draw(st.one_of(st.none(), st.integers(0, 3))),
                renewal_rates=draw(st.one_of(st.none(), levels_rates)),
            )
        )
    return result


@st.composite
def overrides(draw, program_ids):
    return draw(
        st.lists(
            st.builds(
                Override,
                partner_id=st.sampled_from([PARTNER, PARTNER + 1]),  # the other's never shows
                program_id=st.sampled_from(program_ids),
                sku=st.sampled_from([None, "A", "C"]),
                level=st.integers(1, 3),
                rates=st.fixed_dictionaries({LEAD: rates, SALE: rates}),
            ),
            max_size=4,
            unique_by=lambda o: (o.partner_id, o.program_id, o.sku, o.level),
        )
    )


def engine_pays(*, programs, overrides, figure, quantity, price):
    """What `program_lines` pays the partner on an order of one item matching the figure."""
    chain = [ChainMember(-n, n, True) for n in range(1, figure.level)]
    chain.append(ChainMember(PARTNER, figure.level, True))
    paid = program_lines(
        programs=programs,
        overrides=overrides,
        items=[Item(quantity=quantity, unit_price=price, sku=figure.sku)],
        discount=Decimal(0),
        kind=figure.kind,
        chain=chain,
        has_parent=not figure.unused,
        currency="USD",
        cycle=figure.cycle,
    )
    return [line for line in paid.lines if line.partner_id == PARTNER]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), paying=programs())
def test_every_figure_shown_is_what_the_engine_pays(data, paying):
    rules = data.draw(overrides([p.id for p in paying]))
    structure = commission_structure(
        partner_id=PARTNER, programs=paying, overrides=rules, currency="USD"
    )

    assert [s.program.id for s in structure] == [
        p.id for p in sorted(paying, key=lambda p: (p.priority, p.id))
    ]
    for shown in structure:
        program = shown.program
        figures = [*shown.rates, *shown.unused, *shown.renewals]
        figures += [f for _, product in shown.products for f in product]
        for figure in figures:
            assert figure.kind in {k for k in (LEAD, SALE) if program.terms.pays(k)}
            assert figure.level <= program.terms.levels
            quantity = data.draw(st.integers(1, 5))
            price = data.draw(cents)
            lines = engine_pays(
                programs=paying, overrides=rules, figure=figure, quantity=quantity, price=price
            )
            mine = [line for line in lines if line.program_id == program.id]
            if not figure.applies:
                assert mine == []  # a program before this one pays the item
                continue
            units = quantity if figure.per_unit else 1
            expected = round_money(
                figure.amount * units + price * quantity * figure.percent / 100, "USD"
            )
            assert [line.amount for line in mine] == ([expected] if expected else [])
            if mine:
                assert {pay.rate for pay in mine[0].items} == {figure.rate}
            # The other partner's overrides never show as this partner's.
            if figure.rate == "override":
                assert any(
                    o.partner_id == PARTNER
                    and o.program_id == program.id
                    and o.level == figure.level
                    and o.sku in (None, figure.sku or None)
                    for o in rules
                )


def test_the_sentences_say_each_rate_in_words():
    terms = Terms(
        program_id=1, name="Standard", levels=2, payout_on_lead=False, payout_on_sale=True,
        payout_amount=False, payout_percent=True, pay_if_unused=False,
        rates={SALE: {1: Rate(percent=Decimal("10.0000")), 2: Rate(percent=Decimal("5.0000"))}},
    )  # fmt: skip
    program = Program(
        terms=terms,
        priority=0,
        product_rates={
            "BOOK": ProductRate(sku="BOOK", rates={SALE: {1: Rate(amount=Decimal("2.00"))}})
        },
    )
    [shown] = commission_structure(
        partner_id=PARTNER,
        programs=[program],
        overrides=[Override(PARTNER, 1, None, 2, {SALE: Rate(percent=Decimal("6.5"))})],
        currency="EUR",
    )
    assert shown.sentences == (
        "You earn 10 % of each sale you refer, and 6.5 % of the sales of partners you recruit.",
        # payout_amount is off: the product's amount pays nothing, nor does its level 2
        # ("" for 0 %), but the override is for every item.
        "On BOOK you earn 6.5 % of the sales of partners you recruit.",
    )
    assert [(f.level, f.rate, f.example) for f in shown.rates] == [
        (1, "default", Decimal("10.00")),  # 10 % of 100.00
        (2, "override", Decimal("6.50")),  # 6.5 % of 100.00
    ]


@pytest.mark.parametrize(
    ("cycles", "renewal_rates", "words", "shown"),
    [
        (None, None, "Every renewal of a subscription earns commission, at the same rates.", 0),
        (0, {SALE: {1: Rate(percent=Decimal("3"))}}, "Renewals of a subscription earn nothing.", 0),
        (
            2,
            {SALE: {1: Rate(percent=Decimal("3"))}},
            "The first 2 renewals of a subscription earn commission, at the renewal rates below.",
            1,
        ),
    ],
    ids=["every-renewal-same-rates", "no-renewals", "two-renewals-own-rates"],
)
def test_the_renewal_terms_in_words(cycles, renewal_rates, words, shown):
    terms = Terms(
        program_id=1, name="Subs", levels=1, payout_on_lead=False, payout_on_sale=True,
        payout_amount=False, payout_percent=True, pay_if_unused=False,
        rates={SALE: {1: Rate(percent=Decimal("10"))}},
    )  # fmt: skip
    program = Program(terms=terms, priority=0, renewal_cycles=cycles, renewal_rates=renewal_rates)

    [structure] = commission_structure(partner_id=PARTNER, programs=[program], currency="USD")

    assert structure.renewal_words == words
    assert [(f.rate, f.example) for f in structure.renewals] == [
        ("renewal", Decimal("3.00"))  # 3 % of 100.00 on cycle 2
    ] * shown
