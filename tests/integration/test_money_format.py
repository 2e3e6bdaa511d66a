"""Money leaves the API as a decimal string with its cents, on both databases (issue 14).

SQLite hands sums back as floats: a refund that completed an order once answered
`"amount": "-0.900000000000000"`, and its stored answer gave every duplicate the same.
Over random orders and refund splits, every money field of every answer, of the stored
answers of duplicates, and of the commission and ledger resources reads `^-?\\d+\\.\\d{2}$`.
"""

import re
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db

MONEY = re.compile(r"^-?\d+\.\d{2}$")
MONEY_KEYS = {
    "amount",
    "base",
    "refunded",
    "beginning_balance",
    "earned",
    "clawbacks",
    "payments",
    "ending_balance",
    "total",
}
CENT = Decimal("0.01")


def money_fields(node, path=()):
    """Every (path, value) under a money key of a JSON answer."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in MONEY_KEYS and not isinstance(value, dict | list):
                yield (*path, key), value
            else:
                yield from money_fields(value, (*path, key))
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from money_fields(value, (*path, str(n)))


def assert_money(answer) -> None:
    bad = [(path, value) for path, value in money_fields(answer) if not MONEY.match(str(value))]
    assert not bad, bad


@pytest.fixture
def shop(api):
    """Three levels paying odd percents and amounts, leads and sales."""
    defaults_update(
        data={"levels": 3, "payout_on_lead": True, "payout_percent": True}, acting_user=None
    )
    ProgramFactory(
        priority=1,
        levels=3,
        payout_on_lead=True,
        payout_percent=True,
        rates={
            1: {"sale_percent": Decimal("7.3333"), "sale_amount": Decimal("0.01"),
                "lead_percent": Decimal("1.1")},
            2: {"sale_percent": Decimal("3.0303")},
            3: {"sale_amount": Decimal("0.33"), "lead_percent": Decimal("0.0101")},
        },
    )  # fmt: skip
    PartnerFactory(code="rep", parent=PartnerFactory(code="mom", parent=PartnerFactory(code="top")))
    return api


cents = st.integers(min_value=1, max_value=99_999).map(lambda n: Decimal(n) / 100)
orders = st.fixed_dictionaries(
    {
        "prices": st.lists(cents, min_size=1, max_size=4),
        "discount": st.integers(min_value=0, max_value=2_000).map(lambda n: Decimal(n) / 100),
        "shipping": st.integers(min_value=0, max_value=999).map(lambda n: Decimal(n) / 100),
        "tax": st.integers(min_value=0, max_value=999).map(lambda n: Decimal(n) / 100),
        # Shares of the total refunded one after the other; the last refund names no amount
        # (all that is left), so the order ends fully refunded.
        "splits": st.lists(st.integers(min_value=1, max_value=97), max_size=3),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=orders)
def test_every_money_field_has_its_cents(shop, order):
    order_id = f"o-{uuid.uuid4().hex[:12]}"
    body = {
        "event_id": order_id,
        "contact": {"email": f"{order_id}@example.com"},
        "items": [{"sku": f"S{n}", "quantity": 1, "unit_price": str(p)}
                  for n, p in enumerate(order["prices"])],
        "discount": str(order["discount"]),
        "shipping": str(order["shipping"]),
        "tax": str(order["tax"]),
        "sale_partner": "rep",
        "lead_partner": "rep",
    }  # fmt: skip
    answers = [shop.post("/api/v1/events/orders/", body, format="json")]
    total = max(sum(order["prices"]) - order["discount"], 0) + order["shipping"] + order["tax"]
    left = total
    refunds = []
    for n, share in enumerate(order["splits"] if total else []):
        amount = (total * share / 100).quantize(CENT)
        if CENT <= amount < left:
            refunds.append({"event_id": f"{order_id}-r{n}", "order_id": order_id,
                            "amount": str(amount)})  # fmt: skip
            left -= amount
    if total:  # an order of 0.00 has nothing to refund
        refunds.append({"event_id": f"{order_id}-r-last", "order_id": order_id})
    for refund in refunds:
        answers.append(shop.post("/api/v1/events/refunds/", refund, format="json"))
    assert [a.status_code for a in answers] == [201] * len(answers), answers[-1].content
    duplicates = [shop.post("/api/v1/events/orders/", body, format="json")]
    duplicates += [shop.post("/api/v1/events/refunds/", r, format="json") for r in refunds]
    assert [d.status_code for d in duplicates] == [200] * len(duplicates)

    for response in [*answers, *duplicates]:
        assert_money(response.json())
    for response in duplicates:
        assert response.json()["duplicate"] is True
    for code in ("rep", "mom", "top"):
        assert_money(shop.get(f"/api/v1/commissions/?partner={code}&order={order_id}").json())
        ledger = shop.get(f"/api/v1/partners/{code}/ledger/").json()
        assert_money(ledger)
    # A full refund nets every line of the order to zero (SPEC §5.4).
    lines = shop.get(f"/api/v1/commissions/?order={order_id}&limit=1000").json()
    rows = lines["results"] if isinstance(lines, dict) else lines
    assert sum(Decimal(row["amount"]) for row in rows) == 0
