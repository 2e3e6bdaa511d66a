"""Who may see what in the Partner Center (SPEC §7 "A partner sees only their own data")."""

from decimal import Decimal
from urllib.parse import quote

import pytest
from django.forms.models import model_to_dict

from commissions.models import Commission
from partners.models import Partner
from tests.factories import ProgramFactory, StaffFactory, UserFactory
from tests.functional.test_partner_center import (
    clicks,
    logged_in,
    opt_in,
    partner_with_login,
    refund,
    sell,
)

pytestmark = pytest.mark.django_db

D = Decimal

# Every Partner Center page a logged-in partner uses; the detail URL names alice's line.
PAGES = [
    ("dashboard", lambda data: "/partner/"),
    ("links", lambda data: "/partner/links/"),
    ("ledger", lambda data: "/partner/ledger/"),
    ("ledger-csv", lambda data: "/partner/ledger.csv"),
    ("commissions", lambda data: "/partner/commissions/"),
    ("commission-detail", lambda data: f"/partner/commissions/{data['alice_line'].pk}/"),
    ("profile", lambda data: "/partner/profile/"),
    ("password-change", lambda data: "/partner/profile/password/"),
]
LISTS = [(name, url) for name, url in PAGES if name != "commission-detail"]


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.fixture
def data(fixed_now, api):
    """On a clock fixed at 2026-11-06 (the orders fall in the dashboard's last 30 days):
    alice (sale 10.00): 3 clicks, an opt-in, orders alice-o1 (refunded) and alice-o2.
    bobby (sale 4.44, another program): 1 click, order bobby-o1."""
    alice = partner_with_login(
        "alice",
        name="Alice Able",
        email="alice@partners.example",
        program=ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}}),
    )
    bobby = partner_with_login(
        "bobby",
        name="Bob Baker",
        email="bob@partners.example",
        program=ProgramFactory(priority=2, rates={1: {"sale_amount": D("4.44")}}),
    )
    clicks(alice, 1, 2, 3)
    clicks(bobby, 1)
    opt_in(api, "alice-f1", "2026-11-01T10:00:00Z", "alice", "ann@example.com")
    sell(api, "alice-o1", "2026-11-02T10:00:00Z", "70.00", "alice", email="ann@example.com")
    refund(api, "alice-r1", "alice-o1", "2026-11-03T10:00:00Z")
    sell(api, "alice-o2", "2026-11-04T10:00:00Z", "70.00", "alice", email="ann@example.com")
    sell(api, "bobby-o1", "2026-11-05T10:00:00Z", "30.00", "bobby", email="ben@example.com")
    return {
        "alice": alice,
        "bobby": bobby,
        "alice_line": Commission.objects.filter(partner=alice).order_by("pk").first(),
        "alice_clawback": Commission.objects.get(partner=alice, entry="clawback"),
    }


def snapshot() -> tuple:
    return (
        [model_to_dict(p) for p in Partner.objects.order_by("pk")],
        list(Commission.objects.order_by("pk").values()),
    )


@pytest.mark.parametrize(("name", "url"), PAGES, ids=[name for name, _ in PAGES])
def test_anonymous_visitors_go_to_the_partner_login(client, data, name, url):
    path = url(data)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/partner/login/?next={quote(path)}"


@pytest.mark.parametrize(("name", "url"), PAGES, ids=[name for name, _ in PAGES])
@pytest.mark.parametrize("who", ["staff", "plain-user"])
def test_logins_without_a_partner_get_403(client, data, name, url, who):
    user = StaffFactory() if who == "staff" else UserFactory()
    client.force_login(user)
    before = snapshot()

    got = client.get(url(data))
    posted = client.post(url(data), {"name": "Changed", "email": "x@example.com"})

    assert got.status_code == 403
    assert posted.status_code in (403, 405)
    assert snapshot() == before


@pytest.mark.parametrize(("name", "url"), LISTS, ids=[name for name, _ in LISTS])
def test_a_partner_sees_none_of_another_partners_rows(data, name, url):
    client = logged_in(data["bobby"])

    response = client.get(url(data), {"partner": "alice", "code": "alice"})

    assert response.status_code == 200
    content = body(response).lower()
    for trace_of_alice in ("alice", "10.00", "ann@example.com"):
        assert trace_of_alice not in content, trace_of_alice


@pytest.mark.parametrize(
    ("name", "url", "own"),
    [
        ("ledger", "/partner/ledger/", ["bobby-o1", "4.44"]),
        ("ledger-csv", "/partner/ledger.csv", ["bobby-o1", "4.44"]),
        ("commissions", "/partner/commissions/", ["bobby-o1", "4.44"]),
        ("dashboard", "/partner/", ["4.44"]),
    ],
    ids=["ledger", "ledger-csv", "commissions", "dashboard"],
)
def test_a_partner_sees_their_own_rows(data, name, url, own):
    content = body(logged_in(data["bobby"]).get(url))

    for text in own:
        assert text in content


def test_the_dashboard_counts_only_the_partners_own_activity(data):
    response = logged_in(data["bobby"]).get("/partner/")

    assert [(s["label"], s["all_time"]) for s in response.context["stats"]] == [
        ("Clicks", 1),
        ("Opt-ins", 0),
        ("Orders", 1),
    ]
    assert response.context["earned"] == [{"currency": "USD", "recent": "4.44", "all_time": "4.44"}]


@pytest.mark.parametrize("line", ["alice_line", "alice_clawback"])
def test_another_partners_commission_is_404(data, line):
    response = logged_in(data["bobby"]).get(f"/partner/commissions/{data[line].pk}/")
    own = Commission.objects.get(partner=data["bobby"])

    assert response.status_code == 404
    assert logged_in(data["bobby"]).get(f"/partner/commissions/{own.pk}/").status_code == 200
    assert logged_in(data["alice"]).get(f"/partner/commissions/{data[line].pk}/").status_code == 200


def test_a_profile_post_changes_only_the_partner_logged_in(data):
    alice_before = model_to_dict(Partner.objects.get(code="alice"))

    logged_in(data["bobby"]).post(
        "/partner/profile/?code=alice",
        {
            "name": "Bob B.",
            "email": "bob@partners.example",
            "notify_lead": "",
            "notify_sale": "on",
            "code": "alice",
            "partner": data["alice"].pk,
        },
    )

    assert model_to_dict(Partner.objects.get(code="alice")) == alice_before
    assert Partner.objects.get(code="bobby").name == "Bob B."


STAFF_PAGES = [
    "/staff/",
    "/staff/partners/",
    "/staff/partners/alice/",
    "/staff/partners/bobby/edit/",
    "/staff/settings/referral-partner-defaults/",
]
API_URLS = [
    "/api/v1/partners/",
    "/api/v1/partners/bobby/",
    "/api/v1/partners/bobby/ledger/",
    "/api/v1/commissions/",
]


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_a_partner_gets_403_on_staff_pages(data, path):
    before = snapshot()
    client = logged_in(data["bobby"])

    got = client.get(path)
    posted = client.post(path, {"name": "Changed", "code": "bobby"})

    assert got.status_code == 403
    assert posted.status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("path", API_URLS)
def test_a_partner_gets_403_on_the_api(data, path):
    before = snapshot()
    client = logged_in(data["bobby"])

    got = client.get(path)
    patched = client.patch(path, {"name": "Changed"}, content_type="application/json")

    assert got.status_code == 403
    assert patched.status_code == 403
    assert snapshot() == before


def test_a_partner_is_sent_to_the_admin_login(data):
    response = logged_in(data["bobby"]).get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
