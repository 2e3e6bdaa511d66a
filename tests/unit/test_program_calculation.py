"""commissions.calculation under SPEC §10: discount shares, which program pays each item,
product, override, unused and renewal rates, credit on payment. Figures worked by hand."""

from decimal import Decimal

import pytest

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
    clawbacks,
    discount_shares,
    item_bases,
    item_programs,
    program_lines,
    renewal_limit_reason,
)

from .settling import claw_back, pay

D = Decimal
ME, PARENT, GRANDPARENT = 100, 200, 300
CHAIN = [ChainMember(ME, 1, True), ChainMember(PARENT, 2, True), ChainMember(GRANDPARENT, 3, True)]


def terms(program_id, *, levels=3, rates=None, unused=None, pay_if_unused=False) -> Terms:
    return Terms(
        program_id=program_id,
        name=f"P{program_id}",
        levels=levels,
        payout_on_lead=False,
        payout_on_sale=True,
        payout_amount=True,
        payout_percent=True,
        pay_if_unused=pay_if_unused,
        rates={SALE: rates or {}},
        unused={SALE: unused or Rate()},
    )


def summary(result) -> list[tuple]:
    return [(x.partner_id, x.level, x.program_id, x.base, x.amount) for x in result.lines]


def item_rates(line) -> list[tuple]:
    return [(x.index, x.rate, x.amount, x.percent, x.per_unit) for x in line.items]


def lines_of(programs, items, *, discount="0", kind=SALE, chain=1, **more):
    """`program_lines` in USD up the first `chain` members of CHAIN (a parent from 2 on)."""
    return program_lines(
        programs=programs,
        items=items,
        discount=D(discount),
        kind=kind,
        chain=CHAIN[:chain],
        has_parent=chain >= 2,
        currency="USD",
        **more,
    )


# --- discount shares ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prices", "discount", "shares", "bases"),
    [
        # 60, 40, 100 of 200; 10.01 x 60/200 = 3.003 -> 3.00, x 40/200 = 2.002 -> 2.00,
        # the last takes 10.01 - 5.00 = 5.01.
        (
            ["60.00", "40.00", "100.00"],
            "10.01",
            ["3.00", "2.00", "5.01"],
            ["57.00", "38.00", "94.99"],
        ),
        # 0.10 x 1/3 = 0.0333 -> 0.03 twice; the last takes 0.04.
        (["1.00", "1.00", "1.00"], "0.10", ["0.03", "0.03", "0.04"], ["0.97", "0.97", "0.96"]),
        # 0.05 x 1/2 = 0.025 -> 0.03 (half up); the last takes 0.02.
        (["1.00", "1.00"], "0.05", ["0.03", "0.02"], ["0.97", "0.98"]),
        # All totals 0: the last item takes the whole discount; every base is 0.
        (["0.00", "0.00"], "5.00", ["0.00", "5.00"], ["0.00", "0.00"]),
        # A discount above the items' total: the shares stay proportional, every base is 0.
        (["10.00", "30.00"], "50.00", ["12.50", "37.50"], ["0.00", "0.00"]),
        # Ten items of 0.03 round 0.25 x 3/31 = 0.0242 down to 0.02 each: the last (0.01)
        # would take 0.05; it takes its 0.01 and the 0.04 beyond moves to the items before
        # it, last first (0.03 each), so the bases still sum to 0.31 - 0.25 = 0.06.
        (
            ["0.03"] * 10 + ["0.01"],
            "0.25",
            ["0.02"] * 6 + ["0.03"] * 4 + ["0.01"],
            ["0.01"] * 6 + ["0.00"] * 5,
        ),
    ],
    ids=["rounded", "thirds", "half-up", "all-zero", "above-total", "last-overflows"],
)
def test_discount_shares(prices, discount, shares, bases):
    items = [Item(1, D(price)) for price in prices]
    assert discount_shares(items, D(discount), "USD") == [D(x) for x in shares]
    assert item_bases(items, D(discount), "USD") == [D(x) for x in bases]


def test_no_items_no_shares_and_no_negative_discount():
    assert discount_shares([], D("5.00"), "USD") == []
    with pytest.raises(ValueError, match="negative"):
        discount_shares([Item(1, D("1.00"))], D("-1.00"), "USD")


# --- which program pays each item --------------------------------------------------------

BOOKS = Program(
    terms=terms(10, rates={1: Rate(D("2"), D("10"))}),
    priority=1,
    version_id=101,
    pays_default=False,
    product_rates={"BOOK": ProductRate("BOOK", rates={SALE: {1: Rate(D("2"), D("10"))}})},
)
STANDARD = Program(terms=terms(20, rates={1: Rate(D("5"), D("20"))}), priority=2, version_id=201)


def test_the_first_program_by_priority_then_id_that_covers_an_item_pays_it():
    same_priority = Program(terms=terms(5), priority=2)
    items = [Item(1, D("1"), "BOOK"), Item(1, D("1"), "MUG"), Item(1, D("1"))]
    assert item_programs(items, [STANDARD, BOOKS]) == [BOOKS, STANDARD, STANDARD]
    assert item_programs(items, [STANDARD, same_priority]) == [same_priority] * 3
    assert item_programs(items, [BOOKS]) == [BOOKS, None, None]
    assert item_programs(items, []) == [None, None, None]


def test_an_item_no_program_covers_earns_nothing_and_is_reported():
    items = [Item(1, D("10.00"), "MUG"), Item(1, D("10.00"), "BOOK")]
    result = lines_of([BOOKS], items)
    # Only the book: 2 x 1 + 10.00 x 10 % = 3.00.
    assert summary(result) == [(ME, 1, 10, D("10.00"), D("3.00"))]
    assert result.uncovered == (0,)


# --- the lines of a mixed order ----------------------------------------------------------


def test_a_mixed_order_with_two_programs_a_product_rate_a_discount_and_three_levels():
    """BOOKS (priority 1) pays only the sku BOOK, at 2.00 + 10 %, 1.00 + 5 %, 0 + 2 % per
    level; STANDARD (priority 2) pays default rates 5.00 + 20 %, 0 + 10 %, 0 + 5 %. The
    parent has an override of STANDARD at level 2: 0 + 12 %.

    Items 2 x 30.00 BOOK, 1 x 40.00 MUG, 4 x 25.00 POSTER (200.00), discount 10.01:
    shares 3.00, 2.00, 5.01 (test_discount_shares); bases 57.00, 38.00, 94.99.
    BOOKS pays the book (57.00); STANDARD the mug and the poster (132.99).

    level 1 BOOKS:    2.00 x 2 + 57.00 x 10 %            = 4.00 + 5.70  = 9.70
    level 1 STANDARD: 5.00 once + 132.99 x 20 % = 26.598 = 31.598      -> 31.60
    level 2 BOOKS:    1.00 x 2 + 57.00 x 5 %             = 2.00 + 2.85  = 4.85
    level 2 STANDARD: override 132.99 x 12 %             = 15.9588     -> 15.96
    level 3 BOOKS:    57.00 x 2 %                                       = 1.14
    level 3 STANDARD: 132.99 x 5 %                       = 6.6495      -> 6.65 (half up)
    """
    books = Program(
        terms=terms(10),
        priority=1,
        version_id=101,
        pays_default=False,
        product_rates={
            "BOOK": ProductRate(
                "BOOK",
                rates={
                    SALE: {
                        1: Rate(D("2"), D("10")),
                        2: Rate(D("1"), D("5")),
                        3: Rate(D("0"), D("2")),
                    }
                },
            )
        },
    )
    standard = Program(
        terms=terms(
            20, rates={1: Rate(D("5"), D("20")), 2: Rate(percent=D("10")), 3: Rate(percent=D("5"))}
        ),
        priority=2,
        version_id=201,
    )
    override = Override(PARENT, 20, None, 2, {SALE: Rate(percent=D("12"))})
    items = [Item(2, D("30.00"), "BOOK"), Item(1, D("40.00"), "MUG"), Item(4, D("25.00"), "POSTER")]

    result = lines_of([standard, books], items, discount="10.01", chain=3, overrides=[override])

    assert summary(result) == [
        (ME, 1, 10, D("57.00"), D("9.70")),
        (ME, 1, 20, D("132.99"), D("31.60")),
        (PARENT, 2, 10, D("57.00"), D("4.85")),
        (PARENT, 2, 20, D("132.99"), D("15.96")),
        (GRANDPARENT, 3, 10, D("57.00"), D("1.14")),
        (GRANDPARENT, 3, 20, D("132.99"), D("6.65")),
    ]
    assert result.uncovered == ()
    assert [x.program_version_id for x in result.lines] == [101, 201] * 3
    me_books, me_standard, _, parent_standard = result.lines[:4]
    assert item_rates(me_books) == [(0, "product", D("2"), D("10"), True)]
    assert item_rates(me_standard) == [
        (1, "default", D("5"), D("20"), False),
        (2, "default", D("5"), D("20"), False),
    ]
    assert item_rates(parent_standard) == [
        (1, "override", D("0"), D("12"), False),
        (2, "override", D("0"), D("12"), False),
    ]
    assert me_books.trace() == {
        "program": 10,
        "program_version": 101,
        "items": [
            {
                "item": 0,
                "sku": "BOOK",
                "quantity": 2,
                "base": "57.00",
                "rate": "product",
                "amount": "2",
                "percent": "10",
                "per_unit": True,
            }
        ],
    }
    # No lead is paid: the programs pay sales only.
    lead = lines_of([standard, books], items, discount="10.01", kind=LEAD, chain=3)
    assert lead.lines == []


def test_an_override_for_the_sku_beats_one_for_every_item():
    """The parent's overrides of STANDARD at level 1: 1 % for every item, 3.00 + 50 % for
    the MUG. Mug 10.00: 3.00 x 1 + 5.00 = 8.00 (per unit); poster 20.00 x 1 % = 0.20
    (once-per-line amount 0): 8.20."""
    overrides = [
        Override(ME, 20, None, 1, {SALE: Rate(percent=D("1"))}),
        Override(ME, 20, "MUG", 1, {SALE: Rate(D("3"), D("50"))}),
        Override(PARENT, 20, "MUG", 1, {SALE: Rate(D("99"), D("99"))}),  # another partner's
    ]
    items = [Item(1, D("10.00"), "MUG"), Item(1, D("20.00"), "POSTER")]
    result = lines_of([STANDARD], items, overrides=overrides)
    assert summary(result) == [(ME, 1, 20, D("30.00"), D("8.20"))]
    assert item_rates(result.lines[0]) == [
        (0, "override", D("3"), D("50"), True),
        (1, "override", D("0"), D("1"), False),
    ]


def test_pay_if_unused_pays_a_product_rated_item_its_product_unused_rate():
    """Two levels, pay if unused, no parent: the book (2 x 10.00) at the product's unused
    rate 1.00 per unit + 30 % = 2.00 + 6.00; the poster (10.00) at the program's unused
    rate 4.00 once + 25 % = 6.50. Level 1 alone: 14.50."""
    program = Program(
        terms=terms(
            30,
            levels=2,
            rates={1: Rate(D("5"), D("20")), 2: Rate(percent=D("10"))},
            unused=Rate(D("4"), D("25")),
            pay_if_unused=True,
        ),
        priority=1,
        product_rates={
            "BOOK": ProductRate(
                "BOOK",
                rates={SALE: {1: Rate(D("9"), D("9"))}},
                unused={SALE: Rate(D("1"), D("30"))},
            )
        },
    )
    result = lines_of([program], [Item(2, D("10.00"), "BOOK"), Item(1, D("10.00"), "POSTER")])
    assert summary(result) == [(ME, 1, 30, D("30.00"), D("14.50"))]
    assert [x.rate for x in result.lines[0].items] == ["unused", "unused"]


# --- subscriptions -----------------------------------------------------------------------


def test_a_subscription_with_a_limit_of_two_renewals():
    """20 % / 10 % normally, 10 % / 5 % on renewals, two renewals paid; one item of 50.00.

    cycle 1 (the first payment): 50.00 x 20 % = 10.00, x 10 % = 5.00
    cycle 2 (renewal 1):         50.00 x 10 % =  5.00, x  5 % = 2.50
    cycle 3 (renewal 2):         the same
    cycle 4 (renewal 3):         past the limit: no line, and the reason
    """
    program = Program(
        terms=terms(40, levels=2, rates={1: Rate(percent=D("20")), 2: Rate(percent=D("10"))}),
        priority=1,
        version_id=7,
        renewal_cycles=2,
        renewal_rates={SALE: {1: Rate(percent=D("10")), 2: Rate(percent=D("5"))}},
    )

    def cycle(number):
        return lines_of([program], [Item(1, D("50.00"), "PLAN")], chain=2, cycle=number)

    first, second, third, fourth = (cycle(n) for n in (1, 2, 3, 4))
    assert [(x.partner_id, x.amount) for x in first.lines] == [
        (ME, D("10.00")),
        (PARENT, D("5.00")),
    ]
    for renewal in (second, third):
        assert [(x.partner_id, x.amount) for x in renewal.lines] == [
            (ME, D("5.00")),
            (PARENT, D("2.50")),
        ]
        assert {x.rate for line in renewal.lines for x in line.items} == {"renewal"}
        assert renewal.unpaid == {}
    assert fourth.lines == []
    assert fourth.unpaid == {40: "cycle 4 is renewal 3; program 40 pays 2 renewals"}


@pytest.mark.parametrize(
    ("renewal_cycles", "cycle", "paid"),
    [(None, 2, True), (None, 50, True), (0, 1, True), (0, 2, False), (1, 2, True), (1, 3, False)],
    ids=["every-renewal", "every-renewal-50", "none-first", "none-renewal", "one-1", "one-2"],
)
def test_renewal_cycles(renewal_cycles, cycle, paid):
    program = Program(terms=terms(1), priority=1, renewal_cycles=renewal_cycles)
    assert (renewal_limit_reason(program, cycle) == "") is paid


def test_a_renewal_without_renewal_rates_earns_the_normal_rates():
    result = lines_of([STANDARD], [Item(1, D("50.00"))], cycle=5)
    assert [(x.amount, x.items[0].rate) for x in result.lines] == [(D("15.00"), "default")]
    with pytest.raises(ValueError, match="cycle"):
        renewal_limit_reason(STANDARD, 0)


# --- credit on payment -------------------------------------------------------------------


def test_an_order_paid_in_three_parts_and_refunded_in_two():
    """Lines 10.00, 3.33, 0.07 of an order of 100.00.

    payment 33.33: 3.333 -> 3.33, 1.109889 -> 1.11, 0.023331 -> 0.02
    payment 33.33: the same; credited 6.66, 2.22, 0.04
    payment 33.34 completes the total: what is left, 3.34, 1.11, 0.03
    refund 40.00 of 100.00 paid: 4.00, 1.332 -> 1.33, 0.028 -> 0.03
    refund 60.00 completes what was paid: what is left, 6.00, 2.00, 0.04
    """
    lines = [D("10.00"), D("3.33"), D("0.07")]
    payments = [D("33.33"), D("33.33"), D("33.34")]
    credits, credited = pay(lines=lines, order_total=D("100.00"), payments=payments)
    assert credits == [
        [D("3.33"), D("1.11"), D("0.02")],
        [D("3.33"), D("1.11"), D("0.02")],
        [D("3.34"), D("1.11"), D("0.03")],
    ]
    assert credited == lines
    with pytest.raises(ValueError, match="exceeds"):
        pay(lines=lines, order_total=D("100.00"), payments=[*payments, D("0.01")])

    clawed, taken = claw_back(credited=credited, paid=D("100.00"), refunds=[D("40.00"), D("60.00")])
    assert clawed == [
        [D("-4.00"), D("-1.33"), D("-0.03")],
        [D("-6.00"), D("-2.00"), D("-0.04")],
    ]
    assert taken == credited


def test_a_refund_cannot_exceed_what_was_paid():
    """Paid 30.00 of 100.00, credited 3.00 of a line of 10.00: a refund of 30.01 is
    refused; one of 30.00 takes back the 3.00 credited, not the line's 10.00."""
    kwargs = {
        "lines": [D("3.00")], "taken": [D("0")], "order_total": D("30.00"), "currency": "USD"
    }  # fmt: skip
    with pytest.raises(ValueError, match="exceeds"):
        clawbacks(**kwargs, refunded_before=D("0"), refund=D("30.01"))
    assert clawbacks(**kwargs, refunded_before=D("0"), refund=D("30.00")) == [D("-3.00")]
    assert clawbacks(**kwargs, refunded_before=D("0"), refund=D("10.00")) == [D("-1.00")]
