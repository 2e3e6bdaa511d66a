"""The events intake over HTTP: web forms, orders, refunds (SPEC §5, §6)."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from commissions.models import Commission, Contact, Event, Lead, Order, Referral, Refund
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
D = Decimal
ORDERS, FORMS, REFUNDS = (
    "/api/v1/events/orders/",
    "/api/v1/events/web-forms/",
    "/api/v1/events/refunds/",
)


def fixture(name: str, **changes) -> dict:
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), **changes}


def state() -> dict:
    """Every row the intake can write."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Event, Contact, Referral, Lead, Order, Refund, Commission)
    }


@pytest.fixture
def program(db):
    """3 levels, lead and sale, amount and percent: sale 10 % + 5.00 at level 1."""
    defaults_update(
        data={
            "levels": 3,
            "payout_on_lead": True,
            "payout_on_sale": True,
            "payout_amount": True,
            "payout_percent": True,
        },
        acting_user=None,
    )
    return ProgramFactory(
        priority=1,
        levels=3,
        payout_on_lead=True,
        payout_on_sale=True,
        payout_amount=True,
        payout_percent=True,
        rates={
            1: {"sale_percent": D("10"), "sale_amount": D("5"), "lead_percent": D("2")},
            2: {"sale_percent": D("5"), "lead_percent": D("1")},
            3: {"sale_percent": D("1")},
        },
    )


@pytest.fixture
def tree(program):
    top = PartnerFactory(code="grandma")
    mid = PartnerFactory(code="mother", parent=top)
    rep = PartnerFactory(code="salesrep", parent=mid)
    lead = PartnerFactory(code="blogger")
    return {"top": top, "mid": mid, "rep": rep, "lead": lead}


def test_an_order_with_an_explicit_sale_partner_pays_three_levels(api, tree):
    response = api.post(ORDERS, fixture("order", sale_partner="SalesRep"), format="json")

    assert response.status_code == 201, response.data
    body = response.json()
    # base = 2 x 400 + 250 - 50 = 1,000; shipping and tax never count
    assert body == {
        "event_id": "order-1001",
        "order_id": "order-1001",
        "base": "1000.00",
        "lead_partner": None,
        "sale_partner": "salesrep",
        "attribution": {"source": "explicit", "rule": None},
        "commissions": [
            {
                "id": body["commissions"][0]["id"],
                "partner": "salesrep",
                "level": 1,
                "kind": "sale",
                "amount": "105.00",
                "currency": "USD",
            },
            {
                "id": body["commissions"][1]["id"],
                "partner": "mother",
                "level": 2,
                "kind": "sale",
                "amount": "50.00",
                "currency": "USD",
            },
            {
                "id": body["commissions"][2]["id"],
                "partner": "grandma",
                "level": 3,
                "kind": "sale",
                "amount": "10.00",
                "currency": "USD",
            },
        ],
        "duplicate": False,
    }
    order = Order.objects.get()
    assert (order.base, order.total, order.contact.email) == (
        D("1000.00"),
        D("1100.00"),
        "buyer@example.com",
    )
    line = Commission.objects.get(partner=tree["rep"])
    assert line.trace["rates"] == {"rate": "level 1", "amount": "5.00", "percent": "10.0000"}
    assert line.trace["attribution"]["source"] == "explicit"


def test_lead_and_sale_pay_the_lead_partner_lead_rates_and_the_rep_sale_rates(api, tree):
    api.post(FORMS, fixture("web_form", lead_partner="blogger"), format="json")

    response = api.post(ORDERS, fixture("order", sale_partner="salesrep"), format="json")

    body = response.json()
    assert body["lead_partner"] == "blogger"
    paid = sorted((c["partner"], c["kind"], c["level"], c["amount"]) for c in body["commissions"])
    assert paid == [
        ("blogger", "lead", 1, "20.00"),  # 2 % of 1,000; blogger has no parent
        ("grandma", "sale", 3, "10.00"),
        ("mother", "sale", 2, "50.00"),
        ("salesrep", "sale", 1, "105.00"),
    ]


def test_a_web_form_fixes_the_lead_partner_and_pays_nothing(api, tree):
    response = api.post(FORMS, fixture("web_form", lead_partner="blogger"), format="json")

    assert response.status_code == 201
    assert response.json() == {
        "event_id": "form-2001",
        "contact_id": Contact.objects.get().pk,
        "lead_partner": "blogger",
        "attribution": {"source": "explicit", "rule": None},
        "duplicate": False,
    }
    assert Commission.objects.count() == 0
    again = api.post(
        FORMS, fixture("web_form", event_id="form-2002", lead_partner="mother"), format="json"
    )
    assert again.json()["lead_partner"] == "blogger"
    assert again.json()["attribution"] == {"source": "contact", "rule": None}


@pytest.mark.parametrize("path", [ORDERS, FORMS], ids=["order", "web-form"])
def test_a_repeat_answers_the_first_result_and_changes_nothing(api, tree, path):
    payload = fixture("order" if path == ORDERS else "web_form", lead_partner="blogger")
    first = api.post(path, payload, format="json")
    before = state()

    again = api.post(path, {**payload, "contact": {"email": "changed@example.com"}}, format="json")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    assert state() == before


@pytest.mark.parametrize(
    ("path", "changes"),
    [
        (ORDERS, {"items": []}),
        (ORDERS, {"sale_partner": "sleepy"}),
        (FORMS, {"contact": {"email": "not-an-email"}}),
        (FORMS, {"lead_partner": "nobody"}),
    ],
    ids=["order-no-items", "order-inactive-partner", "form-bad-email", "form-unknown-partner"],
)
def test_a_repeat_that_no_longer_validates_answers_the_first_result(api, tree, path, changes):
    payload = fixture("order" if path == ORDERS else "web_form", lead_partner="blogger")
    first = api.post(path, payload, format="json")
    PartnerFactory(code="sleepy", status="inactive")
    before = state()

    again = api.post(path, {**payload, **changes}, format="json")

    assert again.status_code == 200, again.data
    assert again.json() == {**first.json(), "duplicate": True}
    assert state() == before


def test_a_repeat_is_found_by_the_insert_of_its_event(api, tree, django_assert_num_queries):
    """A repeat that validates is answered from the event's INSERT … ON CONFLICT: the key,
    the partner named, BEGIN/SAVEPOINT, the insert that finds the event, the first result."""
    payload = fixture("order", sale_partner="salesrep")
    first = api.post(ORDERS, payload, format="json")

    with django_assert_num_queries(6):
        again = api.post(ORDERS, payload, format="json")

    assert again.json() == {**first.json(), "duplicate": True}
    assert (Event.objects.count(), Order.objects.count(), Commission.objects.count()) == (1, 1, 3)


def test_event_ids_are_unique_per_kind_not_across_kinds(api, tree):
    api.post(FORMS, fixture("web_form", event_id="same-1"), format="json")
    response = api.post(ORDERS, fixture("order", event_id="same-1"), format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"contact": {"email": "not-an-email"}}, "contact"),
        ({"currency": "EUR"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"items": []}, "items"),
        ({"items": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]}, "items"),
        ({"items": [{"sku": "A", "quantity": 1.5, "unit_price": "1.00"}]}, "items"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]}, "items"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "1.001"}]}, "items"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "NaN"}]}, "items"),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "1"}] * 1001}, "items"),
        ({"discount": "-5"}, "discount"),
        ({"shipping": "1.005"}, "shipping"),
        ({"tax": "abc"}, "tax"),
        ({"occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"sale_partner": "nobody"}, "sale_partner"),
        ({"lead_partner": "sleepy"}, "lead_partner"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "has space"}, "event_id"),
        ({"ip": "999.1.1.1"}, "ip"),
    ],
    ids=[
        "bad-email",
        "other-currency",
        "short-currency",
        "no-items",
        "quantity-0",
        "quantity-fraction",
        "negative-price",
        "price-three-decimals",
        "price-nan",
        "1001-items",
        "negative-discount",
        "shipping-three-decimals",
        "tax-not-a-number",
        "far-future",
        "bad-date",
        "unknown-partner",
        "inactive-partner",
        "empty-event-id",
        "event-id-space",
        "bad-ip",
    ],
)
def test_bad_orders_are_refused_naming_the_field_and_write_nothing(api, tree, changes, field):
    PartnerFactory(code="sleepy", status="inactive")
    before = state()

    response = api.post(ORDERS, fixture("order", **changes), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert state() == before


def test_a_refund_claws_back_each_line_proportionally(api, tree):
    api.post(ORDERS, fixture("order", sale_partner="salesrep"), format="json")

    # 110 of the 1,100 paid: each line gives back a tenth
    response = api.post(
        REFUNDS,
        {"event_id": "refund-1", "order_id": "order-1001", "amount": "110.00"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {
        "event_id": "refund-1",
        "order_id": "order-1001",
        "refunded": "110.00",
        "clawbacks": [
            {"partner": "salesrep", "level": 1, "kind": "sale", "amount": "-10.50"},
            {"partner": "mother", "level": 2, "kind": "sale", "amount": "-5.00"},
            {"partner": "grandma", "level": 3, "kind": "sale", "amount": "-1.00"},
        ],
        "duplicate": False,
    }


def test_the_refund_that_completes_the_order_takes_back_exactly_what_is_left(api, tree):
    api.post(ORDERS, fixture("order", sale_partner="salesrep"), format="json")
    for n, amount in enumerate(["333.33", "333.33"]):
        api.post(
            REFUNDS,
            {"event_id": f"r{n}", "order_id": "order-1001", "amount": amount},
            format="json",
        )

    last = api.post(REFUNDS, {"event_id": "r-last", "order_id": "order-1001"}, format="json")

    assert last.json()["refunded"] == "433.34"
    nets = {
        p.code: sum(c.amount for c in Commission.objects.filter(partner=p))
        for p in (tree["rep"], tree["mid"], tree["top"])
    }
    assert nets == {"salesrep": D("0.00"), "mother": D("0.00"), "grandma": D("0.00")}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"order_id": "no-such-order"}, 404, "order_id"),
        ({"order_id": "order-1001", "amount": "1100.01"}, 400, "amount"),
        ({"order_id": "order-1001", "amount": "0"}, 400, "amount"),
        ({"order_id": "order-1001", "amount": "-1"}, 400, "amount"),
    ],
    ids=["unknown-order", "over-refund", "zero", "negative"],
)
def test_refused_refunds_write_nothing(api, tree, body, status, field):
    api.post(ORDERS, fixture("order", sale_partner="salesrep"), format="json")
    before = state()

    response = api.post(REFUNDS, {"event_id": "refund-x", **body}, format="json")

    assert response.status_code == status
    assert field in response.json()
    assert state() == before


def test_nothing_left_to_refund_is_refused(api, tree):
    api.post(ORDERS, fixture("order", sale_partner="salesrep"), format="json")
    api.post(REFUNDS, {"event_id": "cancel", "order_id": "order-1001"}, format="json")
    before = state()

    response = api.post(REFUNDS, {"event_id": "again", "order_id": "order-1001"}, format="json")

    assert response.status_code == 400
    assert state() == before
