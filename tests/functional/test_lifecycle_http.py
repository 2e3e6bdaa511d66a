"""The commission lifecycle and coupons over HTTP against a live server (issue 17, SPEC §11).

The clock stands at FIXED_NOW (time-machine, ticking): the live server's thread reads the
same clock, so "40 days old" and "today" mean the same to the test and to the server.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.core import mail

from commissions.models import Commission, Notification, Payment, Referral
from partners.models import Coupon
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from partners.tokens import TokenClick, encode_token, new_click_id
from tests.conftest import FIXED_NOW
from tests.factories import PartnerFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Shop:
    """The merchant's systems: JSON over HTTP with an API key."""

    def __init__(self, url: str, key: str):
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.session.post(f"{self.url}/api/v1/{path}", json=body or {}, timeout=60)

    def get(self, path: str, **query) -> dict:
        response = self.session.get(f"{self.url}/api/v1/{path}", params=query, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def order(self, event_id: str, price: str, *, days_ago: int = 0, **extra) -> dict:
        response = self.post(
            "events/orders/",
            {
                "event_id": event_id,
                "occurred_at": (FIXED_NOW - timedelta(days=days_ago)).isoformat(),
                "contact": {"email": f"{event_id}@example.com"},
                "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
                **extra,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    def pay_all(self) -> requests.Response:
        """A payout of every balance up to today."""
        end = FIXED_NOW.date().isoformat()
        body = {"start": "2026-01-01", "end": end, "method": "balance_plus_earned"}
        return self.post("payouts/", body)

    def ledger(self, code: str) -> dict:
        return self.get(f"partners/{code}/ledger/")


def figures(ledger: dict) -> dict:
    names = ("earned", "clawbacks", "rejections", "payments", "ending_balance")
    return {name: ledger[name] for name in (*names, "pending", "payable")}


@pytest.fixture
def shop(live_server, fixed_now):
    # 10 % of each sale to the seller: an order of 100.00 pays 10.00, one of 50.00 pays 5.00.
    defaults_update(data={"payout_percent": True, "hold_days": 30}, acting_user=None)
    ProgramFactory(priority=1, payout_percent=True, rates={1: {"sale_percent": Decimal("10")}})
    PartnerFactory(code="seller", email="seller@example.com")
    _, key = api_key_create(name="shop")
    return Shop(live_server.url, key)


def test_hold_days_split_pending_from_payable_and_a_payout_pays_only_the_payable(shop):
    old = shop.order("old", "100.00", days_ago=40, sale_partner="seller")
    new = shop.order("new", "50.00", sale_partner="seller")

    lines = {c["order_id"]: c for c in shop.get("commissions/", partner="seller")["results"]}
    assert (lines["old"]["status"], lines["old"]["amount"]) == ("payable", "10.00")
    assert (lines["new"]["status"], lines["new"]["amount"]) == ("pending", "5.00")
    assert lines["new"]["payable_at"].startswith(
        (FIXED_NOW + timedelta(days=30)).date().isoformat()
    )
    assert [c["id"] for c in old["commissions"]] == [lines["old"]["id"]]
    assert figures(shop.ledger("seller")) == {
        "earned": "15.00",
        "clawbacks": "0.00",
        "rejections": "0.00",
        "payments": "0.00",
        "ending_balance": "15.00",
        "pending": "5.00",
        "payable": "10.00",
    }

    batch = shop.pay_all()

    assert batch.status_code == 201, batch.text
    paid = [(p["partner"], p["amount"], p["currency"]) for p in batch.json()["payments"]]
    assert paid == [("seller", "10.00", "USD")]
    after = figures(shop.ledger("seller"))
    assert (after["payments"], after["pending"], after["payable"]) == ("10.00", "5.00", "0.00")
    assert shop.get(f"commissions/{lines['old']['id']}/")["status"] == "paid"

    # Approving the pending one early makes it payable: the next payout pays it.
    approved = shop.post(f"commissions/{new['commissions'][0]['id']}/approve/")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "payable"
    assert figures(shop.ledger("seller"))["payable"] == "5.00"
    again = shop.post(f"commissions/{new['commissions'][0]['id']}/approve/")
    assert again.status_code == 400
    assert "payable" in again.json()["status"][0]
    second = shop.pay_all()
    paid = [(p["partner"], p["amount"], p["currency"]) for p in second.json()["payments"]]
    assert paid == [("seller", "5.00", "USD")]


def test_rejecting_takes_a_commission_out_of_every_balance_with_its_reason(shop, settings):
    shop.order("old", "100.00", days_ago=40, sale_partner="seller")
    pending = shop.order("new", "50.00", sale_partner="seller")
    line_id = pending["commissions"][0]["id"]

    refused = shop.post(f"commissions/{line_id}/reject/", {"reason": "  "})
    assert refused.status_code == 400
    assert not Commission.objects.filter(entry="rejection").exists()

    rejected = shop.post(f"commissions/{line_id}/reject/", {"reason": "Fraudulent order"})

    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == (
        "rejected",
        "Fraudulent order",
    )
    assert figures(shop.ledger("seller")) == {
        "earned": "15.00",
        "clawbacks": "0.00",
        "rejections": "5.00",
        "payments": "0.00",
        "ending_balance": "10.00",
        "pending": "0.00",
        "payable": "10.00",
    }
    [entry] = [e for e in shop.ledger("seller")["entries"] if e["entry"] == "rejection"]
    assert (entry["amount"], entry["reason"]) == ("-5.00", "Fraudulent order")
    [rejection] = shop.get("commissions/", partner="seller", entry="rejection")["results"]
    assert (rejection["amount"], rejection["rejection_of"]) == ("-5.00", line_id)
    # The partner is told, with the reason.
    [note] = Notification.objects.filter(kind="rejection")
    assert (note.status, note.commission_id) == ("sent", line_id)
    [email] = [m for m in mail.outbox if "rejected" in m.subject]
    assert "Fraudulent order" in email.body and email.to == ["seller@example.com"]
    # A rejected line has nothing left to claw back, and cannot be rejected twice.
    refund = shop.post("events/refunds/", {"event_id": "r-new", "order_id": "new"})
    assert refund.status_code == 201 and refund.json()["clawbacks"] == []
    twice = shop.post(f"commissions/{line_id}/reject/", {"reason": "Again"})
    assert twice.status_code == 400
    assert Commission.objects.filter(entry="rejection").count() == 1
    # A payout pays the payable 10.00 and nothing of the rejected line.
    batch = shop.pay_all()
    paid = [(p["partner"], p["amount"], p["currency"]) for p in batch.json()["payments"]]
    assert paid == [("seller", "10.00", "USD")]
    assert figures(shop.ledger("seller"))["ending_balance"] == "0.00"


def test_a_refund_during_the_hold_nets_to_zero_and_nothing_is_paid(shop):
    shop.order("new", "50.00", sale_partner="seller")

    refund = shop.post("events/refunds/", {"event_id": "r1", "order_id": "new"})

    assert refund.status_code == 201
    assert refund.json()["clawbacks"] == [
        {"partner": "seller", "level": 1, "kind": "sale", "amount": "-5.00"}
    ]
    assert figures(shop.ledger("seller")) == {
        "earned": "5.00",
        "clawbacks": "5.00",
        "rejections": "0.00",
        "payments": "0.00",
        "ending_balance": "0.00",
        "pending": "0.00",
        "payable": "0.00",
    }
    batch = shop.pay_all()
    assert batch.json()["payments"] == []
    assert not Payment.objects.exists()


def test_a_session_without_the_change_right_cannot_approve_or_reject(shop, client):
    pending = shop.order("new", "50.00", sale_partner="seller")
    client.force_login(UserFactory(is_staff=True))
    line_id = pending["commissions"][0]["id"]

    approve = client.post(f"/api/v1/commissions/{line_id}/approve/")
    reject = client.post(f"/api/v1/commissions/{line_id}/reject/", {"reason": "no"})

    assert (approve.status_code, reject.status_code) == (403, 403)
    assert shop.get(f"commissions/{line_id}/")["status"] == "pending"
    assert not Commission.objects.filter(entry="rejection").exists()


# --- Coupons -------------------------------------------------------------------------------


@pytest.fixture
def coupons(shop):
    PartnerFactory(code="podcaster")
    PartnerFactory(code="clicker")
    made = shop.post("coupons/", {"code": "PODCAST10", "partner": "podcaster", "active": True})
    assert made.status_code == 201, made.text
    return shop


def token_of(code: str) -> str:
    from partners.models import Partner

    partner = Partner.objects.get(code=code)
    at = FIXED_NOW - timedelta(hours=1)
    return encode_token([TokenClick(click_id=new_click_id(at), partner_id=partner.pk, at=at)])


def test_a_coupon_beats_the_cookie_whatever_its_case(coupons):
    answer = coupons.order("o1", "100.00", coupon="podcast10", tracking_token=token_of("clicker"))

    assert answer["sale_partner"] == "podcaster"
    assert answer["attribution"] == {"source": "coupon", "rule": None}
    [line] = coupons.get("commissions/", order="o1")["results"]
    assert line["trace"]["attribution"]["ref"] == "PODCAST10"
    history = Referral.objects.filter(contact__email="o1@example.com").order_by("source")
    assert [(r.source, r.partner.code) for r in history] == [
        ("cookie", "clicker"),
        ("coupon", "podcaster"),
    ]


@pytest.mark.parametrize(
    ("coupon", "why"),
    [
        ("NOSUCH", "unknown coupon"),
        ("SLEEPY", "inactive coupon"),
        ("GONE", "the coupon's partner is inactive"),
    ],
    ids=["unknown", "inactive-coupon", "inactive-partner"],
)
def test_a_coupon_that_cannot_credit_falls_back_to_the_cookie_and_the_trace_says_why(
    coupons, coupon, why
):
    Coupon.objects.create(code="SLEEPY", partner=PartnerFactory(code="sleepy"), active=False)
    Coupon.objects.create(code="GONE", partner=PartnerFactory(code="gone", status="inactive"))

    answer = coupons.order("o1", "100.00", coupon=coupon, tracking_token=token_of("clicker"))

    assert answer["sale_partner"] == "clicker"
    assert answer["attribution"] == {"source": "cookie", "rule": "last"}
    [line] = coupons.get("commissions/", order="o1")["results"]
    assert line["trace"]["attribution"]["coupon"] == {"code": coupon, "ignored": why}
    assert not Referral.objects.filter(source="coupon").exists()


def test_coupon_codes_are_unique_whatever_the_case(coupons):
    taken = coupons.post("coupons/", {"code": "Podcast10", "partner": "clicker"})

    assert taken.status_code == 400
    assert "already exists" in taken.json()["code"][0]
    assert Coupon.objects.count() == 1
    listed = coupons.get("coupons/", partner="podcaster")["results"]
    assert listed == [
        {"id": listed[0]["id"], "code": "PODCAST10", "partner": "podcaster", "active": True}
    ]
