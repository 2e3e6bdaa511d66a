"""The what-if replay over HTTP against a live server (SPEC §13): orders attributed to the
last partner, replayed with `first`, move exactly their commissions to the first partner,
and the defaults (and every table) are as they were afterwards."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from partners.models import ReferralDefaults
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from partners.tokens import TokenClick, encode_token
from tests.factories import PartnerFactory, ProgramFactory
from tests.tables import table_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
T0 = datetime(2026, 10, 5, 8, tzinfo=UTC)


def test_replaying_last_as_first_moves_the_commissions_to_the_first_partner(live_server):
    defaults_update(
        data={"levels": 2, "payout_on_sale": True, "payout_percent": True,
              "partner_selection": "last"},
        acting_user=None,
    )  # fmt: skip
    ProgramFactory(
        priority=1, levels=2, payout_on_sale=True, payout_percent=True,
        rates={1: {"sale_percent": D("10")}, 2: {"sale_percent": D("2.5")}},
    )  # fmt: skip
    boss = PartnerFactory(code="boss")
    first = PartnerFactory(code="first", parent=boss)
    last = PartnerFactory(code="last")
    _, key = api_key_create(name="shop")
    shop = requests.Session()
    shop.headers["Authorization"] = f"Bearer {key}"
    prices = ["80.00", "123.45", "19.99"]
    for n, price in enumerate(prices):
        at = T0 + timedelta(days=n)
        clicks = [
            TokenClick(click_id=uuid.uuid4(), partner_id=first.pk, at=at - timedelta(hours=5)),
            TokenClick(click_id=uuid.uuid4(), partner_id=last.pk, at=at - timedelta(hours=1)),
        ]
        body = {
            "event_id": f"o-{n}", "occurred_at": at.isoformat(),
            "contact": {"email": f"buyer{n}@example.com"}, "tracking_token": encode_token(clicks),
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
        }  # fmt: skip
        answer = shop.post(f"{live_server.url}/api/v1/events/orders/", json=body, timeout=60)
        assert answer.status_code == 201, answer.text
        assert answer.json()["sale_partner"] == "last"
    before = table_snapshot()

    response = shop.post(
        f"{live_server.url}/api/v1/simulations/?orders=changed",
        json={
            "start": "2026-10-01",
            "end": "2026-10-31",
            "defaults": {"partner_selection": "first"},
        },
        timeout=60,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    # 10 % of each order, line by line, half-up: 8.00 + 12.35 + 2.00 = 22.35. The parent
    # of first earns 2.5 %: 2.00 + 3.09 + 0.50 = 5.59.
    moved = {p["partner"]: (p["now"], p["proposed"], p["change"]) for p in body["partners"]}
    assert moved == {
        "last": ("22.35", "0.00", "-22.35"),
        "first": ("0.00", "22.35", "22.35"),
        "boss": ("0.00", "5.59", "5.59"),
    }
    assert (body["orders"], body["orders_changing_partner"]) == (3, 3)
    assert (body["total_now"], body["total_proposed"], body["change"]) == ("22.35", "27.94", "5.59")
    assert {o["proposed"]["sale_partner"] for o in body["orders_changed"]} == {"first"}
    assert ReferralDefaults.objects.get().partner_selection == "last"
    assert table_snapshot() == before
