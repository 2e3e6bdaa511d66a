"""Attribution traces in plain words."""

from datetime import UTC, datetime

import pytest

from commissions.explain import explain, explain_staff

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("trace", "kind", "level", "words"),
    [
        (
            {
                "attribution": {
                    "source": "cookie",
                    "rule": "last",
                    "ref_at": "2026-11-17T12:00:00+00:00",
                },
                "rates": {"rate": "level 1"},
            },
            "sale",
            1,
            "Sale, level 1: credited because you were the last partner whose link the buyer "
            "clicked, 3\xa0days before the order.",
        ),
        (
            {"attribution": {"source": "explicit", "rule": None}, "rates": {"rate": "unused"}},
            "sale",
            1,
            "Sale, level 1 (pay-if-unused rate: nobody above you): credited because the order "
            "named you as its partner.",
        ),
        (
            {"attribution": {"source": "subscription", "rule": None, "ref": "sub-1-c1"}},
            "sale",
            1,
            "Sale, level 1: credited because the buyer's subscription began with order "
            "sub-1-c1, credited to you.",
        ),
        (
            {
                "attribution": {
                    "source": "history",
                    "rule": "first",
                    "ref_at": "2026-11-06T12:00:00+00:00",
                }
            },
            "sale",
            2,
            "Sale, level 2: you recruited the partner credited, who was credited because the "
            "contact is in their referral history (first referral, 2\xa0weeks before the "
            "order).",
        ),
        (
            {
                "attribution": {
                    "source": "contact",
                    "first_source": "cookie",
                    "rule": "last",
                    "ref_at": "2026-11-19T12:00:00+00:00",
                    "fixed_at": "2026-11-19T13:00:00+00:00",
                }
            },
            "lead",
            1,
            "Lead, level 1: credited because you are the buyer's referring partner since "
            "2026-11-19: you were the last partner whose link the buyer clicked, 1\xa0day "
            "before the order.",
        ),
        (
            {
                "attribution": {
                    "source": "ip",
                    "rule": "last",
                    "ref_at": "2026-11-20T10:00:00+00:00",
                }
            },
            "sale",
            3,
            "Sale, level 3: you are two levels above the partner credited, who was credited "
            "because their link was clicked from the contact's IP address (last such click, "
            "2\xa0hours before the order).",
        ),
        (
            {"refund": "refund-7", "refunded": "25.00"},
            "sale",
            1,
            "Taken back because order refund refund-7 returned 25.00.",
        ),
    ],
    ids=[
        "cookie-last",
        "explicit-unused",
        "subscription",
        "history-level-2",
        "contact-lead",
        "ip-level-3",
        "clawback",
    ],
)
def test_explain(trace, kind, level, words):
    assert explain(trace=trace, kind=kind, level=level, at=AT) == words


# --- Staff phrasing ------------------------------------------------------------------------

from commissions.explain import explain_attribution  # noqa: E402

GOLD_10 = {
    "program": {"id": 1, "name": "Gold", "levels": 2},
    "base": "1000.00",
    "rates": {"rate": "level 1", "amount": "0", "percent": "10.0000"},
}


@pytest.mark.parametrize(
    ("trace", "kind", "level", "credited", "words"),
    [
        (
            {
                **GOLD_10,
                "attribution": {
                    "source": "cookie",
                    "rule": "last",
                    "ref_at": "2026-11-17T12:00:00+00:00",
                },
            },
            "sale",
            1,
            "jane",
            "Sale, level 1: credited because they were the last partner whose link the contact "
            "clicked, 3\xa0days before the order (tracking cookie). Program Gold pays 10 % of "
            "1000.00 at level 1.",
        ),
        (
            {
                **GOLD_10,
                "attribution": {"source": "explicit", "rule": None},
                "rates": {"rate": "level 2", "amount": "2.50", "percent": "5.5000"},
            },
            "sale",
            2,
            "jane",
            "Sale, level 2: paid as the parent of the credited partner jane, who was credited "
            "because the order named them explicitly. Program Gold pays 2.50 + 5.5 % of 1000.00 "
            "at level 2.",
        ),
        (
            {
                **GOLD_10,
                "attribution": {
                    "source": "history",
                    "rule": "first",
                    "ref_at": "2026-11-06T12:00:00+00:00",
                },
                "rates": {"rate": "level 3", "amount": "4.00", "percent": "0"},
            },
            "lead",
            3,
            "",
            "Lead, level 3: paid as the grandparent of the credited partner, who was credited "
            "because the contact is in their referral history (first referral, 2\xa0weeks "
            "before the order). Program Gold pays 4.00 at level 3.",
        ),
        (
            {
                **GOLD_10,
                "attribution": {
                    "source": "ip",
                    "rule": "last",
                    "ref_at": "2026-11-20T10:00:00+00:00",
                },
                "rates": {"rate": "unused", "amount": "0", "percent": "25.0000"},
            },
            "sale",
            1,
            "bob1",
            "Sale, level 1 (pay-if-unused rate: nobody above them): credited because their link "
            "was clicked from the contact's IP address (last such click, 2\xa0hours before the "
            "order). Program Gold pays 25 % of 1000.00, its pay-if-unused rate.",
        ),
        (
            {
                **GOLD_10,
                "attribution": {
                    "source": "contact",
                    "first_source": "cookie",
                    "rule": "first",
                    "ref_at": "2026-11-01T12:00:00+00:00",
                    "fixed_at": "2026-11-04T12:00:00+00:00",
                },
            },
            "lead",
            1,
            "lena",
            "Lead, level 1: credited because they are the contact's lead partner since "
            "2026-11-04: they were the first partner whose link the contact clicked, 3\xa0days "
            "before the event that fixed it (tracking cookie). Program Gold pays 10 % of "
            "1000.00 at level 1.",
        ),
        (
            {
                "refund": "r1",
                "refunded": "275.00",
                "order_total": "1100.00",
                "clawback_of": 7,
                "completes_refund": False,
            },
            "sale",
            2,
            "jane",
            "Clawback: refund r1 returned 275.00 of the order's 1100.00, so this line gives "
            "back the same share.",
        ),
        (
            {
                "refund": "r2",
                "refunded": "825.00",
                "order_total": "1100.00",
                "clawback_of": 7,
                "completes_refund": True,
            },
            "sale",
            1,
            "jane",
            "Clawback: refund r2 returned 825.00 and completed the refund of the order's "
            "1100.00, so this line gives back all that was left of it.",
        ),
    ],
    ids=[
        "cookie-level-1",
        "explicit-level-2",
        "history-level-3",
        "ip-unused",
        "contact-lead",
        "clawback-share",
        "clawback-completes",
    ],
)
def test_explain_staff(trace, kind, level, credited, words):
    assert explain_staff(trace=trace, kind=kind, level=level, at=AT, credited=credited) == words


@pytest.mark.parametrize(
    ("trace", "event", "words"),
    [
        (
            {"source": "explicit", "rule": None, "ref": None, "ref_at": None},
            "the order",
            "Credited because the order named them explicitly.",
        ),
        (
            {
                "source": "cookie",
                "rule": "first",
                "ref": "abc",
                "ref_at": "2026-11-19T12:00:00+00:00",
            },
            "the order",
            "Credited because they were the first partner whose link the contact clicked, "
            "1\xa0day before the order (tracking cookie).",
        ),
        (
            {
                "source": "contact",
                "first_source": "explicit",
                "rule": None,
                "fixed_at": "2026-10-01T12:00:00+00:00",
            },
            "the order",
            "Credited because they are the contact's lead partner since 2026-10-01: the event "
            "that fixed it named them explicitly.",
        ),
        (
            {
                "source": "history",
                "rule": "last",
                "ref": "5",
                "ref_at": "2026-11-20T11:00:00+00:00",
            },
            "the event that fixed it",
            "Credited because the contact is in their referral history (last referral, 1\xa0hour "
            "before the event that fixed it).",
        ),
        (
            {"source": None, "rule": None, "ref": None, "ref_at": None},
            "the order",
            "No partner could be found.",
        ),
        ({}, "the order", "No partner could be found."),
    ],
    ids=[
        "explicit",
        "cookie-first",
        "contact-fixed-earlier",
        "history-for-a-contact",
        "nobody",
        "empty",
    ],
)
def test_explain_attribution_for_staff(trace, event, words):
    assert explain_attribution(trace=trace, at=AT, event=event) == words


# --- The partner's commission page: sentences, never keys (SPEC §12) -----------------------

from decimal import Decimal  # noqa: E402

from commissions.explain import balance_words, explain_details  # noqa: E402


def test_a_line_paid_item_by_item_says_each_items_rate():
    trace = {
        "attribution": {"source": "explicit", "rule": None},
        "program": {"id": 2, "name": "Books", "levels": 1},
        "items": [
            {"item": 0, "sku": "BOOK", "quantity": 3, "base": "54.00", "rate": "product",
             "amount": "1.50", "percent": "5.0000", "per_unit": True},
            {"item": 2, "sku": "", "quantity": 1, "base": "20.00", "rate": "override",
             "amount": "0", "percent": "12.5000", "per_unit": False},
        ],
        "uncovered": [{"item": 1, "sku": "GIFT"}],
        "hold_days": 30,
    }  # fmt: skip

    assert explain_details(trace=trace, kind="sale", level=1, at=AT) == [
        "Sale, level 1: credited because the order named you as its partner.",
        "Item 1 (BOOK, quantity 3): the product's rate, 1.50 per unit + 5 % of 54.00.",
        "Item 3 (quantity 1): your own rate, 12.5 % of 20.00.",
        "Not paid by any program of yours: GIFT.",
        "It is held 30 days before it can be paid.",
    ]


def test_a_clawback_says_what_the_refund_took_back():
    trace = {
        "refund": "r-9",
        "refunded": "25.00",
        "order_total": "100.00",
        "clawback_of": 7,
        "completes_refund": False,
    }

    [words] = explain_details(trace=trace, kind="sale", level=1, at=AT)

    assert words == (
        "Refund r-9 returned 25.00 of the order's 100.00, so this line gives back the same share."
    )
    assert "clawback_of" not in words and "False" not in words


@pytest.mark.parametrize(
    ("balance", "clawed", "words"),
    [
        (Decimal("5.00"), Decimal("0"), ""),
        (
            Decimal("-4.00"),
            Decimal("4.00"),
            "Your balance is below zero because refunds took back 4.00 EUR of commissions that "
            "had already been paid to you. What you earn next makes up for it before anything "
            "more is paid out.",
        ),
    ],
    ids=["positive", "clawback-after-payout"],
)
def test_a_balance_below_zero_says_why(balance, clawed, words):
    assert balance_words(balance=balance, clawed_after_payout=clawed, currency="EUR") == words


# --- Lines with a per-item trace (SPEC §10, issue 16 item 8) -------------------------------

BOOKS_ITEMS = {
    "attribution": {"source": "explicit", "rule": None},
    "program": {"id": 10, "name": "Books", "levels": 3},
    "base": "57.00",
    "items": [
        {"item": 0, "sku": "BOOK", "quantity": 2, "base": "57.00", "rate": "product",
         "amount": "2.00", "percent": "10.0000", "per_unit": True},
    ],
    "uncovered": [{"item": 3, "sku": "LAMP"}, {"item": 4, "sku": ""}],
}  # fmt: skip
STANDARD_ITEMS = {
    "attribution": {"source": "explicit", "rule": None},
    "program": {"id": 20, "name": "Standard", "levels": 3},
    "base": "132.99",
    "items": [
        {"item": 1, "sku": "MUG", "quantity": 1, "base": "38.00", "rate": "default",
         "amount": "5.00", "percent": "20.0000", "per_unit": False},
        {"item": 2, "sku": "POSTER", "quantity": 4, "base": "94.99", "rate": "override",
         "amount": "0.00", "percent": "12.5000", "per_unit": False},
        {"item": 5, "sku": "", "quantity": 3, "base": "30.00", "rate": "renewal",
         "amount": "0.00", "percent": "0.0000", "per_unit": False},
    ],
}  # fmt: skip
UNUSED_ITEMS = {
    "attribution": {"source": "explicit", "rule": None},
    "program": {"id": 30, "name": "Solo", "levels": 2},
    "base": "30.00",
    "items": [
        {"item": 0, "sku": "BOOK", "quantity": 2, "base": "20.00", "rate": "unused",
         "amount": "1.00", "percent": "30.0000", "per_unit": True},
        {"item": 1, "sku": "PEN", "quantity": 1, "base": "10.00", "rate": "unused",
         "amount": "4.00", "percent": "25.0000", "per_unit": False},
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("trace", "level", "words"),
    [
        (
            BOOKS_ITEMS,
            1,
            "Sale, level 1: credited because the order named them explicitly. Program Books "
            "pays at level 1, item by item. Item 1 (BOOK, quantity 2): the product's rate, "
            "2.00 per unit + 10 % of 57.00. Not paid by any program: LAMP, item 5.",
        ),
        (
            STANDARD_ITEMS,
            2,
            "Sale, level 2: paid as the parent of the credited partner jane, who was credited "
            "because the order named them explicitly. Program Standard pays at level 2, item by "
            "item. Item 2 (MUG, quantity 1): the program's rate, 5.00 + 20 % of 38.00. Item 3 "
            "(POSTER, quantity 4): the partner's override, 12.5 % of 94.99. Item 6 (quantity "
            "3): the renewal rate, nothing.",
        ),
        (
            UNUSED_ITEMS,
            1,
            "Sale, level 1 (pay-if-unused rate: nobody above them): credited because the order "
            "named them explicitly. Program Solo pays at level 1, item by item. Item 1 (BOOK, "
            "quantity 2): the pay-if-unused rate, 1.00 per unit + 30 % of 20.00. Item 2 (PEN, "
            "quantity 1): the pay-if-unused rate, 4.00 + 25 % of 10.00.",
        ),
    ],
    ids=["product-and-uncovered", "default-override-renewal", "unused"],
)
def test_explain_staff_per_item(trace, level, words):
    assert explain_staff(trace=trace, kind="sale", level=level, at=AT, credited="jane") == words


def test_one_uncovered_item_is_named_alone():
    trace = {**BOOKS_ITEMS, "uncovered": [{"item": 1, "sku": "MUG"}]}

    words = explain_staff(trace=trace, kind="sale", level=1, at=AT)

    assert words.endswith(" Not paid by any program: MUG.")


def test_a_credit_says_which_payment_credited_it():
    trace = {"payment": "pay-2", "paid": "300.00", "order_total": "1100.00", "line": "100.00"}
    at = datetime(2026, 3, 4, tzinfo=UTC)

    assert explain(trace=trace, kind="sale", level=1, at=at) == (
        "Credited because the customer paid 300.00 of the order."
    )
    assert explain_staff(
        trace={**trace, "completes_payment": True}, kind="sale", level=1, at=at
    ) == (
        "Credit: the customer's payment pay-2 of 300.00 (order total 1100.00), the last: it "
        "credits what was left. The line of 100.00 is credited as the customer pays."
    )
