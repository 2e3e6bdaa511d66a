"""Subscriptions (SPEC §10, issue 16 item 5): an order's `subscription: {id, cycle}`; a
program's `renewal_cycles` and `renewal_rates`; a renewal credited to its first order's
partners (attribution source `subscription`), whatever it names or carries; a renewal past
the limit recorded with no commission and a trace that says why; the same rows over the API
and through the importer."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from commissions.explain import explain_attribution
from commissions.models import Commission, Contact, Event, Order, Referral
from partners.models import RenewalRate
from partners.services.defaults import defaults_update
from partners.tokens import TokenClick, encode_token, new_click_id
from tests.factories import PartnerFactory, ProgramFactory
from tests.integration.test_import_events import run

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS = "/api/v1/events/orders/"
START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def shop(db):
    """MONTHLY pays sales, 2 levels, amount and percent: level 1 2.00 + 20 %, level 2
    0 + 10 %; renewals (at most 2) level 1 0 + 10 %, level 2 0 + 5 %. `ann` (parent `pam`)
    sells the subscription; `bob` is another partner of the same program."""
    defaults_update(
        data={
            "levels": 2,
            "payout_on_lead": False,
            "payout_on_sale": True,
            "payout_amount": True,
            "payout_percent": True,
            "pay_if_unused": False,
        },
        acting_user=None,
    )
    monthly = ProgramFactory(
        name="Monthly",
        priority=1,
        levels=2,
        payout_on_sale=True,
        payout_amount=True,
        payout_percent=True,
        renewal_cycles=2,
        rates={1: {"sale_amount": D("2"), "sale_percent": D("20")}, 2: {"sale_percent": D("10")}},
    )
    renewal_rates(monthly, {1: "10", 2: "5"})
    pam = PartnerFactory(code="pam", program=monthly)
    ann = PartnerFactory(code="ann", parent=pam, program=monthly)
    bob = PartnerFactory(code="bob", program=monthly)
    return {"monthly": monthly, "ann": ann, "pam": pam, "bob": bob}


def renewal_rates(program, percents: dict[int, str]) -> None:
    RenewalRate.objects.bulk_create(
        RenewalRate(program=program, level=level, sale_percent=D(percents.get(level, "0")))
        for level in (1, 2, 3)
    )


def bob_token(at: datetime, partner) -> str:
    return encode_token([TokenClick(click_id=new_click_id(at), partner_id=partner.pk, at=at)])


def cycles(shop, count=4, subscription="sub-1") -> list[dict]:
    """A monthly subscription of 49.90: cycle 1 names `ann`; every renewal names `bob` and
    carries a click of his."""
    payloads = []
    for cycle in range(1, count + 1):
        at = START + timedelta(days=30 * (cycle - 1))
        payload = {
            "event_id": f"{subscription}-c{cycle}",
            "occurred_at": at.isoformat(),
            "contact": {"email": "subscriber@example.com"},
            "items": [{"sku": "MONTHLY", "quantity": 1, "unit_price": "49.90"}],
            "subscription": {"id": subscription, "cycle": cycle},
            "sale_partner": "ann" if cycle == 1 else "bob",
        }
        if cycle > 1:
            payload["tracking_token"] = bob_token(at - timedelta(hours=1), shop["bob"])
        payloads.append(payload)
    return payloads


def lines() -> list[tuple]:
    return sorted(
        (c.order.order_id, c.partner.code, c.level, c.amount, json.dumps(c.trace, sort_keys=True))
        for c in Commission.objects.select_related("order", "partner")
    )


def orders() -> list[tuple]:
    return sorted(
        (
            o.order_id,
            o.subscription_id,
            o.subscription_cycle,
            o.sale_partner and o.sale_partner.code,
            o.lead_partner and o.lead_partner.code,
            json.dumps(o.sale_trace, sort_keys=True),
            json.dumps(o.lead_trace, sort_keys=True),
        )
        for o in Order.objects.select_related("sale_partner", "lead_partner")
    )


def amounts() -> dict[str, list[tuple[str, int, Decimal]]]:
    found: dict = {}
    for c in Commission.objects.select_related("order", "partner").order_by("order_id", "level"):
        found.setdefault(c.order.order_id, []).append((c.partner.code, c.level, c.amount))
    return found


# Worked out by hand. Every cycle's base is 49.90 (one item, no discount).
# Cycle 1 (the first payment, `ann` named): the program's rates.
#   ann, level 1: 2.00 + 49.90 x 20 % = 2.00 + 9.98 = 11.98
#   pam, level 2:        49.90 x 10 % =               4.99
# Cycle 2 (renewal 1; names `bob` and carries his click): credited to ann all the same
# (the first order's sale partner, source `subscription`), at the renewal rates (amount 0):
#   ann, level 1: 49.90 x 10 % = 4.99
#   pam, level 2: 49.90 x  5 % = 2.495 -> 2.50 (half-up)
# Cycle 3 (renewal 2, the last the limit of 2 pays): the same, 4.99 and 2.50.
# Cycle 4 (renewal 3, past the limit): recorded, credited to ann, no commission; the order's
# sale trace says why.
EXPECTED = {
    "sub-1-c1": [("ann", 1, D("11.98")), ("pam", 2, D("4.99"))],
    "sub-1-c2": [("ann", 1, D("4.99")), ("pam", 2, D("2.50"))],
    "sub-1-c3": [("ann", 1, D("4.99")), ("pam", 2, D("2.50"))],
}


def test_a_subscriptions_cycles_1_to_4_with_a_limit_of_2_renewals(api, shop):
    answers = []
    for payload in cycles(shop):
        response = api.post(ORDERS, payload, format="json")
        assert response.status_code == 201, response.content
        answers.append(response.json())

    assert amounts() == EXPECTED
    assert [a["sale_partner"] for a in answers] == ["ann", "ann", "ann", "ann"]
    assert [a["attribution"]["source"] for a in answers] == [
        "explicit",
        "subscription",
        "subscription",
        "subscription",
    ]
    assert answers[3]["commissions"] == []
    renewal = Commission.objects.get(order__order_id="sub-1-c2", level=1)
    assert renewal.trace["attribution"] == {
        "source": "subscription",
        "rule": None,
        "ref": "sub-1-c1",
        "ref_at": START.isoformat(),
    }
    assert renewal.trace["rates"] == {
        "rate": "renewal level 1",
        "amount": "0.00",
        "percent": "10.0000",
    }
    last = Order.objects.get(order_id="sub-1-c4")
    assert (last.subscription_id, last.subscription_cycle) == ("sub-1", 4)
    assert last.sale_partner == shop["ann"]
    program = shop["monthly"].pk
    assert last.sale_trace["source"] == "subscription"
    assert explain_attribution(trace=last.sale_trace, at=last.occurred_at) == (
        "Credited because the order renews a subscription whose first order, sub-1-c1, "
        "credited them."
    )
    assert last.sale_trace["unpaid"] == {
        str(program): f"cycle 4 is renewal 3; program {program} pays 2 renewals"
    }
    # The renewal's click still goes to the contact's history (SPEC §4), crediting nobody.
    assert Referral.objects.filter(partner=shop["bob"], source="cookie").count() == 3


def test_the_staff_order_page_says_why_a_renewal_earned_nothing(api, shop, staff_client):
    for payload in cycles(shop):
        api.post(ORDERS, payload, format="json")

    page = staff_client.get(reverse("crm:order_detail", args=["sub-1-c4"])).content.decode()

    program = shop["monthly"].pk
    assert f"cycle 4 is renewal 3; program {program} pays 2 renewals" in page
    assert 'id="subscription"><span class="mono">sub-1</span>, cycle 4' in page


def test_the_import_writes_the_same_rows(api, shop, tmp_path):
    payloads = cycles(shop)
    for payload in payloads:
        assert api.post(ORDERS, payload, format="json").status_code == 201
    by_api = (lines(), orders())
    for model in (Commission, Order, Referral, Event, Contact):
        model.objects.all().delete()
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in payloads))

    out, err, error = run(path)

    assert error is None, err
    assert out.splitlines()[0] == "4 lines: 4 recorded, 0 already recorded, 0 failed."
    assert (lines(), orders()) == by_api
    assert amounts() == EXPECTED


@pytest.mark.django_db(transaction=True)
def test_the_import_in_overlapping_batches_finds_the_first_order_being_written(api, shop, tmp_path):
    """One line per batch, each written while the next is worked out: a renewal finds its
    first order in the batch being written (PostgreSQL), or stored."""
    payloads = cycles(shop)
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in payloads))

    _, err, error = run(path, "--batch-size", "1")

    assert error is None, err
    assert amounts() == EXPECTED
    assert set(Order.objects.values_list("sale_partner__code", flat=True)) == {"ann"}


def test_a_renewal_whose_first_order_never_came_is_attributed_as_a_new_order(api, shop):
    [_, second, *_] = cycles(shop)

    response = api.post(ORDERS, second, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["sale_partner"] == "bob"
    assert response.json()["attribution"]["source"] == "explicit"
    # bob has no parent: level 1 alone, at the renewal rate: 49.90 x 10 % = 4.99
    assert amounts() == {"sub-1-c2": [("bob", 1, D("4.99"))]}


def test_a_program_without_renewal_rates_pays_renewals_its_rates(api, shop):
    RenewalRate.objects.all().delete()

    for payload in cycles(shop, count=2):
        api.post(ORDERS, payload, format="json")

    # the renewal earns the normal rates: 11.98 and 4.99 as cycle 1
    assert amounts()["sub-1-c2"] == [("ann", 1, D("11.98")), ("pam", 2, D("4.99"))]
    trace = Commission.objects.get(order__order_id="sub-1-c2", level=1).trace
    assert trace["rates"]["rate"] == "level 1"


@pytest.mark.parametrize(
    ("renewal_cycles", "paid"),
    [(0, ["sub-1-c1"]), (None, ["sub-1-c1", "sub-1-c2", "sub-1-c3", "sub-1-c4"])],
    ids=["none", "every"],
)
def test_renewal_cycles_zero_pays_no_renewal_and_null_pays_every_one(
    api, shop, renewal_cycles, paid
):
    shop["monthly"].renewal_cycles = renewal_cycles
    shop["monthly"].save()

    for payload in cycles(shop):
        assert api.post(ORDERS, payload, format="json").status_code == 201

    assert sorted(amounts()) == paid
    assert Order.objects.count() == 4


@pytest.mark.parametrize(
    ("subscription", "errors"),
    [
        ({}, {"id": ["This field is required."], "cycle": ["This field is required."]}),
        ({"id": "", "cycle": 1}, {"id": ["This field may not be blank."]}),
        ({"id": "s", "cycle": 0}, {"cycle": ["Ensure this value is greater than or equal to 1."]}),
        ({"id": "s", "cycle": "x"}, {"cycle": ["A valid integer is required."]}),
        ({"id": "s" * 101, "cycle": 2},
         {"id": ["Ensure this field has no more than 100 characters."]}),
        ("sub-1", {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
    ],
    ids=["empty", "blank-id", "cycle-0", "cycle-text", "id-too-long", "not-an-object"],
)  # fmt: skip
def test_a_bad_subscription_is_refused_naming_the_field_and_writes_nothing(
    api, shop, subscription, errors, tmp_path
):
    payload = {**cycles(shop, count=1)[0], "subscription": subscription}

    response = api.post(ORDERS, payload, format="json")

    assert response.status_code == 400
    assert response.json() == {"subscription": errors}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(payload) + "\n")
    out, _, _ = run(path)
    assert out.splitlines()[0] == "1 lines: 0 recorded, 0 already recorded, 1 failed."
    for model in (Event, Order, Contact, Commission, Referral):
        assert not model.objects.exists(), model


def test_a_null_subscription_is_an_order_without_one(api, shop):
    payload = {**cycles(shop, count=1)[0], "subscription": None}

    assert api.post(ORDERS, payload, format="json").status_code == 201

    order = Order.objects.get()
    assert (order.subscription_id, order.subscription_cycle) == ("", None)


# --- The program resource --------------------------------------------------------------------


def test_renewal_terms_on_the_program_resource(api, shop):
    url = f"/api/v1/programs/{shop['monthly'].pk}/"

    body = api.get(url).json()
    assert body["renewal_cycles"] == 2
    assert [(r["level"], r["sale_percent"]) for r in body["renewal_rates"]] == [
        (1, "10.0000"),
        (2, "5.0000"),
        (3, "0.0000"),
    ]

    response = api.patch(
        url, {"renewal_cycles": None, "renewal_rates": [{"level": 1, "sale_percent": "7.5"}]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["renewal_cycles"] is None
    assert [(r["level"], r["sale_percent"]) for r in response.json()["renewal_rates"]] == [
        (1, "7.5000"),
        (2, "0.0000"),
        (3, "0.0000"),
    ]

    response = api.patch(url, {"renewal_rates": None}, format="json")
    assert response.json()["renewal_rates"] is None
    assert not RenewalRate.objects.exists()

    created = api.post(
        "/api/v1/programs/",
        {"name": "Yearly", "renewal_cycles": 0,
         "renewal_rates": [{"level": 2, "sale_amount": "1"}]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    assert created.json()["renewal_cycles"] == 0
    assert created.json()["renewal_rates"][1]["sale_amount"] == "1.00"
    plain = api.post("/api/v1/programs/", {"name": "Plain"}, format="json").json()
    assert (plain["renewal_cycles"], plain["renewal_rates"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"renewal_cycles": -1}, "renewal_cycles"),
        ({"renewal_cycles": "x"}, "renewal_cycles"),
        ({"renewal_rates": [{"level": 4}]}, "renewal_rates"),
        ({"renewal_rates": [{"level": 1}, {"level": 1}]}, "renewal_rates"),
        ({"renewal_rates": [{"level": 1, "sale_percent": "101"}]}, "renewal_rates"),
    ],
    ids=["negative", "text", "level-4", "level-twice", "percent-over-100"],
)
def test_bad_renewal_terms_are_refused_and_change_nothing(api, shop, body, field):
    url = f"/api/v1/programs/{shop['monthly'].pk}/"
    before = api.get(url).json()

    response = api.patch(url, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert api.get(url).json() == before


# --- The staff program page and the admin ----------------------------------------------------


def program_form(staff_client, program) -> dict:
    form = staff_client.get(reverse("staff:program_update", args=[program.pk])).context["form"]
    return {
        name: ("" if value is None else value)
        for name, value in ((name, form[name].value()) for name in form.fields)
        if value is not False
    }


def renewal_rows(program) -> list[tuple]:
    return list(program.renewal_rates.values_list("level", "sale_amount", "sale_percent"))


def test_the_staff_program_page_shows_and_edits_the_renewal_terms(staff_client, shop):
    program = shop["monthly"]
    detail = reverse("staff:program_detail", args=[program.pk])

    page = staff_client.get(detail).content.decode()
    assert "The first 2 renewals earn commission" in page
    data = program_form(staff_client, program)
    assert (data["renewal_cycles"], data["own_renewal_rates"]) == (2, True)
    assert data["renewal_1_sale_percent"] == "10"

    data.update(renewal_cycles="", renewal_2_sale_percent="7.5", renewal_3_sale_amount="1")
    response = staff_client.post(reverse("staff:program_update", args=[program.pk]), data)

    assert response.status_code == 302
    program.refresh_from_db()
    assert program.renewal_cycles is None
    assert renewal_rows(program) == [
        (1, D("0"), D("10")),
        (2, D("0"), D("7.5")),
        (3, D("1"), D("0")),
    ]
    assert (
        "Every renewal earns commission, at these rates"
        in staff_client.get(detail).content.decode()
    )

    data.pop("own_renewal_rates")
    data["renewal_cycles"] = "0"
    staff_client.post(reverse("staff:program_update", args=[program.pk]), data)
    program.refresh_from_db()
    assert (program.renewal_cycles, renewal_rows(program)) == (0, [])
    assert "No renewal earns commission." in staff_client.get(detail).content.decode()


def test_a_bad_renewal_limit_on_the_staff_page_changes_nothing(staff_client, shop):
    program = shop["monthly"]
    data = {**program_form(staff_client, program), "renewal_cycles": "-1"}

    response = staff_client.post(reverse("staff:program_update", args=[program.pk]), data)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["renewal_cycles"]
    program.refresh_from_db()
    assert program.renewal_cycles == 2
    assert len(renewal_rows(program)) == 3


def test_the_admin_edits_the_renewal_terms(staff_client, shop):
    from tests.integration.test_admin import admin_url, form_data

    program = shop["monthly"]
    url = admin_url("program", "change", program.pk)
    data = form_data(staff_client.get(url))
    assert data["renewal_rates-TOTAL_FORMS"] == 3
    data.update({"renewal_cycles": "5", "renewal_rates-0-sale_percent": "12"})
    data["renewal_rates-2-DELETE"] = "on"

    response = staff_client.post(url, data)

    assert response.status_code == 302
    program.refresh_from_db()
    assert program.renewal_cycles == 5
    # levels left out (3, deleted) pay 0
    assert renewal_rows(program) == [(1, D("0"), D("12")), (2, D("0"), D("5")), (3, D("0"), D("0"))]


def test_a_renewal_costs_two_queries_more_than_the_same_order_without_one(
    api, shop, django_assert_max_num_queries
):
    """The first order's read (`selectors.first_orders`), and the chains of its partners,
    which the event neither named nor clicked; whatever the number of cycles."""
    first, second, third, _ = cycles(shop)
    api.post(ORDERS, first, format="json")  # makes the contact
    with CaptureQueriesContext(connection) as queries:
        plain = {**third, "event_id": "plain", "subscription": None}
        assert api.post(ORDERS, plain, format="json").status_code == 201
    counted = len(queries)  # read now: the log moves on
    api.post(ORDERS, second, format="json")

    with django_assert_max_num_queries(counted + 2):
        assert api.post(ORDERS, third, format="json").status_code == 201
