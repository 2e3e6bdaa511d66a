"""The self-referral guard (SPEC §9, issue 8): a partner buying with their own email (their
partner email or their login's) earns nothing on that kind of commission, nor does their
chain; the order is still recorded and its trace names the guard. Turned off, it pays."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from commissions.attribution import is_self_referral
from commissions.models import Commission, Order
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory
from tests.integration.test_events_api import ORDERS, fixture, program  # noqa: F401  (fixture)

D = Decimal


@pytest.fixture
def chain(program):  # noqa: F811  (the fixture imported above)
    top = PartnerFactory(code="grandma", email="grandma@partners.example")
    mid = PartnerFactory(code="mother", parent=top, email="mother@partners.example")
    rep = PartnerFactory(code="salesrep", parent=mid, email="Rep@Partners.example")
    blogger = PartnerFactory(code="blogger", email="blogger@partners.example")
    return {"top": top, "mid": mid, "rep": rep, "blogger": blogger}


@pytest.mark.parametrize(
    ("buyer", "emails", "expected"),
    [
        ("rep@partners.example", ["rep@partners.example"], True),
        ("  REP@partners.EXAMPLE ", ["Rep@Partners.example"], True),
        ("rep@partners.example", ["other@x.example", "rep@partners.example"], True),
        ("buyer@example.com", ["rep@partners.example"], False),
        ("", ["", "rep@partners.example"], False),
        ("rep@partners.example", [], False),
    ],
    ids=["same", "case-and-spaces", "login-email", "other-buyer", "empty-buyer", "no-emails"],
)
def test_is_self_referral(buyer, emails, expected):
    assert is_self_referral(buyer, emails) is expected


def test_a_partner_buying_with_their_own_email_earns_nothing_and_the_trace_says_why(api, chain):
    payload = fixture(
        "order",
        contact={"email": "REP@partners.example"},
        sale_partner="salesrep",
        lead_partner="blogger",
    )
    response = api.post(ORDERS, payload, format="json")

    assert response.status_code == 201, response.data
    body = response.json()
    assert body["sale_partner"] == "salesrep"
    assert body["attribution"] == {"source": "explicit", "rule": None, "guard": "self_referral"}
    # The sale pays nobody up the rep's chain; the lead (another partner) is still paid.
    assert [(c["partner"], c["kind"]) for c in body["commissions"]] == [("blogger", "lead")]
    order = Order.objects.get(order_id="order-1001")
    assert order.sale_partner_id == chain["rep"].pk
    assert order.sale_trace["guard"] == "self_referral"
    assert "guard" not in order.lead_trace
    assert not Commission.objects.filter(kind="sale").exists()


def test_the_login_email_counts_as_the_partners_own(api, chain):
    user = get_user_model().objects.create_user("rep-login", email="rep.private@mail.example")
    chain["rep"].user = user
    chain["rep"].save(update_fields=["user"])
    payload = fixture(
        "order", contact={"email": "rep.private@mail.example"}, sale_partner="salesrep"
    )

    body = api.post(ORDERS, payload, format="json").json()

    assert body["commissions"] == []
    assert body["attribution"]["guard"] == "self_referral"


def test_the_lead_kind_is_guarded_on_its_own(api, chain):
    payload = fixture(
        "order",
        contact={"email": "blogger@partners.example"},
        sale_partner="salesrep",
        lead_partner="blogger",
    )
    body = api.post(ORDERS, payload, format="json").json()

    assert {c["kind"] for c in body["commissions"]} == {"sale"}
    assert Order.objects.get().lead_trace["guard"] == "self_referral"
    assert "guard" not in body["attribution"]  # the answer's attribution is the sale's


def test_with_the_guard_off_the_partners_own_purchase_pays(api, chain):
    defaults_update(data={"self_referral_guard": False}, acting_user=None)
    payload = fixture("order", contact={"email": "rep@partners.example"}, sale_partner="salesrep")

    body = api.post(ORDERS, payload, format="json").json()

    assert body["attribution"] == {"source": "explicit", "rule": None}
    assert [(c["partner"], c["amount"]) for c in body["commissions"]] == [
        ("salesrep", "105.00"),
        ("mother", "50.00"),
        ("grandma", "10.00"),
    ]
    assert Commission.objects.filter(kind="sale").count() == 3


def test_another_buyer_is_not_guarded(api, chain):
    body = api.post(ORDERS, fixture("order", sale_partner="salesrep"), format="json").json()

    assert "guard" not in body["attribution"]
    assert sum(D(c["amount"]) for c in body["commissions"]) == D("165.00")
