"""partners.terms: a program's pay terms as JSON, and what changed between two in words."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from partners.terms import program_terms, terms_changes

D = Decimal
RATE = {"lead_amount": "0.00", "lead_percent": "0.0000", "sale_amount": "0.00"}


def rate(level, **values):
    return SimpleNamespace(
        level=level,
        **{
            "lead_amount": D("0.00"),
            "lead_percent": D("0.0000"),
            "sale_amount": D("0.00"),
            "sale_percent": D("0.0000"),
            **values,
        },
    )


UNUSED = {f"unused_{n}": D("0") for n in ("lead_amount", "lead_percent", "sale_amount")}
PROGRAM = SimpleNamespace(
    levels=2,
    payout_on_lead=False,
    payout_on_sale=True,
    payout_amount=True,
    payout_percent=False,
    pay_if_unused=False,
    pays_default=True,
    unused_sale_percent=D("25.0000"),
    renewal_cycles=2,
    credit_on="payment",
    **UNUSED,
)


def test_the_snapshot_has_the_program_resources_shape_in_level_and_sku_order():
    product = SimpleNamespace(sku="B", unused_sale_percent=D("1.5000"), **UNUSED)
    other = SimpleNamespace(sku="A", unused_sale_percent=D("0.0000"), **UNUSED)

    terms = program_terms(
        program=PROGRAM,
        rates=[rate(2, sale_percent=D("5.0000")), rate(1, sale_percent=D("10.0000"))],
        product_rates=[(product, [rate(1, sale_amount=D("2.00"))]), (other, [])],
        renewal_rates=[rate(1, sale_percent=D("4.0000"))],
    )

    assert terms == {
        "levels": 2,
        "payout_on_lead": False,
        "payout_on_sale": True,
        "payout_amount": True,
        "payout_percent": False,
        "pay_if_unused": False,
        "pays_default": True,
        "rates": [
            {"level": 1, **RATE, "sale_percent": "10.0000"},
            {"level": 2, **RATE, "sale_percent": "5.0000"},
        ],
        "unused_lead_amount": "0",
        "unused_lead_percent": "0",
        "unused_sale_amount": "0",
        "unused_sale_percent": "25.0000",
        "product_rates": [
            {
                "sku": "A",
                "rates": [],
                "unused_lead_amount": "0",
                "unused_lead_percent": "0",
                "unused_sale_amount": "0",
                "unused_sale_percent": "0.0000",
            },
            {
                "sku": "B",
                "rates": [{"level": 1, **RATE, "sale_amount": "2.00", "sale_percent": "0.0000"}],
                "unused_lead_amount": "0",
                "unused_lead_percent": "0",
                "unused_sale_amount": "0",
                "unused_sale_percent": "1.5000",
            },
        ],
        "renewal_cycles": 2,
        "renewal_rates": [{"level": 1, **RATE, "sale_percent": "4.0000"}],
        "credit_on": "payment",
    }


def terms(**changes):
    base = {
        "levels": 2,
        "payout_on_lead": False,
        "pays_default": True,
        "rates": [
            {"level": 1, **RATE, "sale_percent": "10.0000"},
            {"level": 2, **RATE, "sale_percent": "5.0000"},
        ],
        "unused_sale_percent": "0.0000",
        "product_rates": [
            {"sku": "MUG", "rates": [{"level": 1, **RATE, "sale_percent": "3.0000"}]},
        ],
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    ("new", "words"),
    [
        pytest.param(terms(), [], id="same"),
        pytest.param(
            terms(
                rates=[
                    {"level": 1, **RATE, "sale_percent": "12.0000"},
                    {"level": 2, **RATE, "sale_percent": "5.0000", "lead_amount": "1.50"},
                ]
            ),
            ["level 1 sale percent 10 → 12", "level 2 lead amount 0 → 1.5"],
            id="rates",
        ),
        pytest.param(
            terms(levels=3, payout_on_lead=True, pays_default=False),
            ["levels 2 → 3", "pays leads off → on", "pays default rates on → off"],
            id="flags",
        ),
        pytest.param(
            terms(unused_sale_percent="25.5000"), ["unused sale percent 0 → 25.5"], id="unused"
        ),
        pytest.param(
            terms(
                product_rates=[
                    {"sku": "BOOK", "rates": []},
                    {"sku": "MUG", "rates": [{"level": 1, **RATE, "sale_percent": "4.0000"}]},
                ]
            ),
            ["product BOOK added", "product MUG level 1 sale percent 3 → 4"],
            id="product-added-and-changed",
        ),
        pytest.param(terms(product_rates=[]), ["product MUG removed"], id="product-removed"),
        pytest.param(
            {**terms(), "credit_on": "payment", "shipping": True},
            ["credits on none → payment", "shipping none → on"],
            id="a-term-added-later",
        ),
        pytest.param({**terms(), "bonuses": [{"level": 1}]}, ["bonuses changed"], id="a-list"),
        pytest.param(
            {**terms(), "renewal_cycles": 2}, ["renewals that earn all → 2"], id="renewal-limit"
        ),
        pytest.param(
            {**terms(), "renewal_rates": [{"level": 1, **RATE, "sale_percent": "4.0000"}]},
            ["renewal level 1 added"],
            id="renewal-rates",
        ),
    ],
)
def test_what_changed_in_words(new, words):
    assert terms_changes(terms(), new) == words


def test_a_first_version_has_no_changes():
    assert terms_changes(None, terms()) == []
