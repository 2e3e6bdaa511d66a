"""The examples of docs/integration.md work as printed (SPEC §9)."""

import json
import re
from decimal import Decimal

import pytest

from partners.models import Coupon
from tests.factories import PartnerFactory, ProgramFactory
from tests.webhook_receiver import DOCS

pytestmark = pytest.mark.django_db


def curl_examples() -> list[tuple[str, dict]]:
    """(path, JSON body) of every `curl ... --data '...'` example, in the order printed."""
    found = re.findall(
        r"curl -sS https://partners\.shop\.example(/api/v1/[a-z/-]+) \\\n.*?--data '([^']+)'",
        DOCS.read_text(),
        flags=re.DOTALL,
    )
    return [(path, json.loads(body)) for path, body in found]


def test_the_curl_examples_are_accepted_and_a_repeat_is_answered_as_a_duplicate(api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("5.00")}})
    PartnerFactory(code="maria-lopez")
    Coupon.objects.create(code="PODCAST10", partner=PartnerFactory(code="podcaster"))
    examples = curl_examples()
    assert [path for path, _ in examples] == [
        "/api/v1/events/orders/",
        "/api/v1/events/refunds/",
        "/api/v1/events/payments/",  # a customer's payment (issue 16)
        "/api/v1/events/orders/",  # with a coupon (issue 17)
    ]

    for path, body in examples:
        first = api.post(path, body, format="json")
        again = api.post(path, body, format="json")

        assert first.status_code == 201, first.data
        assert again.status_code == 200
        assert again.json() == {**first.json(), "duplicate": True}
    assert examples[1][1]["order_id"] == examples[0][1]["event_id"]
    assert examples[2][1]["order_id"] == examples[0][1]["event_id"]
    coupon_order = api.get("/api/v1/commissions/", {"order": examples[3][1]["event_id"]}).json()
    assert [c["partner"] for c in coupon_order["results"]] == ["podcaster"]
