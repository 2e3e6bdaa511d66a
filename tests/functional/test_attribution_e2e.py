"""End to end over HTTP: clicks on /go/, then web form and order events (SPEC §4)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commissions.models import Referral
from partners.services.defaults import defaults_update
from partners.tokens import TokenClick, encode_token, new_click_id
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"
FORMS, ORDERS = "/api/v1/events/web-forms/", "/api/v1/events/orders/"


@pytest.fixture(autouse=True)
def shop(db):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10")}})
    return {"alice": PartnerFactory(code="alice"), "bobby": PartnerFactory(code="bobby")}


def click(client, code, ip="127.0.0.1") -> str:
    response = client.get(f"/go/{code}/", headers={"user-agent": BROWSER}, REMOTE_ADDR=ip)
    return response.cookies["rp_ref"].value


def order(api, n, **fields):
    payload = {
        "event_id": f"order-{n}",
        "contact": {"email": f"buyer{n}@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        **fields,
    }
    response = api.post(ORDERS, payload, format="json")
    assert response.status_code == 201, response.data
    return response.json()


@pytest.mark.parametrize(("rule", "credited"), [("last", "bobby"), ("first", "alice")])
def test_click_a_then_b_then_web_form_and_order(client, api, rule, credited):
    defaults_update(data={"partner_selection": rule}, acting_user=None)
    click(client, "alice")
    token = click(client, "bobby")
    contact = {"email": "ada@example.com"}

    form = api.post(
        FORMS, {"event_id": "f1", "contact": contact, "tracking_token": token}, format="json"
    ).json()
    sale = order(api, 1, contact=contact, tracking_token=token)

    assert form["lead_partner"] == credited
    assert form["attribution"] == {"source": "cookie", "rule": rule}
    assert sale["sale_partner"] == credited
    assert sale["attribution"] == {"source": "cookie", "rule": rule}
    assert [(c["partner"], c["amount"]) for c in sale["commissions"]] == [(credited, "10.00")]
    assert set(Referral.objects.values_list("partner__code", "source")) == {
        ("alice", "cookie"),
        ("bobby", "cookie"),
    }


def test_history_and_cookies_credits_the_history_partner_without_a_token(client, api):
    defaults_update(data={"tracking_method": "history_and_cookies"}, acting_user=None)
    token = click(client, "alice")
    contact = {"email": "ada@example.com"}
    api.post(FORMS, {"event_id": "f1", "contact": contact, "tracking_token": token}, format="json")

    sale = order(api, 1, contact=contact)

    assert (sale["sale_partner"], sale["attribution"]["source"]) == ("alice", "history")


def test_cookie_method_ignores_history_for_the_sale(client, api):
    token = click(client, "alice")
    contact = {"email": "ada@example.com"}
    api.post(FORMS, {"event_id": "f1", "contact": contact, "tracking_token": token}, format="json")

    sale = order(api, 1, contact=contact)

    assert sale["sale_partner"] is None
    assert sale["lead_partner"] == "alice"  # the contact's lead partner, fixed by the form


def test_cookies_only_credits_no_one_without_a_token(client, api):
    defaults_update(
        data={"tracking_method": "cookies_only", "use_ip_address": True}, acting_user=None
    )
    token = click(client, "alice", ip="198.51.100.7")
    contact = {"email": "ada@example.com"}
    api.post(
        FORMS,
        {"event_id": "f1", "contact": {"email": "x@example.com"}, "tracking_token": token},
        format="json",
    )

    sale = order(api, 1, contact=contact, ip="198.51.100.7")

    assert (sale["sale_partner"], sale["lead_partner"], sale["commissions"]) == (None, None, [])


@pytest.mark.parametrize(("method", "credited"), [("cookie", "alice"), ("cookies_only", None)])
def test_an_order_from_the_clicks_ip_credits_the_clicker(client, api, method, credited):
    defaults_update(data={"tracking_method": method, "use_ip_address": True}, acting_user=None)
    click(client, "alice", ip="198.51.100.7")

    sale = order(api, 1, ip="198.51.100.7")

    assert sale["sale_partner"] == credited
    if credited:
        assert sale["attribution"] == {"source": "ip", "rule": "last"}
        assert Referral.objects.get().source == "ip"


def test_ip_address_off_credits_no_one(client, api):
    click(client, "alice", ip="198.51.100.7")
    assert order(api, 1, ip="198.51.100.7")["sale_partner"] is None


@pytest.mark.parametrize(("days_ago", "credited"), [(6, "alice"), (8, None)])
def test_a_click_older_than_the_partners_cookie_days_does_not_count(api, shop, days_ago, credited):
    shop["alice"].cookie_days = 7
    shop["alice"].save()
    clicked = timezone.now() - timedelta(days=days_ago)
    token = encode_token(
        [TokenClick(click_id=new_click_id(clicked), partner_id=shop["alice"].pk, at=clicked)]
    )

    assert order(api, 1, tracking_token=token)["sale_partner"] == credited


def test_an_inactive_partners_click_does_not_count(client, api, shop):
    token = click(client, "alice")
    shop["alice"].status = "inactive"
    shop["alice"].save()
    assert order(api, 1, tracking_token=token)["sale_partner"] is None


def test_a_renewal_whose_token_names_another_partner_is_credited_to_the_first_orders(client, api):
    """SPEC §10: the subscription's first order came through alice's link; its renewal
    carries a later click of bobby's and names him: alice is credited all the same."""
    contact = {"email": "ada@example.com"}
    first = order(
        api, 1, contact=contact, tracking_token=click(client, "alice"),
        subscription={"id": "sub-9", "cycle": 1},
    )  # fmt: skip
    token = click(client, "bobby")

    renewal = order(
        api, 2, contact=contact, tracking_token=token, sale_partner="bobby",
        subscription={"id": "sub-9", "cycle": 2},
    )  # fmt: skip

    assert first["attribution"] == {"source": "cookie", "rule": "last"}
    assert renewal["sale_partner"] == "alice"
    assert renewal["attribution"] == {"source": "subscription", "rule": None}
    assert [(c["partner"], c["amount"]) for c in renewal["commissions"]] == [("alice", "10.00")]
