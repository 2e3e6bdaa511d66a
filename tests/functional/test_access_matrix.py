"""Who may open what (issue 7, part 3): every route of the site, read from the URL resolver,
is either on the commented PUBLIC list below or behind a login:

- staff pages (/staff/...): anonymous → the staff login, a partner → 403, staff → 200;
- the Partner Center (/partner/...): anonymous → the partner login, staff → 403, partner → 200;
- the admin (/admin/...): anonymous and partners → the admin login, staff get in;
- the API (/api/v1/...): anonymous → 401, a partner's session → 403, staff and API keys → 200.

A route added anywhere lands in this test at once; one that fits no group fails it until it
is put on PUBLIC (with the reason) or given a login.
"""

import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from commissions.creatives import resource_create
from commissions.models import (
    Commission,
    Contact,
    Notification,
    PayoutBatch,
    SimulationKind,
    SimulationRun,
    SimulationStatus,
)
from partners.services.api_keys import api_key_create
from tests.factories import PartnerFactory, ProgramFactory, StaffFactory, TrackingLinkFactory
from tests.functional.test_partner_center import partner_with_login, sell

pytestmark = pytest.mark.django_db

# Routes anyone may open, and why. Everything else needs a login.
PUBLIC = [
    (r"^$", "/ only redirects to /staff/, which needs a login"),
    (r"^healthz$", "the load balancer's liveness probe"),
    (r"^readyz$", "the load balancer's readiness probe"),
    (r"^go/", "the tracker: partner links are for everyone to click (SPEC §3)"),
    (r"^f/", "hosted web forms: the merchant's own pages post to them (SPEC §9)"),
    (r"^media/banners/", "banner images: partners put them on their own sites (SPEC §12)"),
    (r"^partner/signup/", "the partner sign-up page, off unless staff turn it on (SPEC §9)"),
    (r"^partner/(login|logout|password-reset)/", "the Partner Center's login and password reset"),
    (r"^partner/invitation/", "the link of a Partner Center invitation: the token is the key"),
    (r"^accounts/(login|logout)/$", "the staff login"),
    (r"^admin/(login|logout)/$", "the admin's login, and logging out"),
    (r"^api/(schema|docs)/$", "the API's description: no data, and the code is open"),
]
GROUPS = [
    ("staff", r"^staff/"),
    ("partner-center", r"^partner/"),
    ("admin", r"^admin/"),
    ("api", r"^api/v1/"),
]
UNKNOWN = "no-such-thing"
SIMULATION_ANSWER = {
    "start": "2026-11-01T00:00:00+00:00",
    "end": "2026-12-01T00:00:00+00:00",
    "events": 1,
    "orders": 1,
    "orders_changing_partner": 0,
    "currency": "USD",
    "total_now": "10.00",
    "total_proposed": "10.00",
    "change": "0.00",
    "partners": [
        {
            "partner": "alice",
            "name": "Alice",
            "currency": "USD",
            "now": "10.00",
            "proposed": "10.00",
            "change": "0.00",
        }
    ],
    "settings_changed": [],
    "orders_changed": [],
}


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield prefix + str(pattern.pattern), name


ROUTES = list(dict.fromkeys(_walk(get_resolver().url_patterns)))


def group_of(route: str) -> str:
    if any(re.search(public, route) for public, _ in PUBLIC):
        return "public"
    for group, prefix in GROUPS:
        if re.search(prefix, route):
            return group
    return "none"


@pytest.fixture
def data(api, settings):
    """A program, a tracking link, the partner alice (with a login) and her order o-1 with
    its commission, contact, notification and payout; a staff user and an API key."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    program = ProgramFactory(priority=1, rates={1: {"sale_amount": "10.00"}})
    alice = partner_with_login("alice")
    sell(api, "o-1", "2026-11-18T10:00:00Z", "70.00", "alice")
    api.post(
        "/api/v1/payouts/",
        {"start": "2026-11-01", "end": "2026-11-30", "method": "earned_in_range"},
        format="json",
    )
    _, key = api_key_create(name="matrix")
    return {
        "program": program,
        "link": TrackingLinkFactory(),
        "alice": alice,
        "commission": Commission.objects.get(partner=alice),
        "contact": Contact.objects.get(),
        "notification": Notification.objects.filter(partner=alice).first(),
        "batch": PayoutBatch.objects.get(),
        "staff": StaffFactory(),
        "key": key,
        "resource": resource_create(
            data={"kind": "social", "title": "Post", "text": "Try this shop: {link}"}
        ),
        # A finished preview (SPEC §13): its page, status and CSV are staff's only.
        "simulation": SimulationRun.objects.create(
            kind=SimulationKind.DEFAULTS,
            created_at=timezone.now(),
            start=datetime(2026, 11, 1, tzinfo=UTC),
            end=datetime(2026, 12, 1, tzinfo=UTC),
            status=SimulationStatus.DONE,
            answer=SIMULATION_ANSWER,
        ),
    }


# Which object a route's `pk` names, by where the route starts.
PK_OF = [
    (("staff/programs/", "api/v1/^programs/"), "program"),
    (("staff/tracking-links/",), "link"),
    (("staff/settings/resources/",), "resource"),
    (("staff/contacts/",), "contact"),
    (("staff/payouts/", "api/v1/^payouts/"), "batch"),
    (("partner/commissions/", "api/v1/^commissions/"), "commission"),
    (("api/v1/^notifications/",), "notification"),
    (("staff/simulations/",), "simulation"),
]


def sample(route: str, name: str, converter: str | None, data: dict) -> str:
    """A value for a route's argument: a real object's where this test knows it."""
    if converter == "drf_format_suffix":
        return ".json"
    if name == "format":
        return "json"
    if name == "code":
        if "tracking-links" in route:
            return data["link"].code
        return "alice" if route.startswith(("staff/", "api/v1/")) else UNKNOWN
    if name == "pk":
        for prefixes, key in PK_OF:
            if route.startswith(prefixes) and data[key] is not None:
                return str(data[key].pk)
        return "999999"
    if name == "order_id":
        return "o-1"
    if name == "payment_id":
        return str(data["batch"].payments.get().pk)
    if name == "outcome":
        return "paid"
    if name == "app_label":
        return "partners"
    if name == "url":
        return "no/such/page/"
    if name in ("id", "object_id", "content_type_id"):
        return str(data["staff"].pk)
    return UNKNOWN


def concrete(route: str, data: dict) -> tuple[str, bool]:
    """The URL to request for a route, and whether every argument names a real object."""
    guessed = []

    def fill(name: str, converter: str | None) -> str:
        value = sample(route, name, converter, data)
        guessed.append(value in (UNKNOWN, "999999"))
        return value

    path = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", lambda m: fill(m.group(1), None), route)
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: fill(m.group(2), m.group(1)), path)
    path = path.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".")
    return "/" + quote(path, safe="/.-_~"), not any(guessed)


def clients(data: dict) -> dict:
    partner = Client()
    partner.force_login(data["alice"].user)
    staff = Client()
    staff.force_login(data["staff"])
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {data['key']}")
    return {"anonymous": Client(), "partner": partner, "staff": staff, "api-key": key}


def is_login_redirect(response, login: str) -> bool:
    return response.status_code == 302 and response["Location"].startswith(f"{login}?next=")


@pytest.mark.parametrize(("route", "name"), ROUTES, ids=[route for route, _ in ROUTES])
def test_every_route_lets_in_only_who_may(data, route, name):
    group = group_of(route)
    assert group != "none", f"{route} ({name}) is in no group: give it a login or add it to PUBLIC"
    url, real = concrete(route, data)
    who = clients(data)

    method = "get"
    if who["staff"].get(url).status_code == 405:
        method = "post"  # a POST-only route: knock with a POST
    body = {"data": "{}", "content_type": "application/json"} if method == "post" else {}
    answers = {role: getattr(client, method)(url, **body) for role, client in who.items()}
    status = {role: response.status_code for role, response in answers.items()}
    assert 500 not in status.values(), status

    if group == "public":
        for response in answers.values():
            assert response.status_code not in (401, 403), (url, status)
            assert not is_login_redirect(response, "/accounts/login/"), url
            assert not is_login_redirect(response, "/admin/login/"), url
    elif group == "staff":
        assert is_login_redirect(answers["anonymous"], "/accounts/login/"), (url, status)
        assert status["partner"] == 403, (url, status)
        ok = {"get": {200} if real else {200, 404}, "post": {200, 302, 400, 404}}[method]
        assert status["staff"] in ok, (url, status)
    elif group == "partner-center":
        assert is_login_redirect(answers["anonymous"], "/partner/login/"), (url, status)
        assert status["staff"] == 403, (url, status)
        assert status["partner"] in ({200} if real else {200, 404}), (url, status)
    elif group == "admin":
        for role in ("anonymous", "partner"):
            assert is_login_redirect(answers[role], "/admin/login/"), (url, role, status)
        assert not is_login_redirect(answers["staff"], "/admin/login/"), (url, status)
        assert status["staff"] not in (401,), (url, status)
        if name and re.search(r"(^admin:(index|app_list)|_changelist)$", name):
            assert status["staff"] == 200, (url, status)
    elif group == "api":
        assert status["anonymous"] == 401, (url, status)
        assert answers["anonymous"]["WWW-Authenticate"] == "Bearer"
        assert status["partner"] == 403, (url, status)
        for role in ("staff", "api-key"):
            if method == "get":
                assert status[role] in ({200} if real else {200, 404}), (url, role, status)
            else:
                # 200: an action on an object that exists (a payment marked failed).
                assert status[role] in (200, 201, 400, 404), (url, role, status)


def test_resources_show_each_partner_only_their_own_link(data):
    """The Resources page fills in the logged-in partner's link, never another's (SPEC §12)."""
    bob = partner_with_login("bob")
    for partner, other in ((data["alice"], "bob"), (bob, "alice")):
        client = Client()
        client.force_login(partner.user)
        body = client.get("/partner/resources/").content.decode()
        assert f"Try this shop: http://127.0.0.1:8000/go/{partner.code}/" in body
        assert f"/go/{other}/" not in body


def test_my_recruits_shows_each_partner_only_their_own(data):
    """My recruits lists the logged-in partner's recruits and their own recruit link, never
    another partner's (SPEC §12); the page takes no partner from the address."""
    bob = partner_with_login("bob")
    PartnerFactory(code="alices-recruit", name="Alice's recruit", parent=data["alice"])
    PartnerFactory(code="bobs-recruit", name="Bob's recruit", parent=bob)
    for partner, mine, theirs in (
        (data["alice"], "alices-recruit", "bobs-recruit"),
        (bob, "bobs-recruit", "alices-recruit"),
    ):
        client = Client()
        client.force_login(partner.user)
        for query in ("", "?partner=alice", "?partner=bob", f"?code={theirs}"):
            response = client.get(f"/partner/recruits/{query}")
            body = response.content.decode()
            assert response.status_code == 200
            assert [r["code"] for r in response.context["recruits"]] == [mine]
            assert theirs not in body
            other = "bob" if partner.code == "alice" else "alice"
            assert f"/go/{other}/" not in body


def test_every_public_route_is_on_the_list_for_a_reason():
    public = {route for route, _ in ROUTES if group_of(route) == "public"}

    assert all(reason for _, reason in PUBLIC)
    for expected in ("go/<str:code>/", "partner/login/", "healthz", "accounts/login/"):
        assert expected in public
    for private in ("staff/", "partner/", "api/v1/", "admin/"):
        assert private not in public


# Every write the API takes, and the Django permission a staff session needs for it (issue
# 21, finding 1). A write route missing here fails the walk below until it is added.
WRITE_PERMISSION = {
    ("api/v1/defaults/", "PUT"): "partners.change_referraldefaults",
    ("api/v1/defaults/", "PATCH"): "partners.change_referraldefaults",
    ("api/v1/^partners/$", "POST"): "partners.add_partner",
    ("api/v1/^partners/(?P<code>[^/.]+)/$", "PUT"): "partners.change_partner",
    ("api/v1/^partners/(?P<code>[^/.]+)/$", "PATCH"): "partners.change_partner",
    ("api/v1/^programs/$", "POST"): "partners.add_program",
    ("api/v1/^programs/(?P<pk>[^/.]+)/$", "PUT"): "partners.change_program",
    ("api/v1/^programs/(?P<pk>[^/.]+)/$", "PATCH"): "partners.change_program",
    ("api/v1/^tracking-links/$", "POST"): "partners.add_trackinglink",
    ("api/v1/^tracking-links/(?P<code>[^/.]+)/$", "PUT"): "partners.change_trackinglink",
    ("api/v1/^tracking-links/(?P<code>[^/.]+)/$", "PATCH"): "partners.change_trackinglink",
    ("api/v1/^referrals/$", "POST"): "commissions.add_referral",
    ("api/v1/^payouts/$", "POST"): "commissions.add_payoutbatch",
    ("api/v1/^payouts/(?P<pk>[^/.]+)/$", "DELETE"): "commissions.add_payoutbatch",
    ("api/v1/^payouts/(?P<pk>[^/.]+)/confirm/$", "POST"): "commissions.add_payoutbatch",
    (
        "api/v1/^payouts/(?P<pk>[^/.]+)/payments/(?P<payment_id>\\d+)/paid/$",
        "POST",
    ): "commissions.add_payoutbatch",
    (
        "api/v1/^payouts/(?P<pk>[^/.]+)/payments/(?P<payment_id>\\d+)/failed/$",
        "POST",
    ): "commissions.add_payoutbatch",
    ("api/v1/events/web-forms/", "POST"): "commissions.add_lead",
    ("api/v1/events/orders/", "POST"): "commissions.add_order",
    ("api/v1/events/refunds/", "POST"): "commissions.add_refund",
    ("api/v1/events/payments/", "POST"): "commissions.add_orderpayment",
    # The what-if replay writes nothing, but shows what commissions would be (issue 19).
    ("api/v1/simulations/", "POST"): "commissions.view_commission",
    # The commission lifecycle and coupons (issue 17).
    ("api/v1/^commissions/(?P<pk>[^/.]+)/approve/$", "POST"): "commissions.change_commission",
    ("api/v1/^commissions/(?P<pk>[^/.]+)/reject/$", "POST"): "commissions.change_commission",
    ("api/v1/^coupons/$", "POST"): "partners.add_coupon",
    ("api/v1/^coupons/(?P<pk>[^/.]+)/$", "PUT"): "partners.change_coupon",
    ("api/v1/^coupons/(?P<pk>[^/.]+)/$", "PATCH"): "partners.change_coupon",
    ("api/v1/^coupons/(?P<pk>[^/.]+)/$", "DELETE"): "partners.delete_coupon",
    # Partner overrides (issue 16).
    ("api/v1/partners/<str:code>/rates/", "POST"): "partners.add_partneroverride",
    ("api/v1/partners/<str:code>/rates/<int:pk>/", "PUT"): "partners.change_partneroverride",
    ("api/v1/partners/<str:code>/rates/<int:pk>/", "PATCH"): "partners.change_partneroverride",
    ("api/v1/partners/<str:code>/rates/<int:pk>/", "DELETE"): "partners.delete_partneroverride",
}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def api_writes(data: dict) -> list[tuple[str, str, str]]:
    """(route, URL, method) of every write the API allows, read from each route's `Allow`."""
    key = clients(data)["api-key"]
    found = []
    for route, _ in ROUTES:
        if group_of(route) != "api" or "format" in route:
            continue
        url, _ = concrete(route, data)
        allowed = key.options(url)["Allow"].replace(" ", "").split(",")
        found += [(route, url, method) for method in WRITES if method in allowed]
    return found


def table_counts() -> dict[str, int]:
    from django.apps import apps

    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_a_staff_session_without_permissions_writes_nothing_through_the_api(data):
    """A staff login with no rights reads the API but every write is a 403 that writes
    nothing, events included (a session could record orders with commissions before)."""
    from tests.factories import UserFactory

    bare = Client()
    bare.force_login(UserFactory(is_staff=True))
    writes = api_writes(data)
    assert {(route, method) for route, _, method in writes} == set(WRITE_PERMISSION)
    before = table_counts()

    for route, url, method in writes:
        body = {"event_id": "e-1", "order_id": "o-2", "amount": "5.00", "sale_partner": "alice"}
        response = bare.generic(method, url, json.dumps(body), "application/json")
        assert response.status_code == 403, (method, url, response.status_code)
        assert WRITE_PERMISSION[route, method] in response.json()["detail"]

    assert table_counts() == before
    assert bare.get("/api/v1/partners/").status_code == 200


@pytest.mark.parametrize(
    ("route", "method"), list(WRITE_PERMISSION), ids=[f"{m} {r}" for r, m in WRITE_PERMISSION]
)
def test_each_api_write_is_open_to_a_staff_session_with_its_one_permission(data, route, method):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    app_label, codename = WRITE_PERMISSION[route, method].split(".")
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    holder = Client()
    holder.force_login(user)
    url, _ = concrete(route, data)

    response = holder.generic(method, url, "{}", "application/json")

    assert response.status_code in (200, 201, 400, 404), (method, url, response.status_code)
