"""GET /api/v1/commissions/ and the referral history resource (SPEC §4, §6)."""

from decimal import Decimal

import pytest

from commissions.models import Contact, Referral
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold(api):
    ProgramFactory(
        priority=1, rates={1: {"sale_amount": Decimal("7.00")}, 2: {"sale_amount": Decimal("2.00")}}
    )
    boss = PartnerFactory(code="bossy")
    PartnerFactory(code="jane", parent=boss)
    for n in (1, 2):
        api.post(
            "/api/v1/events/orders/",
            {
                "event_id": f"o{n}",
                "contact": {"email": "ada@example.com"},
                "sale_partner": "jane",
                "items": [{"sku": "A", "quantity": 1, "unit_price": "50.00"}],
            },
            format="json",
        )
    api.post("/api/v1/events/refunds/", {"event_id": "r1", "order_id": "o1"}, format="json")


def test_commissions_filter_by_partner_and_order(api, sold):
    rows = api.get("/api/v1/commissions/?partner=Jane&order=o1").json()["results"]
    assert [
        (r["partner"], r["order_id"], r["level"], r["kind"], r["entry"], r["amount"]) for r in rows
    ] == [
        ("jane", "o1", 1, "sale", "commission", "7.00"),
        ("jane", "o1", 1, "sale", "clawback", "-7.00"),
    ]
    assert rows[0]["trace"]["attribution"]["source"] == "explicit"
    assert rows[1]["trace"]["refund"] == "r1"
    assert len(api.get("/api/v1/commissions/").json()["results"]) == 6


def test_commissions_list_queries_do_not_grow(api, sold, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        api.get("/api/v1/commissions/")


def test_a_manual_referral_is_added_and_listed(api):
    jane = PartnerFactory(code="jane", cookie_days=30)
    response = api.post(
        "/api/v1/referrals/",
        {
            "contact": {"email": "Ada@Example.com"},
            "partner": "JANE",
            "occurred_at": "2026-11-01T10:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 201, response.data
    entry = Referral.objects.get()
    assert (entry.contact.email, entry.partner, entry.source) == ("ada@example.com", jane, "manual")
    assert entry.expires_at.isoformat() == "2026-12-01T10:00:00+00:00"
    assert entry.created_by == "api key shop"
    listed = api.get("/api/v1/referrals/?contact=ADA@example.com").json()["results"]
    assert [(r["partner"], r["source"], r["contact"]["email"]) for r in listed] == [
        ("jane", "manual", "ada@example.com")
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact": {"email": "not-an-email"}, "partner": "jane"}, "contact"),
        ({"contact": {"email": "ada@example.com"}, "partner": "nobody"}, "partner"),
        ({"contact": {"email": "ada@example.com"}, "partner": "sleepy"}, "partner"),
        ({"contact": {"email": "ada@example.com"}}, "partner"),
    ],
    ids=["bad-email", "unknown-partner", "inactive-partner", "no-partner"],
)
def test_bad_manual_referrals_name_the_field_and_write_nothing(api, body, field):
    PartnerFactory(code="jane")
    PartnerFactory(code="sleepy", status="inactive")

    response = api.post("/api/v1/referrals/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert (Referral.objects.count(), Contact.objects.count()) == (0, 0)
