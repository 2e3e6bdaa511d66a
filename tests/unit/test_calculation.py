"""commissions.calculation: levels x kinds x amount/percent x pay-if-unused x inactive upline."""

from decimal import Decimal

import pytest

from commissions.calculation import (
    LEAD,
    SALE,
    ChainMember,
    Item,
    Rate,
    Terms,
    commission_lines,
    order_base,
)

D = Decimal
# The same rates for leads and sales, so one table of expected amounts serves both kinds.
RATES = {1: Rate(D("10"), D("20")), 2: Rate(D("5"), D("10")), 3: Rate(D("2"), D("5"))}
UNUSED = Rate(D("15"), D("25"))
BASE = D("1000.00")
# What each level earns on a base of 1,000 for each payout type.
PAY = {
    "amount": {1: D("10.00"), 2: D("5.00"), 3: D("2.00"), "unused": D("15.00")},
    "percent": {1: D("200.00"), 2: D("100.00"), 3: D("50.00"), "unused": D("250.00")},
    "both": {1: D("210.00"), 2: D("105.00"), 3: D("52.00"), "unused": D("265.00")},
}
ME, PARENT, GRANDPARENT = 100, 200, 300


def terms(*, levels=3, kind=SALE, payout="both", pay_if_unused=False) -> Terms:
    return Terms(
        program_id=1,
        name="Standard",
        levels=levels,
        payout_on_lead=kind == LEAD,
        payout_on_sale=kind == SALE,
        payout_amount=payout in ("amount", "both"),
        payout_percent=payout in ("percent", "both"),
        pay_if_unused=pay_if_unused,
        rates={LEAD: RATES, SALE: RATES},
        unused={LEAD: UNUSED, SALE: UNUSED},
    )


def chain(*, has_parent: bool, parent_active: bool = True) -> list[ChainMember]:
    members = [ChainMember(ME, 1, True)]
    if has_parent:
        members += [ChainMember(PARENT, 2, parent_active), ChainMember(GRANDPARENT, 3, True)]
    return members


def expected(levels, payout, unused_on, has_parent, parent_active) -> list[tuple]:
    """SPEC §5.2/5.3 as a table of (partner, level, amount)."""
    use_unused = unused_on and levels >= 2 and not has_parent
    rows = [(ME, 1, PAY[payout]["unused" if use_unused else 1])]
    if has_parent and levels >= 2 and parent_active:
        rows.append((PARENT, 2, PAY[payout][2]))
    if has_parent and levels >= 3:
        rows.append((GRANDPARENT, 3, PAY[payout][3]))
    return rows


@pytest.mark.parametrize("parent_active", [True, False], ids=["upline-active", "upline-inactive"])
@pytest.mark.parametrize("has_parent", [True, False], ids=["with-parent", "no-parent"])
@pytest.mark.parametrize("unused_on", [False, True], ids=["unused-off", "unused-on"])
@pytest.mark.parametrize("payout", ["amount", "percent", "both"])
@pytest.mark.parametrize("kind", [LEAD, SALE])
@pytest.mark.parametrize("levels", [1, 2, 3], ids=["1-level", "2-levels", "3-levels"])
def test_every_combination(levels, kind, payout, unused_on, has_parent, parent_active):
    lines = commission_lines(
        terms=terms(levels=levels, kind=kind, payout=payout, pay_if_unused=unused_on),
        kind=kind,
        chain=chain(has_parent=has_parent, parent_active=parent_active),
        has_parent=has_parent,
        base=BASE,
        currency="USD",
    )
    assert [(line.partner_id, line.level, line.amount) for line in lines] == expected(
        levels, payout, unused_on, has_parent, parent_active
    )
    assert {line.kind for line in lines} == {kind}


@pytest.mark.parametrize("kind", [LEAD, SALE])
def test_a_kind_switched_off_pays_nothing(kind):
    other = SALE if kind == LEAD else LEAD
    assert (
        commission_lines(
            terms=terms(kind=other),
            kind=kind,
            chain=chain(has_parent=True),
            has_parent=True,
            base=BASE,
            currency="USD",
        )
        == []
    )


def test_spec_worked_example_pay_if_unused():
    """SPEC §5.3, word for word: level 1 = 20 %, level 2 = 10 %, unused = 25 %. Bob has no
    parent and sells $1,000: Bob gets $250. Jim has a parent and sells $1,000: Jim $200,
    his parent $100."""
    program = Terms(
        program_id=1,
        name="Example",
        levels=2,
        payout_on_lead=False,
        payout_on_sale=True,
        payout_amount=False,
        payout_percent=True,
        pay_if_unused=True,
        rates={SALE: {1: Rate(percent=D("20")), 2: Rate(percent=D("10"))}},
        unused={SALE: Rate(percent=D("25"))},
    )
    bob, jim, jims_parent = 1, 2, 3

    bob_lines = commission_lines(
        terms=program,
        kind=SALE,
        chain=[ChainMember(bob, 1, True)],
        has_parent=False,
        base=D("1000"),
        currency="USD",
    )
    jim_lines = commission_lines(
        terms=program,
        kind=SALE,
        chain=[ChainMember(jim, 1, True), ChainMember(jims_parent, 2, True)],
        has_parent=True,
        base=D("1000"),
        currency="USD",
    )

    assert [(x.partner_id, x.amount, x.rate_name) for x in bob_lines] == [
        (bob, D("250.00"), "unused")
    ]
    assert [(x.partner_id, x.amount) for x in jim_lines] == [
        (jim, D("200.00")),
        (jims_parent, D("100.00")),
    ]


def test_pay_if_unused_needs_two_levels():
    lines = commission_lines(
        terms=terms(levels=1, pay_if_unused=True),
        kind=SALE,
        chain=chain(has_parent=False),
        has_parent=False,
        base=BASE,
        currency="USD",
    )
    assert [(x.amount, x.rate_name) for x in lines] == [(D("210.00"), "level 1")]


@pytest.mark.parametrize(
    ("base", "percent", "amount"),
    [
        (D("10.05"), D("10"), D("1.01")),  # 1.005 rounds half up
        (D("10.04"), D("10"), D("1.00")),  # 1.004 rounds down
        (D("0.01"), D("49.9999"), D("0.00")),  # rounds to zero: not recorded
        (D("333.33"), D("33.3333"), D("111.11")),
    ],
    ids=["half-up", "down", "zero-dropped", "thirds"],
)
def test_each_line_is_rounded_half_up_to_the_cent(base, percent, amount):
    program = Terms(
        program_id=1,
        name="P",
        levels=1,
        payout_on_lead=False,
        payout_on_sale=True,
        payout_amount=False,
        payout_percent=True,
        pay_if_unused=False,
        rates={SALE: {1: Rate(percent=percent)}},
    )
    lines = commission_lines(
        terms=program,
        kind=SALE,
        chain=[ChainMember(1, 1, True)],
        has_parent=False,
        base=base,
        currency="USD",
    )
    assert [x.amount for x in lines] == ([amount] if amount else [])


def test_rounding_follows_the_currency_minor_unit():
    program = Terms(
        program_id=1,
        name="P",
        levels=1,
        payout_on_lead=False,
        payout_on_sale=True,
        payout_amount=False,
        payout_percent=True,
        pay_if_unused=False,
        rates={SALE: {1: Rate(percent=D("12.5"))}},
    )
    [line] = commission_lines(
        terms=program,
        kind=SALE,
        chain=[ChainMember(1, 1, True)],
        has_parent=False,
        base=D("1001"),
        currency="JPY",
    )
    assert line.amount == D("125")


@pytest.mark.parametrize(
    ("items", "discount", "base"),
    [
        ([Item(2, D("10.00")), Item(1, D("5.50"))], D("0"), D("25.50")),
        ([Item(2, D("10.00"))], D("5.00"), D("15.00")),
        ([Item(1, D("10.00"))], D("25.00"), D("0")),
        ([], D("0"), D("0")),
    ],
    ids=["items", "discount", "discount-above-items", "no-items"],
)
def test_base_is_items_less_discount_never_below_zero(items, discount, base):
    assert order_base(items, discount) == base
