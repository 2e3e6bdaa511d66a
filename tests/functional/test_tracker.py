"""The /go/ tracker over HTTP: redirects, the signed cookie, clicks (SPEC §3, §4)."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partners.models import Click
from partners.services.defaults import defaults_update
from partners.tokens import decode_token
from tests.conftest import FIXED_NOW
from tests.factories import PartnerFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

HOME = "https://shop.example/"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36"


@pytest.fixture(autouse=True)
def shop(settings):
    settings.ALLOWED_REDIRECT_HOSTS = ["shop.example", "blog.shop.example"]
    settings.TRUSTED_PROXY_DEPTH = 0
    TrackingLinkFactory(code="home", destination=HOME, is_default=True)
    TrackingLinkFactory(code="haircare", destination="https://shop.example/hair?color=red")


def go(client, path, **headers):
    return client.get(path, headers={"user-agent": BROWSER, **headers})


def token_of(response):
    return response.cookies["rp_ref"].value


def landing(response):
    parts = urlsplit(response["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


def test_a_click_redirects_sets_the_cookie_and_records_the_click(client):
    jane = PartnerFactory(code="jane", cookie_days=30)

    response = go(client, "/go/jane/?ad=summer", referer="https://blog.example/post")

    assert response.status_code == 302
    url, query = landing(response)
    assert url == HOME
    assert query["rp_ref"] == [token_of(response)]
    click = Click.objects.get()
    assert (click.partner, click.tracking_link, click.ad_code) == (jane, None, "summer")
    assert (click.ip, click.user_agent, click.referrer) == (
        "127.0.0.1",
        BROWSER,
        "https://blog.example/post",
    )
    [decoded] = decode_token(token_of(response))
    assert (decoded.click_id, decoded.partner_id) == (click.id, jane.id)
    cookie = response.cookies["rp_ref"]
    assert cookie["max-age"] == 30 * 24 * 3600
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]


def test_the_tracking_link_keeps_its_own_query(client):
    PartnerFactory(code="jane")
    response = go(client, "/go/haircare/jane/")
    url, query = landing(response)
    assert url == "https://shop.example/hair"
    assert query["color"] == ["red"]
    assert query["rp_ref"] == [token_of(response)]
    assert Click.objects.get().tracking_link.code == "haircare"


def test_cookie_keeps_the_first_click_and_replaces_the_last(client):
    a, b, c = (
        PartnerFactory(code="alice"),
        PartnerFactory(code="bobby"),
        PartnerFactory(code="carol"),
    )

    go(client, "/go/alice/")
    second = go(client, "/go/bobby/")
    assert [x.partner_id for x in decode_token(token_of(second))] == [a.id, b.id]

    third = go(client, "/go/carol/")
    assert [x.partner_id for x in decode_token(token_of(third))] == [a.id, c.id]
    assert Click.objects.count() == 3


def test_a_forged_cookie_counts_as_none(client):
    b = PartnerFactory(code="bobby")
    client.cookies["rp_ref"] = "forged:value"
    response = go(client, "/go/bobby/")
    assert [x.partner_id for x in decode_token(token_of(response))] == [b.id]


def test_cookie_without_cookie_days_lasts_ten_years_and_is_secure_on_https(client, settings):
    settings.SITE_URL = "https://aff.example"
    settings.REFERRAL_COOKIE_DOMAIN = ".shop.example"
    PartnerFactory(code="jane", cookie_days=None)
    cookie = go(client, "/go/jane/").cookies["rp_ref"]
    assert cookie["max-age"] == 10 * 365 * 24 * 3600
    assert cookie["secure"] is True
    assert cookie["domain"] == ".shop.example"


DAY = 24 * 3600


@pytest.mark.parametrize(
    ("first_days", "then_days", "max_age"),
    [
        pytest.param(30, 7, 28 * DAY, id="a-longer-earlier-window-keeps-the-cookie"),
        pytest.param(7, 30, 30 * DAY, id="a-longer-later-window-keeps-the-cookie"),
        pytest.param(30, None, 10 * 365 * DAY, id="a-click-without-limit-keeps-it-ten-years"),
        pytest.param(1, 3, 3 * DAY, id="an-earlier-window-already-over-counts-for-nothing"),
    ],
)
def test_the_cookie_lives_as_long_as_the_longest_remaining_window_of_its_clicks(
    client, time_machine, first_days, then_days, max_age
):
    time_machine.move_to(FIXED_NOW, tick=False)
    PartnerFactory(code="alice", cookie_days=first_days)
    PartnerFactory(code="bobby", cookie_days=then_days)
    go(client, "/go/alice/")
    time_machine.shift(2 * DAY)

    response = go(client, "/go/bobby/")

    assert response.cookies["rp_ref"]["max-age"] == max_age
    first, _ = decode_token(token_of(response))
    assert first.until == FIXED_NOW + timedelta(days=first_days)


def test_current_earlier_and_no_prefix_all_credit_the_partner(client):
    jane = PartnerFactory(code="jane")
    defaults_update(data={"code_prefix": "vip-", "duplicate_click_minutes": 0}, acting_user=None)
    defaults_update(data={"code_prefix": "p-"}, acting_user=None)

    for path in ("/go/vip-jane/", "/go/p-jane/", "/go/jane/", "/go/P-JANE/"):
        response = go(client, path)
        assert decode_token(token_of(response))[-1].partner_id == jane.id, path

    response = go(client, "/go/x-jane/")
    assert landing(response) == (HOME, {})
    assert "rp_ref" not in response.cookies
    assert Click.objects.count() == 4


@pytest.mark.parametrize(
    "to",
    [
        "https://evil.example/",
        "//evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "\\\\evil.example",
        "https://evil.example\\@shop.example/",
        "https://shop.example.evil.example/",
        "ftp://shop.example/",
    ],
    ids=[
        "other-host",
        "scheme-relative",
        "no-slashes",
        "javascript",
        "backslashes",
        "backslash-userinfo",
        "suffix-host",
        "ftp",
    ],
)
def test_to_outside_the_allowed_hosts_lands_on_the_default(client, to):
    PartnerFactory(code="jane")
    response = client.get("/go/jane/", {"to": to}, headers={"user-agent": BROWSER})
    url, query = landing(response)
    assert url == HOME
    assert list(query) == ["rp_ref"]


def test_to_on_an_allowed_host_is_followed_with_rp_ref(client):
    PartnerFactory(code="jane")
    response = client.get(
        "/go/jane/", {"to": "https://blog.shop.example/post?id=7"}, headers={"user-agent": BROWSER}
    )
    url, query = landing(response)
    assert url == "https://blog.shop.example/post"
    assert query == {"id": ["7"], "rp_ref": [token_of(response)]}


@pytest.mark.parametrize("path", ["/go/nobody/", "/go/sleepy/"], ids=["unknown", "inactive"])
def test_unknown_and_inactive_partners_record_nothing(client, path):
    PartnerFactory(code="sleepy", status="inactive")
    response = go(client, path)
    assert response.status_code == 302
    assert response["Location"] == HOME
    assert "rp_ref" not in response.cookies
    assert Click.objects.count() == 0


def test_bots_are_redirected_but_not_counted(client):
    PartnerFactory(code="jane")
    response = go(client, "/go/jane/", user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert landing(response) == (HOME, {})
    assert Click.objects.count() == 0


def test_repeated_clicks_within_the_window_count_once(client):
    jane, bobby = PartnerFactory(code="jane"), PartnerFactory(code="bobby")
    defaults_update(data={"duplicate_click_minutes": 30}, acting_user=None)

    first = go(client, "/go/jane/")
    again = go(client, "/go/jane/")
    other_browser = go(client, "/go/jane/", user_agent=BROWSER + " Edg/156")
    other_partner = go(client, "/go/bobby/")

    assert [r.status_code for r in (first, again, other_browser, other_partner)] == [302] * 4
    assert decode_token(token_of(again))[-1].partner_id == jane.id  # the cookie still follows
    assert sorted(Click.objects.values_list("partner__code", "user_agent")) == [
        ("bobby", BROWSER),
        ("jane", BROWSER),
        ("jane", BROWSER + " Edg/156"),
    ]
    assert bobby.clicks.count() == 1


def test_forwarded_for_is_believed_only_as_deep_as_the_trusted_proxies(client, settings):
    PartnerFactory(code="jane")
    spoofed = {"x-forwarded-for": "6.6.6.6, 203.0.113.9"}
    defaults_update(data={"duplicate_click_minutes": 0}, acting_user=None)
    go(client, "/go/jane/", **spoofed)
    settings.TRUSTED_PROXY_DEPTH = 1
    go(client, "/go/jane/", **spoofed)
    assert list(Click.objects.order_by("at").values_list("ip", flat=True)) == [
        "127.0.0.1",
        "203.0.113.9",
    ]


@pytest.mark.parametrize(
    ("path", "user_agent", "clicks"),
    [
        ("/go/haircare/jane/", BROWSER, 1),
        ("/go/jane/", BROWSER, 1),
        ("/go/nobody/", BROWSER, 0),
        ("/go/jane/", "Googlebot/2.1", 0),
    ],
    ids=["tracking-link", "default-link", "unknown-partner", "bot"],
)
def test_without_a_buffer_a_click_is_one_query_and_no_session_or_user(
    client, settings, path, user_agent, clicks
):
    settings.TRUSTED_PROXY_DEPTH = 1  # two visitors, so the second click is no repeat
    PartnerFactory(code="jane")
    # On SQLite (the embedded default) the lookup and the insert are two statements.
    expected = 1 if connection.vendor == "postgresql" or not clicks else 2
    for n in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = go(client, path, user_agent=user_agent, x_forwarded_for=f"10.0.0.{n}")
        assert response.status_code == 302
        assert len(queries) == expected
    sql = queries[0]["sql"].lower()
    assert "django_session" not in sql
    assert "auth_user" not in sql
    assert not response.templates
    assert Click.objects.count() == 2 * clicks
