"""Properties that must hold for all inputs (hypothesis)."""

from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from commissions.calculation import (
    SALE,
    ChainMember,
    Rate,
    Terms,
    clawbacks,
    commission_lines,
    level_amount,
)
from commissions.money import round_money

cents = st.integers(min_value=0, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))
percents = st.integers(min_value=0, max_value=1_000_000).map(lambda n: Decimal(n).scaleb(-4))
rates = st.builds(Rate, amount=cents, percent=percents)


@st.composite
def programs(draw):
    return Terms(
        program_id=1,
        name="P",
        levels=draw(st.integers(1, 3)),
        payout_on_lead=False,
        payout_on_sale=True,
        payout_amount=draw(st.booleans()),
        payout_percent=draw(st.booleans()),
        pay_if_unused=draw(st.booleans()),
        rates={SALE: {1: draw(rates), 2: draw(rates), 3: draw(rates)}},
        unused={SALE: draw(rates)},
    )


@given(program=programs(), base=cents, has_parent=st.booleans())
def test_the_lines_sum_to_the_per_level_formula(program, base, has_parent):
    chain = [ChainMember(1, 1, True)]
    if has_parent:
        chain += [ChainMember(2, 2, True), ChainMember(3, 3, True)]
    lines = commission_lines(
        terms=program, kind=SALE, chain=chain, has_parent=has_parent, base=base, currency="USD"
    )

    expected = Decimal(0)
    for member in chain[: program.levels]:
        unused = member.level == 1 and program.pay_if_unused and program.levels >= 2
        unused = unused and not has_parent
        rate = program.unused[SALE] if unused else program.rates[SALE][member.level]
        expected += round_money(level_amount(terms=program, rate=rate, base=base), "USD")
    assert sum((line.amount for line in lines), Decimal(0)) == expected
    assert all(line.amount > 0 for line in lines)


@given(value=st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=6))
def test_rounding_never_moves_a_value_more_than_half_a_cent(value):
    rounded = round_money(value, "USD")
    assert abs(rounded - value) <= Decimal("0.005")
    assert rounded == rounded.quantize(Decimal("0.01"))


@st.composite
def refund_plans(draw):
    """An order total, commission lines, and partial refunds that add up to the total."""
    total_cents = draw(st.integers(min_value=1, max_value=10**8))
    lines = draw(st.lists(st.integers(1, 10**7), min_size=1, max_size=6))
    cuts = (
        sorted(draw(st.sets(st.integers(1, total_cents - 1), max_size=8)))
        if total_cents > 1
        else []
    )
    bounds = [0, *cuts, total_cents]
    refunds = [Decimal(b - a).scaleb(-2) for a, b in pairwise(bounds)]
    return Decimal(total_cents).scaleb(-2), [Decimal(c).scaleb(-2) for c in lines], refunds


@given(plan=refund_plans())
def test_refunds_adding_up_to_the_total_net_every_line_to_zero(plan):
    total, lines, refunds = plan
    taken = [Decimal(0)] * len(lines)
    refunded = Decimal(0)
    for refund in refunds:
        shares = clawbacks(
            lines=lines,
            taken=taken,
            order_total=total,
            refunded_before=refunded,
            refund=refund,
            currency="USD",
        )
        assert all(share <= 0 for share in shares)
        taken = [t - s for t, s in zip(taken, shares, strict=True)]
        assert all(t <= line for t, line in zip(taken, lines, strict=True))  # never beyond a line
        refunded += refund
    assert taken == lines  # every line nets to exactly zero
