"""Hostile input at every door (issue 7, part 2): oversized bodies, deep JSON, wrong content
types, NUL bytes, unpaired surrogates and invalid UTF-8, 10,000-character names and emails,
amounts like 1e309, NaN, -0, 0.001 and 10^15. Each is refused with a 4xx that names the
field where there is one, nothing is written, and nothing is logged with a stack trace."""

import io
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from commissions.models import Commission, Contact, Event, Lead, Order, PayoutBatch, Refund
from partners.models import Partner, Program
from referral_program.parsers import MAX_DEPTH
from referral_program.security import QuietClientErrors
from tests.factories import PartnerFactory, ProgramFactory
from tests.functional.test_partner_center import PASSWORD, logged_in, partner_with_login

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
ORDERS, FORMS, REFUNDS = (
    "/api/v1/events/orders/",
    "/api/v1/events/web-forms/",
    "/api/v1/events/refunds/",
)
LONG = 10_000
LONG_EMAIL = "a" * (LONG - len("@example.com")) + "@example.com"
MODELS = (Event, Contact, Lead, Order, Refund, Commission, PayoutBatch, Partner, Program)


def fixture(name: str, **changes) -> dict:
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), **changes}


def rows() -> dict[str, int]:
    """How many rows every door of this test can write."""
    counts = {model.__name__: model.objects.count() for model in MODELS}
    counts["User"] = get_user_model().objects.count()
    return counts


def error_at(errors, path: tuple[str, ...]) -> list[str]:
    """The messages at `path` of a 400's errors (list positions as "0", "1"...)."""
    node = errors
    for name in path:
        node = node[int(name)] if isinstance(node, list) else node[name]
    assert isinstance(node, list) and node and all(isinstance(m, str) for m in node), node
    return node


@pytest.fixture
def console():
    """What the site's console log handler (settings.LOGGING) writes during the test."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, QuietClientErrors) for f in h.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.fixture
def shop(api):
    """An active program and partner, one order to refund; the key's client."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    PartnerFactory(code="alice")
    response = api.post(ORDERS, fixture("order", sale_partner="alice"), format="json")
    assert response.status_code == 201
    return api


def nested(depth: int) -> list:
    """Lists in lists, `depth` levels deep (the event around them adds one)."""
    return json.loads("[" * depth + "]" * depth)


def post_json(client, url: str, body: str | bytes, content_type: str = "application/json"):
    return client.generic("POST", url, body, content_type=content_type)


# --- Events API: every string and every amount ------------------------------------------------


def order_with(path: tuple[str, ...], value) -> dict:
    body = fixture("order", event_id="hostile-1")
    node = body
    for name in path[:-1]:
        node = node[int(name)] if isinstance(node, list) else node[name]
    key = path[-1]
    if isinstance(node, list):
        node[int(key)] = value
    else:
        node[key] = value
    return body


FIELD_CASES = [
    pytest.param(("contact", "first_name"), "Ada\x00", id="nul-in-a-name"),
    pytest.param(("contact", "email"), "ada\x00@example.com", id="nul-in-the-email"),
    pytest.param(("items", "0", "sku"), "SHAM\x00POO", id="nul-in-an-item"),
    pytest.param(("note",), "not\x00read", id="nul-in-a-field-nobody-reads"),
    pytest.param(("contact", "last_name"), "By\ud800ron", id="unpaired-surrogate-in-a-name"),
    pytest.param(("note",), "\udfff", id="unpaired-surrogate-in-a-field-nobody-reads"),
    pytest.param(("contact", "email"), LONG_EMAIL, id="10000-character-email"),
    pytest.param(("contact", "first_name"), "A" * LONG, id="10000-character-name"),
    pytest.param(("items", "0", "description"), "D" * LONG, id="10000-character-description"),
    pytest.param(("event_id",), "e" * LONG, id="10000-character-event-id"),
]
AMOUNTS = [
    pytest.param("1e309", id="1e309"),
    pytest.param("NaN", id="NaN"),
    pytest.param("Infinity", id="Infinity"),
    pytest.param("-0", id="minus-0"),
    pytest.param("-0.00", id="minus-0.00"),
    pytest.param("0.001", id="0.001"),
    pytest.param("1000000000000000", id="10^15"),
    pytest.param("1E+15", id="1E+15"),
    pytest.param("-1", id="negative"),
    pytest.param("12,50", id="comma"),
]
AMOUNT_FIELDS = [
    pytest.param(("items", "0", "unit_price"), id="unit_price"),
    pytest.param(("discount",), id="discount"),
    pytest.param(("shipping",), id="shipping"),
    pytest.param(("tax",), id="tax"),
]


@pytest.mark.parametrize(("path", "value"), FIELD_CASES)
def test_a_bad_string_in_an_order_is_a_400_naming_the_field(shop, console, path, value):
    before = rows()

    response = post_json(shop, ORDERS, json.dumps(order_with(path, value)))

    assert response.status_code == 400
    assert error_at(response.json(), path)
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize("value", AMOUNTS)
@pytest.mark.parametrize("path", AMOUNT_FIELDS)
def test_a_bad_amount_in_an_order_is_a_400_naming_the_field(shop, console, path, value):
    before = rows()

    response = shop.post(ORDERS, order_with(path, value), format="json")

    assert response.status_code == 400
    assert error_at(response.json(), path)
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize("value", AMOUNTS)
def test_a_bad_refund_amount_is_a_400_naming_the_field(shop, console, value):
    before = rows()

    response = shop.post(
        REFUNDS, {"event_id": "r-1", "order_id": "order-1001", "amount": value}, format="json"
    )

    assert response.status_code == 400
    assert error_at(response.json(), ("amount",))
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize("value", AMOUNTS)
def test_a_bad_payout_minimum_is_a_400_naming_the_field(shop, value):
    before = rows()

    response = shop.post(
        "/api/v1/payouts/",
        {"start": "2026-11-01", "end": "2026-11-30", "method": "earned_in_range", "minimum": value},
        format="json",
    )

    assert response.status_code == 400
    assert error_at(response.json(), ("minimum",))
    assert rows() == before


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("contact", "first_name"), "Ada\x00", id="nul-in-a-name"),
        pytest.param(("form",), "news\ud800letter", id="unpaired-surrogate-in-the-form"),
        pytest.param(("contact", "email"), LONG_EMAIL, id="10000-character-email"),
        pytest.param(("contact", "last_name"), "B" * LONG, id="10000-character-name"),
        pytest.param(("ip",), "300.1.1.1", id="not-an-ip-address"),
    ],
)
def test_a_bad_web_form_is_a_400_naming_the_field(shop, console, path, value):
    body = fixture("web_form")
    node = body
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    before = rows()

    response = post_json(shop, FORMS, json.dumps(body))

    assert response.status_code == 400
    assert error_at(response.json(), path)
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("name", "N" * LONG, id="10000-character-name"),
        pytest.param("email", LONG_EMAIL, id="10000-character-email"),
        pytest.param("name", "Jane\x00", id="nul-in-the-name"),
        pytest.param("code", "ja\x00ne", id="nul-in-the-code"),
        pytest.param("name", "Ja\udc00ne", id="unpaired-surrogate-in-the-name"),
        pytest.param("cookie_days", 10**15, id="cookie-days-10^15"),
        pytest.param("cookie_days", "NaN", id="cookie-days-NaN"),
    ],
)
def test_a_bad_partner_through_the_api_is_a_400_naming_the_field(shop, field, value):
    before = rows()
    body = {"code": "jane", "name": "Jane", "email": "jane@example.com", field: value}

    response = post_json(shop, "/api/v1/partners/", json.dumps(body))

    assert response.status_code == 400
    assert error_at(response.json(), (field,))
    assert rows() == before


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1e309", id="1e309"),
        pytest.param("NaN", id="NaN"),
        pytest.param("0.001", id="0.001"),
        pytest.param("1000000000000000", id="10^15"),
    ],
)
def test_a_bad_program_rate_through_the_api_is_a_400_naming_the_field(shop, value):
    before = rows()

    response = shop.post(
        "/api/v1/programs/",
        {"name": "Gold", "rates": [{"level": 1, "sale_amount": value}]},
        format="json",
    )

    assert response.status_code == 400
    assert error_at(response.json(), ("rates", "0", "sale_amount"))
    assert rows() == before


# --- Events API: the body itself -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("[" * 100_000, "nested", id="100000-levels-deep"),
        pytest.param(
            json.dumps({**fixture("order"), "extra": nested(MAX_DEPTH)}),
            "nested",
            id="one-level-too-deep",
        ),
        pytest.param(b'{"event_id": "\xff\xfe"}', "JSON parse error", id="invalid-utf-8"),
        pytest.param('{"event_id": "o", "discount": NaN}', "JSON parse error", id="NaN-literal"),
        pytest.param('{"event_id": "o", "items": [', "JSON parse error", id="cut-short"),
    ],
)
def test_a_broken_json_body_is_a_400(shop, console, body, message):
    before = rows()

    response = post_json(shop, ORDERS, body)

    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param('"discount": 1e309', ("discount",), id="an-amount"),
        pytest.param('"note": [1, -1e400]', ("note", "1"), id="a-field-nobody-reads"),
    ],
)
def test_a_number_too_large_for_a_float_is_a_400_naming_the_field(shop, console, body, path):
    before = rows()
    order = json.dumps(fixture("order", event_id="huge"))

    response = post_json(shop, ORDERS, order[:-1] + ", " + body + "}")

    assert response.status_code == 400
    assert error_at(response.json(), path) == [
        "This number is too large to be read (write amounts as decimal strings)."
    ]
    assert rows() == before
    assert "Traceback" not in console.getvalue()


def test_json_nested_as_deep_as_allowed_is_read(shop):
    body = {**fixture("order", event_id="deep"), "extra": nested(MAX_DEPTH - 1)}

    response = shop.post(ORDERS, body, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[]", id="a-list"),
        pytest.param('"order"', id="a-string"),
        pytest.param("null", id="null"),
        pytest.param("", id="empty"),
    ],
)
def test_a_body_that_is_no_object_is_a_400(shop, body):
    before = rows()

    response = post_json(shop, ORDERS, body)

    assert response.status_code == 400
    assert rows() == before


def test_a_nul_in_a_field_name_is_a_400_naming_it_printably(shop):
    before = rows()

    response = post_json(shop, ORDERS, json.dumps({**fixture("order"), "no\x00te": "x"}))

    assert response.status_code == 400
    assert error_at(response.json(), ("no\\x00te",)) == [
        "In this field's name: NUL characters are not allowed."
    ]
    assert rows() == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
    ],
)
def test_a_body_that_is_not_json_is_a_415(shop, content_type):
    before = rows()

    response = post_json(shop, ORDERS, json.dumps(fixture("order")), content_type=content_type)

    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]
    assert rows() == before


# --- Body size --------------------------------------------------------------------------------


def largest_order(event_id: str) -> dict:
    """1,000 items (the most an order may have) with the longest SKU and description, in
    4-byte characters: the largest valid order, about 2.5 MB of JSON."""
    item = {"sku": "\U0001f9f4" * 100, "description": "\U0001f9f4" * 500, "quantity": 1}
    return {
        "event_id": event_id,
        "contact": {"email": "big@example.com"},
        "items": [{**item, "unit_price": "1.25"} for _ in range(1000)],
    }


def test_the_largest_valid_order_is_under_the_limit_and_recorded(shop, settings):
    body = json.dumps(largest_order("big-1"), ensure_ascii=False).encode()
    assert 2_400_000 < len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = post_json(shop, ORDERS, body)

    assert response.status_code == 201
    assert response.json()["base"] == "1250.00"
    assert len(Order.objects.get(order_id="big-1").items) == 1000


def test_a_body_of_exactly_the_limit_is_read(shop, settings):
    body = json.dumps(fixture("order", event_id="padded")).encode()
    body += b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(body))

    response = post_json(shop, ORDERS, body)

    assert response.status_code == 201


@pytest.mark.parametrize("url", [ORDERS, FORMS, REFUNDS, "/api/v1/partners/"])
def test_an_api_body_over_the_limit_is_a_413_and_not_read(shop, console, settings, url):
    before = rows()
    body = b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = post_json(shop, url, body)

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 4 MiB."}
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert rows() == before
    assert "Refused a body of 4194305 bytes" in console.getvalue()
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize(
    "url",
    ["/staff/partners/new/", "/partner/login/", "/accounts/login/", "/partner/signup/", "/f/any/"],
)
def test_a_form_body_over_the_limit_is_a_413(staff_client, console, settings, url):
    before = rows()
    body = "name=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = staff_client.generic(
        "POST", url, body, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 413
    assert response.content.decode() == "The request body is larger than 4 MiB."
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1_000, UPLOAD_MAX_BYTES=5_000)
@pytest.mark.parametrize(("size", "refused"), [(4_000, False), (5_001, True)])
def test_file_uploads_have_a_limit_of_their_own(staff_client, size, refused):
    upload = io.BytesIO(b"code,name,email\n" + b"x" * size)
    upload.name = "partners.csv"

    response = staff_client.post(
        "/admin/partners/partner/import/", {"format": "0", "import_file": upload}
    )

    assert (response.status_code == 413) is refused
    assert Partner.objects.count() == 0


# --- Django forms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("name", "N" * LONG, id="10000-character-name"),
        pytest.param("email", LONG_EMAIL, id="10000-character-email"),
        pytest.param("name", "Jane\x00Doe", id="nul-in-the-name"),
        pytest.param("code", "ja\x00ne", id="nul-in-the-code"),
        pytest.param("cookie_days", "1e309", id="cookie-days-1e309"),
        pytest.param("cookie_days", "NaN", id="cookie-days-NaN"),
    ],
)
def test_a_bad_staff_partner_form_shows_the_field_error_and_saves_nothing(
    staff_client, console, field, value
):
    data = {"code": "jane", "name": "Jane", "email": "jane@example.com", "status": "active"}
    before = rows()

    response = staff_client.post("/staff/partners/new/", {**data, field: value})

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert rows() == before
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1e309", id="1e309"),
        pytest.param("NaN", id="NaN"),
        pytest.param("Infinity", id="Infinity"),
        pytest.param("0.001", id="0.001"),
        pytest.param("1000000000000000", id="10^15"),
        pytest.param("-1", id="negative"),
    ],
)
def test_a_bad_rate_on_the_program_form_shows_the_field_error(staff_client, value):
    before = rows()

    response = staff_client.post(
        "/staff/programs/new/", {"name": "Gold", "priority": "1", "rate_1_sale_amount": value}
    )

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["rate_1_sale_amount"]
    assert rows() == before


def test_minus_zero_typed_on_the_program_form_is_read_as_zero(staff_client):
    response = staff_client.post(
        "/staff/programs/new/", {"name": "Gold", "priority": "1", "rate_1_sale_amount": "-0"}
    )

    assert response.status_code == 302
    rate = Program.objects.get().rates.get(level=1)
    assert str(rate.sale_amount) == "0.00"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("j" * LONG, PASSWORD, id="10000-character-username"),
        pytest.param(LONG_EMAIL, PASSWORD, id="10000-character-email"),
        pytest.param("ja\x00ne", PASSWORD, id="nul-in-the-username"),
        pytest.param("jane", "correct\x00horse", id="nul-in-the-password"),
        pytest.param("jane", "p" * LONG, id="10000-character-password"),
    ],
)
@pytest.mark.parametrize("url", ["/partner/login/", "/accounts/login/", "/admin/login/"])
def test_a_hostile_login_is_a_form_error(client, console, url, username, password):
    partner_with_login("jane")

    response = client.post(url, {"username": username, "password": password})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("name", "N" * LONG, id="10000-character-name"),
        pytest.param("email", LONG_EMAIL, id="10000-character-email"),
        pytest.param("name", "Jane\x00", id="nul-in-the-name"),
    ],
)
def test_a_bad_partner_profile_shows_the_field_error_and_saves_nothing(field, value):
    jane = partner_with_login("jane", name="Jane", email="jane@partners.example")
    data = {"name": "Jane", "email": "jane@partners.example", "notify_lead": "on"}

    response = logged_in(jane).post("/partner/profile/", {**data, field: value})

    assert response.status_code == 200
    assert field in response.context["form"].errors
    jane.refresh_from_db()
    assert (jane.name, jane.email) == ("Jane", "jane@partners.example")


# --- Addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/go/ali%00ce/",
        "/go/link%00/alice/",
        "/staff/partners/?q=%00",
        "/staff/partners/ali%00ce/",
        "/staff/orders/order%00-1001/",
        "/staff/reports/ledger/?partner=%00",
        "/partner/?next=%00",
        "/partner/login/?next=/partner/%00",
        "/accounts/login/?next=%00",
        "/api/v1/partners/?search=%00",
        "/api/v1/partners/ali%00ce/",
        "/admin/partners/partner/?q=%00",
    ],
)
@pytest.mark.parametrize("who", ["anonymous", "staff"])
def test_a_nul_in_the_address_is_a_400(shop, console, staff_user, url, who):
    client = Client()
    if who == "staff":
        client.force_login(staff_user)
    before = rows()

    response = client.get(url)

    assert response.status_code == 400
    assert rows() == before
    assert "Refused a NUL character in the address" in console.getvalue()
    assert "Traceback" not in console.getvalue()


# --- The log ----------------------------------------------------------------------------------


def test_a_refused_request_is_logged_as_one_line(plain_user, console):
    client = Client()
    client.force_login(plain_user)

    response = client.get("/staff/")

    assert response.status_code == 403
    logged = console.getvalue()
    assert "Forbidden (Permission denied): /staff/" in logged
    assert "Traceback" not in logged


def test_a_bad_host_header_is_logged_as_one_line(client, console):
    response = client.get("/staff/", headers={"host": "evil.example"})

    assert response.status_code == 400
    assert "Invalid HTTP_HOST header: 'evil.example'" in console.getvalue()
    assert "Traceback" not in console.getvalue()


@pytest.mark.parametrize(("status", "kept"), [(400, False), (404, False), (500, True)])
def test_only_the_sites_own_errors_keep_their_stack_trace(status, kept):
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("django.request", logging.ERROR, "", 0, "x", (), sys.exc_info())
    record.status_code = status

    assert QuietClientErrors().filter(record) is True
    assert (record.exc_info is not None) is kept
