"""A visitor's garbage cookie never costs the merchant an order (SPEC §4, issue 14).

Shops pass the visitor's `rp_ref` value on as it is. Whatever it holds (any length, any
characters, any encoding trick, not even text), the event is recorded (201) and attribution
goes on to the next source; only what is stored of the value is capped.
"""

import json
from decimal import Decimal

import pytest

from commissions.models import Commission, Event
from commissions.services.contacts import referral_add_manual
from partners.services.defaults import defaults_update
from partners.tokens import TokenClick, encode_token, new_click_id
from referral_program.parsers import TOKEN_KEPT_LENGTH
from tests.factories import PartnerFactory, ProgramFactory
from tests.integration.test_import_events import run

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/events/orders/"


@pytest.fixture
def shop(api):
    """History and cookies; ann@example.com was referred by `hist` (by phone); `click` has a
    click whose valid token the cases below break."""
    defaults_update(data={"tracking_method": "history_and_cookies"}, acting_user=None)
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    hist = PartnerFactory(code="hist")
    PartnerFactory(code="click")
    referral_add_manual(email="ann@example.com", partner=hist)
    return api


def valid_token() -> str:
    from django.utils import timezone

    from partners.models import Partner

    at = timezone.now()
    partner = Partner.objects.get(code="click")
    return encode_token([TokenClick(click_id=new_click_id(at), partner_id=partner.pk, at=at)])


TOKENS = [
    pytest.param(lambda: "t" * 10_000, id="10000-characters"),
    pytest.param(lambda: "x" * 5_000_00, id="500000-characters"),
    pytest.param(lambda: valid_token()[:-7], id="truncated"),
    pytest.param(lambda: valid_token() + "tampered", id="tampered"),
    pytest.param(lambda: "ab\x00cd", id="a-nul-character"),
    pytest.param(lambda: "ab\ud800cd", id="an-unpaired-surrogate"),
    pytest.param(lambda: "%00%ff%fe\\u0000<script>", id="escapes-and-markup"),
    pytest.param(lambda: "\u202e\ufeff" + "é" * 3000, id="unicode-tricks"),
    pytest.param(lambda: 12345, id="a-number"),
    pytest.param(lambda: {"c": [[1, 2, 3]]}, id="an-object"),
    pytest.param(lambda: ["a", "\x00"], id="a-list-with-a-nul"),
    pytest.param(lambda: None, id="null"),
]


def order(event_id: str, token) -> dict:
    return {
        "event_id": event_id,
        "contact": {"email": "ann@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        "tracking_token": token,
    }


@pytest.mark.parametrize("make", TOKENS)
def test_an_order_with_any_token_is_recorded_and_attributed_by_the_next_source(shop, make):
    body = json.dumps(order("o-1", make()))

    response = shop.generic("POST", ORDERS, body, content_type="application/json")

    assert response.status_code == 201, response.content[:500]
    answer = response.json()
    assert (answer["sale_partner"], answer["attribution"]["source"]) == ("hist", "history")
    assert [(c["partner"], c["amount"]) for c in answer["commissions"]] == [("hist", "10.00")]
    stored = Event.objects.get(event_id="o-1").payload["tracking_token"]
    assert isinstance(stored, str) and len(stored) <= TOKEN_KEPT_LENGTH
    assert "\x00" not in stored


def test_the_valid_token_the_cases_break_is_credited(shop):
    response = shop.post(ORDERS, order("o-1", valid_token()), format="json")

    assert response.status_code == 201
    assert response.json()["attribution"]["source"] == "cookie"


@pytest.mark.parametrize("make", TOKENS)
def test_an_imported_order_with_any_token_is_recorded_the_same_way(shop, tmp_path, make):
    path = tmp_path / "events.jsonl"
    path.write_text(
        json.dumps(order("o-1", make())) + "\n", encoding="utf-8", errors="surrogatepass"
    )

    _, _, error = run(path)

    assert error is None
    assert list(Commission.objects.values_list("partner__code", "amount")) == [
        ("hist", Decimal("10.00"))
    ]
    assert len(Event.objects.get(event_id="o-1").payload["tracking_token"]) <= TOKEN_KEPT_LENGTH
