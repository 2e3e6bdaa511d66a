"""Who may use the JSON API (SPEC §6): API keys, staff sessions, and nobody else."""

import hashlib
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from partners.models import (
    ApiKey,
    DefaultsChange,
    Partner,
    Program,
    ProgramRate,
    ReferralDefaults,
    TrackingLink,
)
from partners.services.api_keys import api_key_create, api_keys_revoke
from tests.factories import (
    PartnerFactory,
    ProgramFactory,
    StaffFactory,
    TrackingLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def database_state() -> dict:
    """Every row the API can write, to show a refused request changed nothing."""
    return {
        "defaults": list(ReferralDefaults.objects.values()),
        "changes": list(DefaultsChange.objects.values()),
        "partners": list(Partner.objects.order_by("pk").values()),
        "programs": list(Program.objects.order_by("pk").values()),
        "rates": list(ProgramRate.objects.order_by("pk").values()),
        "links": list(TrackingLink.objects.order_by("pk").values()),
    }


@pytest.fixture
def objects(db):
    """One of each resource, so that every detail route has something to find."""
    program = ProgramFactory(name="Standard")
    partner = PartnerFactory(code="alpha1", program=program)
    link = TrackingLinkFactory(code="haircare", is_default=True)
    return {"partner": partner.code, "program": program.pk, "link": link.code}


# Every route with a request that would change something if it were let through.
ROUTES = [
    pytest.param("get", "/api/v1/", None, id="root"),
    pytest.param("get", "/api/v1/defaults/", None, id="defaults-get"),
    pytest.param("patch", "/api/v1/defaults/", {"levels": 3}, id="defaults-patch"),
    pytest.param(
        "put",
        "/api/v1/defaults/",
        {
            "code_prefix": "vip-",
            "skip_notifications": True,
            "partner_selection": "first",
            "tracking_method": "cookies_only",
            "use_ip_address": True,
            "link_url": "https://go.shop.example",
            "levels": 3,
            "payout_on_lead": True,
            "payout_on_sale": False,
            "payout_amount": False,
            "payout_percent": True,
            "pay_if_unused": True,
        },
        id="defaults-put",
    ),
    pytest.param("get", "/api/v1/partners/", None, id="partners-list"),
    pytest.param(
        "post",
        "/api/v1/partners/",
        {"name": "Mallory", "email": "mallory@example.com"},
        id="partners-create",
    ),
    pytest.param("get", "/api/v1/partners/{partner}/", None, id="partner-get"),
    pytest.param(
        "put",
        "/api/v1/partners/{partner}/",
        {"name": "Renamed", "email": "renamed@example.com"},
        id="partner-put",
    ),
    pytest.param(
        "patch", "/api/v1/partners/{partner}/", {"status": "inactive"}, id="partner-patch"
    ),
    pytest.param("get", "/api/v1/programs/", None, id="programs-list"),
    pytest.param("post", "/api/v1/programs/", {"name": "Gold"}, id="programs-create"),
    pytest.param("get", "/api/v1/programs/{program}/", None, id="program-get"),
    pytest.param("put", "/api/v1/programs/{program}/", {"name": "Gold"}, id="program-put"),
    pytest.param(
        "patch",
        "/api/v1/programs/{program}/",
        {"rates": [{"level": 1, "sale_percent": "50"}]},
        id="program-patch",
    ),
    pytest.param("get", "/api/v1/tracking-links/", None, id="links-list"),
    pytest.param(
        "post",
        "/api/v1/tracking-links/",
        {"code": "shoes", "name": "Shoes", "destination": "https://shop.example/shoes"},
        id="links-create",
    ),
    pytest.param("get", "/api/v1/tracking-links/{link}/", None, id="link-get"),
    pytest.param(
        "put",
        "/api/v1/tracking-links/{link}/",
        {"code": "haircare", "name": "Hair", "destination": "https://evil.example/"},
        id="link-put",
    ),
    pytest.param("patch", "/api/v1/tracking-links/{link}/", {"is_default": False}, id="link-patch"),
]
READ_ROUTES = [route for route in ROUTES if route.values[0] == "get"]


def send(client: APIClient, method: str, url: str, body, objects: dict):
    return getattr(client, method)(url.format(**objects), body, format="json")


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_no_credentials_is_401_with_a_bearer_challenge(method, url, body, objects):
    before = database_state()

    response = send(APIClient(), method, url, body, objects)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert database_state() == before


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_a_logged_in_user_who_is_not_staff_is_403(method, url, body, objects):
    client = APIClient()
    client.force_login(UserFactory())
    before = database_state()

    response = send(client, method, url, body, objects)

    assert response.status_code == 403
    assert database_state() == before


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_a_revoked_key_is_401(method, url, body, objects):
    key, raw_key = api_key_create(name="old shop")
    api_keys_revoke(keys=ApiKey.objects.filter(pk=key.pk))
    before = database_state()

    response = send(key_client(raw_key), method, url, body, objects)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key."}
    assert database_state() == before


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer rp_not-a-key-anyone-was-given", id="unknown-key"),
        pytest.param("Bearer", id="no-key"),
        pytest.param("Bearer two words", id="two-words"),
        pytest.param("Bearer ", id="blank"),
    ],
)
@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_a_wrong_key_is_401(method, url, body, authorization, objects):
    api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    before = database_state()

    response = send(client, method, url, body, objects)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert database_state() == before


@pytest.mark.parametrize(("method", "url", "body"), READ_ROUTES)
def test_a_valid_key_reads_every_route(method, url, body, objects):
    _, raw_key = api_key_create(name="shop")

    response = send(key_client(raw_key), method, url, body, objects)

    assert response.status_code == 200


@pytest.mark.parametrize(("method", "url", "body"), READ_ROUTES)
def test_a_staff_session_reads_every_route(method, url, body, objects):
    client = APIClient()
    client.force_login(UserFactory(is_staff=True))

    response = send(client, method, url, body, objects)

    assert response.status_code == 200


def test_a_key_stops_working_once_revoked(objects):
    key, raw_key = api_key_create(name="shop")
    client = key_client(raw_key)
    assert client.get("/api/v1/partners/").status_code == 200

    api_keys_revoke(keys=ApiKey.objects.filter(pk=key.pk))

    assert client.get("/api/v1/partners/").status_code == 401


@pytest.mark.parametrize(
    ("method", "url", "body", "permission"),
    [
        pytest.param(
            "post",
            "/api/v1/partners/",
            {"name": "Mallory", "email": "mallory@example.com"},
            "add_partner",
            id="partner-create",
        ),
        pytest.param(
            "patch",
            "/api/v1/partners/{partner}/",
            {"status": "inactive"},
            "change_partner",
            id="partner-patch",
        ),
        pytest.param("post", "/api/v1/programs/", {"name": "Gold"}, "add_program", id="program"),
        pytest.param(
            "patch",
            "/api/v1/programs/{program}/",
            {"name": "Gold"},
            "change_program",
            id="program-patch",
        ),
        pytest.param(
            "post",
            "/api/v1/tracking-links/",
            {"code": "shoes", "name": "Shoes", "destination": "https://shop.example/shoes"},
            "add_trackinglink",
            id="link-create",
        ),
        pytest.param(
            "patch",
            "/api/v1/tracking-links/{link}/",
            {"name": "Hair"},
            "change_trackinglink",
            id="link-patch",
        ),
        pytest.param(
            "patch",
            "/api/v1/defaults/",
            {"levels": 3},
            "change_referraldefaults",
            id="defaults-patch",
        ),
    ],
)
def test_session_writes_need_the_models_permission(method, url, body, permission, objects):
    user = UserFactory(is_staff=True)
    client = APIClient()
    client.force_login(user)
    before = database_state()

    refused = send(client, method, url, body, objects)

    assert refused.status_code == 403
    assert database_state() == before

    user.user_permissions.add(Permission.objects.get(codename=permission))
    client.force_login(type(user).objects.get(pk=user.pk))  # a fresh permission cache

    allowed = send(client, method, url, body, objects)

    assert allowed.status_code == (201 if method == "post" else 200)


def test_a_superuser_session_writes(objects):
    client = APIClient()
    client.force_login(StaffFactory())

    response = client.patch("/api/v1/partners/alpha1/", {"status": "inactive"}, format="json")

    assert response.status_code == 200
    assert Partner.objects.get(code="alpha1").status == "inactive"


def test_the_key_row_holds_only_a_hash():
    key, raw_key = api_key_create(name="shop backend")

    row = ApiKey.objects.filter(pk=key.pk).values().get()

    assert row["key_hash"] == hashlib.sha256(raw_key.encode()).hexdigest()
    assert row["name"] == "shop backend"
    assert row["prefix"] == raw_key[:10]
    assert all(raw_key not in str(value) for value in row.values())
    # Not even the secret part after the prefix is kept.
    assert all(raw_key[10:] not in str(value) for value in row.values())


def test_create_api_key_prints_a_working_key_on_its_last_line(objects):
    out = StringIO()

    call_command("create_api_key", "--name", "shop backend", stdout=out)

    raw_key = out.getvalue().splitlines()[-1]
    key = ApiKey.objects.get()
    assert key.name == "shop backend"
    assert key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert key.revoked_at is None
    assert "shown only this once" in out.getvalue()
    assert key_client(raw_key).get("/api/v1/partners/").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--name", "   "), "Give the key a name.", id="blank-name"),
        pytest.param((), "the following arguments are required: --name", id="no-name"),
    ],
)
def test_create_api_key_refuses_a_key_without_a_name(args, message):
    out = StringIO()

    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=out)

    assert out.getvalue() == ""
    assert not ApiKey.objects.exists()
