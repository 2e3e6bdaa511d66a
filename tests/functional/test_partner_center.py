"""The Partner Center over HTTP (SPEC §7): login, links, dashboard, ledger, commissions,
profile, passwords."""

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import strip_tags

from commissions.models import Commission, CommissionEntry, Order
from commissions.partner_center import csv_values
from commissions.payouts import payout_batch_create
from partners.models import Click, Partner
from partners.services.defaults import defaults_update
from partners.services.partners import partner_login_set_password, partner_profile_update
from tests.factories import PartnerFactory, ProgramFactory, StaffFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

D = Decimal
PASSWORD = "correct-horse-battery"
ORDERS = "/api/v1/events/orders/"
FORMS = "/api/v1/events/web-forms/"
REFUNDS = "/api/v1/events/refunds/"


# --- Helpers, shared with test_partner_center_security.py ---------------------------------


def partner_with_login(code: str, **fields) -> Partner:
    """A partner whose Partner Center login (username = code) has PASSWORD."""
    partner = PartnerFactory(code=code, **fields)
    partner_login_set_password(partner=partner, password=PASSWORD)
    partner.refresh_from_db()
    return partner


def logged_in(partner: Partner, **client_options) -> Client:
    client = Client(**client_options)
    client.force_login(partner.user)
    return client


def page_text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))


def sell(api, event_id: str, at: str, price: str, partner: str, email: str = "ada@example.com"):
    response = api.post(
        ORDERS,
        {
            "event_id": event_id,
            "occurred_at": at,
            "sale_partner": partner,
            "contact": {"email": email},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    return response.json()


def opt_in(api, event_id: str, at: str, partner: str, email: str):
    response = api.post(
        FORMS,
        {
            "event_id": event_id,
            "occurred_at": at,
            "lead_partner": partner,
            "contact": {"email": email},
        },
        format="json",
    )
    assert response.status_code == 201, response.data


def refund(api, event_id: str, order_id: str, at: str):
    response = api.post(
        REFUNDS, {"event_id": event_id, "order_id": order_id, "occurred_at": at}, format="json"
    )
    assert response.status_code == 201, response.data


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def program(db):
    """Pays a lead 3.00 and a sale 10.00 at level 1 (flat amounts, leads and sales on)."""
    defaults_update(data={"payout_on_lead": True}, acting_user=None)
    return ProgramFactory(
        priority=1,
        payout_on_lead=True,
        rates={1: {"lead_amount": D("3.00"), "sale_amount": D("10.00")}},
    )


@pytest.fixture
def jane(program):
    return partner_with_login("jane", name="Jane Doe", email="jane@partners.example")


@pytest.fixture
def history(api, jane):
    """Jane: Oct 1 opt-in of ada; Oct 5 o1 (lead 3.00 + sale 10.00); Oct 10 o1 refunded
    (-3.00, -10.00); Oct 20 o2 (sale 10.00); paid 10.00 on Nov 2; Nov 5 o3 (sale 10.00)."""
    opt_in(api, "f1", "2026-10-01T09:00:00Z", "jane", "ada@example.com")
    sell(api, "o1", "2026-10-05T12:00:00Z", "100.00", "jane")
    refund(api, "r1", "o1", "2026-10-10T12:00:00Z")
    sell(api, "o2", "2026-10-20T12:00:00Z", "50.00", "jane", email="cy@example.com")
    payout_batch_create(
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        method="earned_in_range",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    sell(api, "o3", "2026-11-05T12:00:00Z", "80.00", "jane", email="cy@example.com")
    return jane


# --- Login and logout -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    ["jane", "JANE", "jane@partners.example", "Jane@Partners.EXAMPLE"],
    ids=["code", "code-upper", "email", "email-mixed-case"],
)
def test_login_with_code_or_email_any_case(client, jane, username):
    response = client.post("/partner/login/", {"username": username, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/partner/"
    assert client.session["_auth_user_id"] == str(jane.user.pk)
    dashboard = client.get("/partner/")
    assert "Welcome, Jane Doe." in page_text(dashboard)


def test_login_form_says_partner_code_or_email(client):
    content = client.get("/partner/login/").content.decode()

    assert '<label for="id_username">Partner code or email</label>' in content
    assert 'href="/partner/password-reset/"' in content


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("jane", "Correct-horse-battery"),
        ("jane", ""),
        ("nobody", PASSWORD),
        ("jane@partners.example", "wrong"),
    ],
    ids=["wrong-case-password", "empty-password", "unknown-code", "wrong-password"],
)
def test_wrong_credentials_are_refused(client, jane, username, password):
    response = client.post("/partner/login/", {"username": username, "password": password})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    if password:
        assert "The partner code or email and the password do not match." in page_text(response)


def test_a_staff_login_is_refused_on_the_partner_login(client):
    StaffFactory(username="maria")

    response = client.post("/partner/login/", {"username": "maria", "password": PASSWORD})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert "This login does not belong to a partner." in page_text(response)


def test_an_inactive_login_is_refused(client, jane):
    get_user_model().objects.filter(pk=jane.user.pk).update(is_active=False)

    response = client.post("/partner/login/", {"username": "jane", "password": PASSWORD})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_login_follows_a_safe_next_only(client, jane):
    inside = client.post(
        "/partner/login/?next=/partner/ledger/", {"username": "jane", "password": PASSWORD}
    )
    client.logout()
    outside = client.post(
        "/partner/login/",
        {"username": "jane", "password": PASSWORD, "next": "https://evil.example/"},
    )

    assert inside["Location"] == "/partner/ledger/"
    assert outside["Location"] == "/partner/"


def test_a_logged_in_partner_skips_the_login_page(jane):
    response = logged_in(jane).get("/partner/login/")

    assert response.status_code == 302
    assert response["Location"] == "/partner/"


def test_logout_is_a_post(jane):
    client = logged_in(jane)

    refused = client.get("/partner/logout/")
    response = client.post("/partner/logout/")

    assert refused.status_code == 405
    assert response.status_code == 302
    assert response["Location"] == "/partner/login/"
    assert "_auth_user_id" not in client.session
    assert "You are logged out." in page_text(client.get("/partner/login/"))


def test_the_nav_has_every_entry_and_a_post_logout(jane):
    content = logged_in(jane).get("/partner/links/").content.decode()

    for href, label in [
        ("/partner/", "My dashboard"),
        ("/partner/links/", "My links"),
        ("/partner/ledger/", "My ledger"),
        ("/partner/commissions/", "My commissions"),
        ("/partner/profile/", "My profile"),
    ]:
        assert re.search(rf'<a href="{href}"( aria-current="page")?>{label}</a>', content), label
    assert '<a href="/partner/links/" aria-current="page">My links</a>' in content
    assert '<form class="logout-form" method="post" action="/partner/logout/">' in content


# --- The login service ------------------------------------------------------------------------


def test_set_password_makes_and_links_a_login(program):
    partner = PartnerFactory(code="Kim-01", email="kim@partners.example")

    user = partner_login_set_password(partner=partner, password="a-long-pass-phrase")

    partner.refresh_from_db()
    assert partner.user == user
    assert (user.username, user.email, user.is_staff, user.is_superuser) == (
        "Kim-01",
        "kim@partners.example",
        False,
        False,
    )
    assert user.check_password("a-long-pass-phrase")


def test_set_password_again_changes_the_same_login(jane):
    user_count = get_user_model().objects.count()

    user = partner_login_set_password(partner=jane, password="another-pass-phrase")

    assert user.pk == jane.user.pk
    assert get_user_model().objects.count() == user_count
    user.refresh_from_db()
    assert user.check_password("another-pass-phrase")
    assert not user.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "This password is too short. It must contain at least 8 characters."),
        ("12345678901", "This password is entirely numeric."),
        ("password123", "This password is too common."),
    ],
    ids=["short", "numeric", "common"],
)
def test_a_weak_password_is_refused_and_nothing_changes(program, password, message):
    from django.core.exceptions import ValidationError

    partner = PartnerFactory(code="kim01")
    users = list(get_user_model().objects.values_list("pk", flat=True))

    with pytest.raises(ValidationError) as error:
        partner_login_set_password(partner=partner, password=password)

    assert message in error.value.message_dict["password"]
    assert list(get_user_model().objects.values_list("pk", flat=True)) == users
    partner.refresh_from_db()
    assert partner.user is None


def test_a_staff_login_named_like_the_code_is_not_taken_over(program):
    from django.core.exceptions import ValidationError

    staff = StaffFactory(username="kim01")
    partner = PartnerFactory(code="kim01")

    with pytest.raises(ValidationError) as error:
        partner_login_set_password(partner=partner, password="a-long-pass-phrase")

    assert error.value.message_dict == {
        "user": ["The staff login kim01 cannot become a partner's login."]
    }
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)
    partner.refresh_from_db()
    assert partner.user is None


# --- My links ---------------------------------------------------------------------------------


def test_links_lists_every_url_with_a_copy_button(jane):
    TrackingLinkFactory(code="hair", name="Hair care")
    TrackingLinkFactory(code="sale", name="Summer sale")

    response = logged_in(jane).get("/partner/links/")

    content = response.content.decode()
    urls = [link["url"] for link in response.context["links"]]
    assert urls == [
        "http://127.0.0.1:8000/go/jane/",
        "http://127.0.0.1:8000/go/hair/jane/",
        "http://127.0.0.1:8000/go/sale/jane/",
    ]
    for url in urls:
        assert f'data-copy="{url}"' in content
    assert response.context["generated_url"] == "http://127.0.0.1:8000/go/jane/"


@pytest.mark.parametrize(
    ("query", "url"),
    [
        (
            {"link": "hair", "ad": "spring sale/2026 & more!"},
            "http://127.0.0.1:8000/go/hair/jane/?ad=spring%20sale%2F2026%20%26%20more!",
        ),
        ({"link": "", "ad": "  news-june  "}, "http://127.0.0.1:8000/go/jane/?ad=news-june"),
        ({"link": "hair", "ad": ""}, "http://127.0.0.1:8000/go/hair/jane/"),
        ({"link": "hair", "ad": "é(1)"}, "http://127.0.0.1:8000/go/hair/jane/?ad=%C3%A9(1)"),
    ],
    ids=["encoded", "default-link-stripped", "no-ad-code", "unicode"],
)
def test_the_link_generator_makes_the_url_on_the_server(jane, query, url):
    TrackingLinkFactory(code="hair", name="Hair care")

    response = logged_in(jane).get("/partner/links/", query)

    assert response.context["generated_url"] == url
    assert f'value="{html.escape(url)}"' in response.content.decode()


def test_the_generated_url_records_the_ad_code(client, jane):
    TrackingLinkFactory(code="hair", name="Hair care", is_default=True)
    url = logged_in(jane).get("/partner/links/", {"link": "hair", "ad": "spring sale/2026"})
    path = url.context["generated_url"].removeprefix("http://127.0.0.1:8000")

    client.get(path)

    assert list(Click.objects.values_list("partner__code", "ad_code")) == [
        ("jane", "spring sale/2026")
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"link": "nope", "ad": "x"}, "link"), ({"link": "", "ad": "x" * 65}, "ad")],
    ids=["unknown-link", "ad-code-too-long"],
)
def test_a_bad_generator_query_shows_the_error_and_the_plain_link(jane, query, field):
    response = logged_in(jane).get("/partner/links/", query)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert response.context["generated_url"] == "http://127.0.0.1:8000/go/jane/"


# --- Dashboard -----------------------------------------------------------------------------


def ago(days: int, hours: int = 0) -> datetime:
    return timezone.now() - timedelta(days=days, hours=hours)


def clicks(partner: Partner, *ages: int) -> None:
    import uuid

    Click.objects.bulk_create(
        Click(id=uuid.uuid4(), partner=partner, at=ago(days)) for days in ages
    )


def test_dashboard_counts_the_last_30_days_and_all_time(api, jane):
    clicks(jane, 0, 1, 1, 29, 31, 200)
    opt_in(api, "f1", ago(2).isoformat(), "jane", "ada@example.com")
    opt_in(api, "f2", ago(45).isoformat(), "jane", "bo@example.com")
    sell(api, "o1", ago(3).isoformat(), "20.00", "jane", email="cy@example.com")
    sell(api, "o2", ago(60).isoformat(), "20.00", "jane", email="di@example.com")
    sell(api, "o3", ago(100).isoformat(), "20.00", "jane", email="ada@example.com")

    response = logged_in(jane).get("/partner/")

    context = response.context
    assert [(s["label"], s["recent"], s["all_time"]) for s in context["stats"]] == [
        ("Clicks", 4, 6),
        ("Opt-ins", 1, 2),
        ("Orders", 1, 3),
    ]
    # o3: sale 10.00 and lead 3.00 (ada opted in through jane); o1, o2: sale 10.00 each.
    assert context["earned"] == [{"currency": "USD", "recent": "10.00", "all_time": "33.00"}]
    text = page_text(response)
    assert "Commissions earned last 30 days · 33.00 USD all time" in text
    assert "No clicks yet" not in text


def test_dashboard_charts_are_inline_svg_with_the_numbers(api, jane, fixed_now):
    # At noon (fixed_now): "an hour ago" is today whatever the hour the suite runs at.
    clicks(jane, 0, 0, 2)
    sell(api, "o1", ago(0, hours=1).isoformat(), "20.00", "jane")

    response = logged_in(jane).get("/partner/")

    content = response.content.decode()
    today = timezone.now().date()
    daily = {row["date"]: row["values"] for row in response.context["daily_rows"]}
    assert len(daily) == 30
    assert daily[today] == ["2", "0", "1"]
    assert daily[today - timedelta(days=2)] == ["1", "0", "0"]
    assert sum(int(v) for values in daily.values() for v in values) == 4
    weekly = response.context["weekly_rows"]
    assert len(weekly) == 12
    assert weekly[-1] == {"date": today - timedelta(days=today.weekday()), "values": ["10.00"]}
    assert content.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 2
    title = "Clicks, opt-ins and orders per day, last 30 days"
    assert f'<title id="chart-daily-title">{title}</title>' in content
    assert content.count('class="chart-bar chart-series-0"') == 3  # 2 click days, 1 week
    assert content.count('class="chart-bar chart-series-2"') == 1  # the order
    for svg in (response.context["daily_chart"], response.context["weekly_chart"]):
        assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_an_empty_dashboard_says_what_to_do_next(jane):
    response = logged_in(jane).get("/partner/")

    text = page_text(response)
    assert "No clicks yet — share your links from My links" in text
    assert "Nothing in the last 30 days — share your links from My links." in text
    assert "No commissions in the last 12 weeks." in text
    assert response.context["daily_chart"] is None
    assert response.context["earned"] == [{"currency": "USD", "recent": "0.00", "all_time": "0.00"}]


def test_dashboard_queries_do_not_grow_with_the_rows(api, jane):
    def count() -> int:
        client = logged_in(jane)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/partner/").status_code == 200
        return len(queries)

    clicks(jane, 1)
    sell(api, "o1", ago(1).isoformat(), "20.00", "jane")
    few = count()
    clicks(jane, *range(30), *range(30))
    for n in range(2, 8):
        sell(api, f"o{n}", ago(n * 9).isoformat(), "20.00", "jane")
    many = count()

    assert few == many


# --- My ledger ------------------------------------------------------------------------------


LEDGER_RANGES = {
    "all-time": ({}, ("0.00", "33.00", "13.00", "10.00", "10.00")),
    "october": (
        {"start": "2026-10-01", "end": "2026-10-31"},
        ("0.00", "23.00", "13.00", "0.00", "10.00"),
    ),
    "november": (
        {"start": "2026-11-01", "end": "2026-11-30"},
        ("10.00", "10.00", "0.00", "10.00", "10.00"),
    ),
}


@pytest.mark.parametrize("period", list(LEDGER_RANGES))
def test_ledger_figures_equal_the_api(api, history, period):
    query, expected = LEDGER_RANGES[period]

    response = logged_in(history).get("/partner/ledger/", query)
    body = api.get("/api/v1/partners/jane/ledger/", query).json()

    figures = tuple(response.context["figures"].values())
    assert figures[:5] == expected
    assert response.context["summary"].ending_balance == D(expected[-1])
    assert figures == (
        body["beginning_balance"],
        body["earned"],
        body["clawbacks"],
        body["payments"],
        body["ending_balance"],
        body["rejections"],
        body["pending"],
        body["payable"],
    )
    page_entries = [
        (row["entry"], str(row["amount"]), row["order_id"] or None)
        for row in response.context["entries"]
    ]
    assert page_entries == [(e["entry"], e["amount"], e["order_id"]) for e in body["entries"]]
    content = response.content.decode()
    assert f'<span class="stat-value" data-figure="ending_balance">{expected[-1]}</span>' in content


def test_ledger_entries_explain_each_line(history):
    response = logged_in(history).get("/partner/ledger/", {"start": "2026-10-01"})

    rows = [
        (
            row["at"].date().isoformat(),
            row["entry"],
            row["order_id"],
            str(row["amount"]),
            row["explanation"],
        )
        for row in response.context["entries"]
    ]
    assert rows == [
        (
            "2026-10-05",
            "commission",
            "o1",
            "3.00",
            "Lead, level 1: credited because you are the buyer's referring partner since "
            "2026-10-01: the order named you as its partner.",
        ),
        (
            "2026-10-05",
            "commission",
            "o1",
            "10.00",
            "Sale, level 1: credited because the order named you as its partner.",
        ),
        (
            "2026-10-10",
            "clawback",
            "o1",
            "-3.00",
            "Taken back because order refund r1 returned 100.00.",
        ),
        (
            "2026-10-10",
            "clawback",
            "o1",
            "-10.00",
            "Taken back because order refund r1 returned 100.00.",
        ),
        (
            "2026-10-20",
            "commission",
            "o2",
            "10.00",
            "Sale, level 1: credited because the order named you as its partner.",
        ),
        ("2026-11-02", "payment", "", "-10.00", rows[5][4]),
        (
            "2026-11-05",
            "commission",
            "o3",
            "10.00",
            "Sale, level 1: credited because the order named you as its partner.",
        ),
    ]
    assert re.fullmatch(r"Paid to you in payout batch \d+\.", rows[5][4])


def test_ledger_csv_rows_equal_the_page_entries(history):
    client = logged_in(history)
    query = {"start": "2026-10-06", "end": "2026-11-30"}

    page = client.get("/partner/ledger/", query)
    response = client.get("/partner/ledger.csv", query)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="ledger-jane-2026-10-06-2026-11-30-USD.csv"'
    )
    rows = csv_rows(response)
    assert rows[0] == [
        "date",
        "entry",
        "order_id",
        "kind",
        "level",
        "amount",
        "currency",
        "payout_batch",
        "explanation",
        "payable_at",
    ]
    assert rows[1:] == [csv_values(row) for row in page.context["entries"]]
    assert [(r[1], r[2], r[5]) for r in rows[1:]] == [
        ("clawback", "o1", "-3.00"),
        ("clawback", "o1", "-10.00"),
        ("commission", "o2", "10.00"),
        ("payment", "", "-10.00"),
        ("commission", "o3", "10.00"),
    ]
    assert 'href="/partner/ledger.csv?start=2026-10-06&amp;end=2026-11-30"' in (
        page.content.decode()
    )


def test_ledger_csv_cells_never_start_a_formula(api, jane):
    sell(api, "=HYPERLINK(1)", "2026-10-05T12:00:00Z", "10.00", "jane")

    rows = csv_rows(logged_in(jane).get("/partner/ledger.csv"))

    assert rows[1][2] == "'=HYPERLINK(1)"
    assert rows[1][5] == "10.00"


@pytest.mark.parametrize(
    "query",
    [{"start": "2026-13-01"}, {"start": "2026-11-02", "end": "2026-11-01"}],
    ids=["bad-date", "end-before-start"],
)
def test_a_bad_range_shows_errors_and_the_csv_is_400(history, query):
    client = logged_in(history)

    page = client.get("/partner/ledger/", query)
    download = client.get("/partner/ledger.csv", query)

    assert page.status_code == 400
    assert page.context["form"].errors
    assert "summary" not in page.context
    assert download.status_code == 400


def bulk_commissions(partner: Partner, order: Order, count: int, start: int = 0) -> None:
    Commission.objects.bulk_create(
        Commission(
            partner=partner,
            order=order,
            level=1,
            kind="sale",
            entry=CommissionEntry.COMMISSION,
            base=D("10.00"),
            amount=D("1.00"),
            currency="USD",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n),
            payable_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n),
            trace={"attribution": {"source": "explicit", "rule": None}},
        )
        for n in range(start, start + count)
    )


def test_ledger_page_queries_do_not_grow_with_the_entries(api, jane):
    sell(api, "o1", "2025-12-31T12:00:00Z", "10.00", "jane")
    order = Order.objects.get()
    client = logged_in(jane)

    def count(query=None) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/partner/ledger/", query or {})
        return len(queries), len(response.context["entries"])

    bulk_commissions(jane, order, 9)
    few = count()
    bulk_commissions(jane, order, 990, start=9)
    many = count()
    last_page = count({"page": 20})

    assert few[1] == 10 and many[1] == 50 and last_page[1] == 50
    assert few[0] == many[0] == last_page[0]


def test_ledger_pages_hold_50_entries_in_time_order(api, jane):
    sell(api, "o1", "2025-12-31T12:00:00Z", "10.00", "jane")
    bulk_commissions(jane, Order.objects.get(), 120)
    client = logged_in(jane)

    pages = [client.get("/partner/ledger/", {"page": n}).context for n in (1, 2, 3)]

    assert [len(p["entries"]) for p in pages] == [50, 50, 21]
    times = [row["at"] for p in pages for row in p["entries"]]
    assert times == sorted(times)
    assert pages[2]["paginator"].count == 121
    assert "Page 3 of 3 · 121 in all" in page_text(client.get("/partner/ledger/", {"page": 3}))


def test_an_empty_ledger_says_what_to_do_next(jane):
    text = page_text(logged_in(jane).get("/partner/ledger/"))

    assert "No entries yet — you earn a commission when someone you referred buys." in text
    assert "Share your links from My links." in text


# --- My commissions ---------------------------------------------------------------------------


def test_commissions_list_filters_by_kind(history):
    client = logged_in(history)

    every = client.get("/partner/commissions/")
    leads = client.get("/partner/commissions/", {"kind": "lead"})

    assert [
        (r["order_id"], r["kind"], r["entry"], str(r["amount"])) for r in every.context["rows"]
    ] == [
        ("o3", "sale", "commission", "10.00"),
        ("o2", "sale", "commission", "10.00"),
        ("o1", "sale", "clawback", "-10.00"),
        ("o1", "lead", "clawback", "-3.00"),
        ("o1", "sale", "commission", "10.00"),
        ("o1", "lead", "commission", "3.00"),
    ]
    assert [(r["order_id"], r["entry"]) for r in leads.context["rows"]] == [
        ("o1", "clawback"),
        ("o1", "commission"),
    ]


def test_commission_detail_explains_the_trace_in_sentences(history, program):
    commission = Commission.objects.get(order__order_id="o2")

    response = logged_in(history).get(f"/partner/commissions/{commission.pk}/")

    text = page_text(response)
    assert response.status_code == 200
    assert "Commission of 10.00 USD" in text
    assert "Sale, level 1: credited because the order named you as its partner." in text
    content = response.content.decode()
    batch = commission.payment.batch_id
    for row in [
        "<dt>Amount</dt><dd>10.00 USD</dd>",
        '<dt>Order</dt><dd class="mono">o2</dd>',
        "<dt>Kind</dt><dd>Sale</dd>",
        "<dt>Level</dt><dd>1</dd>",
        "<dt>Base</dt><dd>50.00 USD</dd>",
        f"<dt>Paid</dt><dd>In payout batch {batch}, 2026-11-02</dd>",
    ]:
        assert row in content
    unpaid = Commission.objects.get(order__order_id="o3")
    assert "<dt>Paid</dt><dd>Not yet</dd>" in (
        logged_in(history).get(f"/partner/commissions/{unpaid.pk}/").content.decode()
    )
    # The trace in sentences, never its keys (SPEC §12).
    assert response.context["sentences"] == [f"Program {program.name} pays 10.00 at level 1."]
    for key in ("attribution.source", "clawback_of", "completes_refund", "rates.amount"):
        assert key not in text


def test_a_clawback_links_to_the_commission_it_takes_back(history):
    clawback = Commission.objects.get(order__order_id="o1", kind="sale", entry="clawback")

    response = logged_in(history).get(f"/partner/commissions/{clawback.pk}/")

    text = page_text(response)
    assert "Refund r1 returned 100.00 and completed the refund of the order's 100.00, so this " \
        "line gives back all that was left of it." in text  # fmt: skip
    assert "clawback_of" not in text and "completes_refund" not in text
    assert f'href="/partner/commissions/{clawback.clawback_of_id}/"' in response.content.decode()


def test_a_balance_below_zero_says_why(api, jane):
    """o2 pays jane 10.00, the 10.00 is paid out on Nov 2, then o2 is refunded on Nov 3:
    the clawback of -10.00 leaves a balance of 10.00 - 10.00 - 10.00 = -10.00."""
    sell(api, "o2", "2026-10-20T12:00:00Z", "50.00", "jane", email="cy@example.com")
    payout_batch_create(
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        method="earned_in_range",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    refund(api, "r2", "o2", "2026-11-03T12:00:00Z")
    client = logged_in(jane)

    ledger = client.get("/partner/ledger/")

    assert ledger.context["figures"]["ending_balance"] == "-10.00"
    assert (
        "Your balance is below zero because refunds took back 10.00 USD of commissions that "
        "had already been paid to you." in page_text(ledger)
    )
    clawback = Commission.objects.get(entry="clawback")
    detail = page_text(client.get(f"/partner/commissions/{clawback.pk}/"))
    batch = clawback.clawback_of.payment.batch_id
    assert (
        f"The commission it takes back had already been paid to you (payout batch {batch}, "
        "2026-11-02), so this comes off your balance" in detail
    )


def test_an_empty_commissions_list_says_what_to_do_next(jane):
    text = page_text(logged_in(jane).get("/partner/commissions/"))

    assert "No commissions yet — share your links from My links" in text


# --- My profile -------------------------------------------------------------------------------


def test_profile_update_through_the_form(jane):
    client = logged_in(jane)

    response = client.post(
        "/partner/profile/",
        {
            "name": "Jane Q. Doe",
            "email": "JQ@partners.example",
            "notify_lead": "",
            "notify_sale": "on",
        },
        follow=True,
    )

    jane.refresh_from_db()
    jane.user.refresh_from_db()
    assert (jane.name, jane.email, jane.notify_lead, jane.notify_sale) == (
        "Jane Q. Doe",
        "JQ@partners.example",
        False,
        True,
    )
    assert jane.user.email == "JQ@partners.example"
    assert response.redirect_chain == [("/partner/profile/", 302)]
    assert "Your profile is saved." in page_text(response)


def test_profile_refuses_another_partners_email_and_changes_nothing(jane):
    PartnerFactory(code="bobby", email="bob@partners.example")
    before = model_to_dict(Partner.objects.get(pk=jane.pk))

    response = logged_in(jane).post(
        "/partner/profile/",
        {
            "name": "Changed",
            "email": "BOB@partners.example",
            "notify_lead": "on",
            "notify_sale": "on",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "email": ["Another partner uses this email; choose another."]
    }
    assert model_to_dict(Partner.objects.get(pk=jane.pk)) == before


def test_a_shared_email_staff_gave_does_not_block_other_changes(jane):
    PartnerFactory(code="bobby", email="JANE@partners.example")

    logged_in(jane).post(
        "/partner/profile/",
        {
            "name": "Jane Q. Doe",
            "email": "jane@partners.example",
            "notify_lead": "on",
            "notify_sale": "on",
        },
    )

    jane.refresh_from_db()
    assert (jane.name, jane.email) == ("Jane Q. Doe", "jane@partners.example")


def test_profile_refuses_a_bad_email_and_changes_nothing(jane):
    before = model_to_dict(Partner.objects.get(pk=jane.pk))

    response = logged_in(jane).post("/partner/profile/", {"name": "", "email": "not-an-email"})

    assert set(response.context["form"].errors) == {"name", "email"}
    assert model_to_dict(Partner.objects.get(pk=jane.pk)) == before


def test_profile_without_changes_says_so(jane):
    response = logged_in(jane).post(
        "/partner/profile/",
        {
            "name": "Jane Doe",
            "email": "jane@partners.example",
            "notify_lead": "on",
            "notify_sale": "on",
        },
        follow=True,
    )

    assert "Nothing changed." in page_text(response)


def test_profile_service_refuses_other_fields(jane):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        partner_profile_update(partner=jane, data={"status": "inactive", "name": "X"})

    assert error.value.message_dict == {"status": ["You cannot change this here."]}
    jane.refresh_from_db()
    assert (jane.status, jane.name) == ("active", "Jane Doe")


def test_profile_post_without_csrf_token_is_403(jane):
    before = model_to_dict(Partner.objects.get(pk=jane.pk))
    client = logged_in(jane, enforce_csrf_checks=True)

    response = client.post(
        "/partner/profile/",
        {
            "name": "Forged",
            "email": "forged@evil.example",
            "notify_lead": "",
            "notify_sale": "",
        },
    )

    assert response.status_code == 403
    assert model_to_dict(Partner.objects.get(pk=jane.pk)) == before


def test_password_change(jane):
    client = logged_in(jane)

    response = client.post(
        "/partner/profile/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-pass-phrase",
            "new_password2": "a-new-pass-phrase",
        },
        follow=True,
    )

    assert response.redirect_chain == [("/partner/profile/", 302)]
    assert "Your password is changed." in page_text(response)
    jane.user.refresh_from_db()
    assert jane.user.check_password("a-new-pass-phrase")
    assert client.get("/partner/").status_code == 200  # still logged in


def test_password_change_with_a_wrong_old_password_changes_nothing(jane):
    response = logged_in(jane).post(
        "/partner/profile/password/",
        {
            "old_password": "wrong",
            "new_password1": "a-new-pass-phrase",
            "new_password2": "a-new-pass-phrase",
        },
    )

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["old_password"]
    jane.user.refresh_from_db()
    assert jane.user.check_password(PASSWORD)


# --- Password reset -----------------------------------------------------------------------------


def test_password_reset_by_email_sets_a_password_that_logs_in(client, jane):
    get_user_model().objects.filter(pk=jane.user.pk).update(email="old@elsewhere.example")

    sent = client.post("/partner/password-reset/", {"email": "JANE@partners.example"})

    assert sent.status_code == 302
    assert sent["Location"] == "/partner/password-reset/sent/"
    [message] = mail.outbox
    assert message.to == ["jane@partners.example"]
    assert message.subject == "Your Partner Center password"
    [link] = re.findall(r"http://testserver(/partner/password-reset/\S+/\S+/)", message.body)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0]
    assert set_url.endswith("/set-password/")

    done = client.post(
        set_url,
        {"new_password1": "a-new-pass-phrase", "new_password2": "a-new-pass-phrase"},
        follow=True,
    )

    assert done.redirect_chain == [("/partner/login/", 302)]
    assert "Your new password is set. Log in with it." in page_text(done)
    login = client.post("/partner/login/", {"username": "jane", "password": "a-new-pass-phrase"})
    assert login["Location"] == "/partner/"
    reused = client.get(link, follow=True)
    assert "This link does not work" in page_text(reused)


@pytest.mark.parametrize(
    "email", ["nobody@example.com", "staff0@example.com"], ids=["unknown", "staff-email"]
)
def test_password_reset_sends_nothing_to_others_but_says_the_same(client, jane, email):
    StaffFactory(username="staff0")

    sent = client.post("/partner/password-reset/", {"email": email}, follow=True)

    assert mail.outbox == []
    assert sent.redirect_chain == [("/partner/password-reset/sent/", 302)]
    assert "If a partner account uses that email, we sent it a link" in page_text(sent)
