"""Properties of the §10 rules that must hold for all inputs (hypothesis)."""

from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from commissions.calculation import (
    LEAD,
    SALE,
    ChainMember,
    Item,
    Override,
    Program,
    Rate,
    Terms,
    commission_lines,
    discount_shares,
    item_bases,
    order_base,
    program_lines,
)

from .settling import claw_back, pay

CURRENCIES = st.sampled_from(["USD", "JPY", "KWD"])
cents = st.integers(min_value=0, max_value=10**7).map(lambda n: Decimal(n).scaleb(-2))
percents = st.integers(min_value=0, max_value=1_000_000).map(lambda n: Decimal(n).scaleb(-4))
rates = st.builds(Rate, amount=cents, percent=percents)
items = st.lists(
    st.builds(
        Item,
        quantity=st.integers(1, 1000),
        # Tiny prices too: their rounded shares can add up to more than the last item.
        unit_price=st.one_of(st.integers(0, 5).map(lambda n: Decimal(n).scaleb(-2)), cents),
        sku=st.sampled_from(["", "A", "B"]),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def discounts(draw, order_items):
    """0, up to the items' total, or beyond it."""
    gross = sum(item.total for item in order_items)
    cap = int(gross * 100) * 2 + 1
    return Decimal(draw(st.integers(0, cap))).scaleb(-2)


@given(data=st.data(), order_items=items, currency=CURRENCIES)
def test_the_shares_sum_to_the_discount_and_the_bases_to_the_order_base(
    data, order_items, currency
):
    discount = data.draw(discounts(order_items))
    shares = discount_shares(order_items, discount, currency)
    bases = item_bases(order_items, discount, currency)

    assert sum(shares, Decimal(0)) == discount
    assert all(base >= 0 for base in bases)
    assert all(base <= item.total for base, item in zip(bases, order_items, strict=True))
    assert sum(bases, Decimal(0)) == order_base(order_items, discount)


@st.composite
def terms(draw):
    return Terms(
        program_id=draw(st.integers(1, 10)),
        name="P",
        levels=draw(st.integers(1, 3)),
        payout_on_lead=draw(st.booleans()),
        payout_on_sale=draw(st.booleans()),
        payout_amount=draw(st.booleans()),
        payout_percent=draw(st.booleans()),
        pay_if_unused=draw(st.booleans()),
        rates={kind: {level: draw(rates) for level in (1, 2, 3)} for kind in (LEAD, SALE)},
        unused={LEAD: draw(rates), SALE: draw(rates)},
    )


chains = st.lists(st.booleans(), min_size=0, max_size=4).map(
    lambda actives: [ChainMember(10 * (n + 1), n + 1, active) for n, active in enumerate(actives)]
)


@given(
    data=st.data(),
    program=terms(),
    order_items=items,
    kind=st.sampled_from([LEAD, SALE]),
    chain=chains,
    has_parent=st.booleans(),
    currency=CURRENCIES,
)
def test_one_program_pays_what_commission_lines_pays(
    data, program, order_items, kind, chain, has_parent, currency
):
    """One program, no product rates, no overrides, not a renewal: exactly §5.2 and §5.3."""
    discount = data.draw(discounts(order_items))
    today = commission_lines(
        terms=program,
        kind=kind,
        chain=chain,
        has_parent=has_parent,
        base=order_base(order_items, discount),
        currency=currency,
    )
    result = program_lines(
        programs=[Program(terms=program, priority=1)],
        items=order_items,
        discount=discount,
        kind=kind,
        chain=chain,
        has_parent=has_parent,
        currency=currency,
    )
    assert [(x.partner_id, x.level, x.kind, x.base, x.amount) for x in result.lines] == [
        (x.partner_id, x.level, x.kind, x.base, x.amount) for x in today
    ]
    assert result.uncovered == ()
    assert result.unpaid == {}


@given(
    data=st.data(),
    program=terms(),
    order_items=items,
    kind=st.sampled_from([LEAD, SALE]),
    chain=chains,
    has_parent=st.booleans(),
    currency=CURRENCIES,
)
def test_the_default_rates_shortcut_gives_the_general_rule_s_lines(
    data, program, order_items, kind, chain, has_parent, currency
):
    """One program paying every item at its default rates takes a shortcut (§5.2's
    `commission_lines`); an override of a partner outside the chain changes nothing but
    sends the same order through the general rule: every figure and item trace agrees."""
    discount = data.draw(discounts(order_items))
    common = dict(
        programs=[Program(terms=program, priority=1, version_id=7)],
        items=order_items,
        discount=discount,
        kind=kind,
        chain=chain,
        has_parent=has_parent,
        currency=currency,
    )
    outsider = Override(partner_id=-1, program_id=program.program_id, sku=None, level=1)
    shortcut = program_lines(**common)
    general = program_lines(**common, overrides=[outsider])
    assert shortcut == general


@st.composite
def payment_plans(draw):
    """An order total, its lines, and payments that add up to (all or part of) the total."""
    total_cents = draw(st.integers(min_value=1, max_value=10**8))
    lines = [Decimal(c).scaleb(-2) for c in draw(st.lists(st.integers(0, 10**7), max_size=6))]
    paid_cents = draw(st.one_of(st.just(total_cents), st.integers(1, total_cents)))
    cuts = (
        sorted(draw(st.sets(st.integers(1, paid_cents - 1), max_size=8))) if paid_cents > 1 else []
    )
    payments = [Decimal(b - a).scaleb(-2) for a, b in pairwise([0, *cuts, paid_cents])]
    return Decimal(total_cents).scaleb(-2), lines, payments


def credited_after(total, lines, payments):
    """What each line is credited after the payments, checking every step."""
    steps, credited = pay(lines=lines, order_total=total, payments=payments)
    so_far = [Decimal(0)] * len(lines)
    for credits in steps:
        assert all(credit >= 0 for credit in credits)
        so_far = [c + x for c, x in zip(so_far, credits, strict=True)]
        assert all(c <= line for c, line in zip(so_far, lines, strict=True))
    return credited, sum(payments, Decimal(0))


@given(plan=payment_plans())
def test_an_order_paid_in_full_in_any_split_credits_every_line_in_full(plan):
    total, lines, payments = plan
    credited, paid = credited_after(total, lines, payments)
    if paid == total:
        assert credited == lines


@given(plan=payment_plans(), data=st.data())
def test_clawbacks_never_exceed_what_was_credited_and_a_full_refund_nets_to_zero(plan, data):
    total, lines, payments = plan
    credited, paid = credited_after(total, lines, payments)
    paid_cents = int(paid * 100)
    cuts = (
        sorted(data.draw(st.sets(st.integers(1, paid_cents - 1), max_size=6)))
        if paid_cents > 1
        else []
    )
    refunds = [Decimal(b - a).scaleb(-2) for a, b in pairwise([0, *cuts, paid_cents])]
    steps, taken = claw_back(credited=credited, paid=paid, refunds=refunds)
    so_far = [Decimal(0)] * len(lines)
    for shares in steps:
        assert all(share <= 0 for share in shares)
        so_far = [t - s for t, s in zip(so_far, shares, strict=True)]
        assert all(t <= c for t, c in zip(so_far, credited, strict=True))
    assert taken == credited


def test_the_shortcut_names_the_unused_rate_as_the_general_rule_does():
    """The rare case the property above may not draw: level 1 paid at the unused rate."""
    program = Terms(
        program_id=1, name="P", levels=2, payout_on_lead=True, payout_on_sale=True,
        payout_amount=True, payout_percent=True, pay_if_unused=True,
        rates={SALE: {1: Rate(Decimal("1.00"), Decimal("10")), 2: Rate()}},
        unused={SALE: Rate(Decimal("2.00"), Decimal("15"))},
    )  # fmt: skip
    common = dict(
        programs=[Program(terms=program, priority=1)],
        items=[Item(2, Decimal("10.00"), "A"), Item(1, Decimal("5.00"))],
        discount=Decimal("5.00"),
        kind=SALE,
        chain=[ChainMember(10, 1, True)],
        has_parent=False,
        currency="USD",
    )
    outsider = Override(partner_id=-1, program_id=1, sku=None, level=1)
    [line] = program_lines(**common).lines
    # Base 25.00 - 5.00 = 20.00; the unused rate: 2.00 + 20.00 x 15 % = 5.00.
    assert (line.amount, {item.rate for item in line.items}) == (Decimal("5.00"), {"unused"})
    assert program_lines(**common).lines == program_lines(**common, overrides=[outsider]).lines
