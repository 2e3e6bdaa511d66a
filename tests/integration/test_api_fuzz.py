"""Fuzzing the JSON API with schemathesis against its own OpenAPI schema (issue 7, part 1).

Every operation of `/api/schema/` is called in-process (WSGI) with a valid API key, with
data that fits the schema and data that does not (schemathesis' positive and negative
modes). Each answer must not be a 5xx, must have a status the operation declares, and must
match the schema (status-specific body and content type); data the schema allows must be
taken and data it forbids refused, with the expectations `schemathesis.toml` states per
operation (the same file `schemathesis run --checks all` reads: which refusals of valid data
are decided rules on data or state, which invalid spellings are taken on purpose).
Whatever the answer, these must write nothing (every table's row count and contents are
compared before and after, in one query):

- a read (GET, HEAD, OPTIONS),
- a request answered 4xx, which is how the API answers every invalid request,
- the repeat of an event (`"duplicate": true`).

A body schemathesis generated invalid is refused with a 400 unless DRF reads it as a valid
value: it takes 0/1, 0.0 and "true"/"false" for a boolean, a whole number as a string or a
float for an integer, a number for a string (docs/reliability.md). Such a request may
write, like its valid spelling; every other invalid body is answered 4xx and so checked.

The in-suite run is bounded (`FUZZ_EXAMPLES` cases per operation and phase, default 8, plus
schemathesis' deterministic coverage cases); docs/reliability.md gives the longer run.
"""

import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from partners.services.api_keys import api_key_create
from referral_program.wsgi import application
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory
from tests.tables import table_snapshot

# The expectations `schemathesis run` reads from the repository root (issue 15).
CONFIG = SchemathesisConfig.from_path(Path(__file__).parents[2] / "schemathesis.toml")
# Loaded from the app itself, like /api/schema/ serves it (no database needed for that).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
# The checks of `--checks all` that judge one answer, with the expected statuses
# `schemathesis.toml` gives per operation (the others send more requests: docs/reliability.md
# gives the run against a live server).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
READS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Fuzzed:
    """What the fuzzer sends with: the key, and resources that exist, by path parameter."""

    headers: dict
    known: dict = field(default_factory=dict)  # path template -> {parameter: [values]}


def changed(before: dict, after: dict) -> dict:
    return {t: (before.get(t), after.get(t)) for t in after if before.get(t) != after.get(t)}


def negative(case, location: ParameterLocation) -> bool:
    return bool(case.meta and case.meta.is_negative_at(location))


@pytest.fixture
def fuzzed(db) -> Fuzzed:
    """Real rows behind every resource, made through the API as an integration would."""
    _, key = api_key_create(name="fuzz")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    program = ProgramFactory(
        priority=1, rates={1: {"sale_amount": Decimal("10")}, 2: {"sale_amount": Decimal("2")}}
    )
    client.patch("/api/v1/defaults/", {"levels": 2}, format="json")
    boss = PartnerFactory(code="fuzz-boss", program=program)
    jane = PartnerFactory(code="fuzz-jane", parent=boss)
    link = TrackingLinkFactory(code="fuzz-home", is_default=True)
    order = client.post(
        "/api/v1/events/orders/",
        {
            "event_id": "fuzz-order-1",
            "occurred_at": "2026-01-10T12:00:00Z",
            "contact": {"email": "ada@example.com"},
            "sale_partner": jane.code,
            "items": [{"sku": "A", "quantity": 2, "unit_price": "50.00"}],
        },
        format="json",
    )
    assert order.status_code == 201, order.content
    refund = client.post(
        "/api/v1/events/refunds/",
        {"event_id": "fuzz-refund-1", "order_id": "fuzz-order-1", "amount": "10.00"},
        format="json",
    )
    assert refund.status_code == 201, refund.content
    referral = client.post(
        "/api/v1/referrals/",
        {"contact": {"email": "bob@example.com"}, "partner": boss.code},
        format="json",
    )
    assert referral.status_code == 201, referral.content
    payout = client.post(
        "/api/v1/payouts/",
        {"start": "2026-01-01", "end": "2026-01-31", "method": "earned_in_range"},
        format="json",
    )
    assert payout.status_code == 201, payout.content

    commissions = [c["id"] for c in client.get("/api/v1/commissions/").json()["results"]]
    notifications = [n["id"] for n in client.get("/api/v1/notifications/").json()["results"]]
    # 2 lines, 2 clawbacks; 2 sale emails and the 2 payout emails of issue 17
    assert len(commissions) == 4 and len(notifications) == 4
    batch = payout.json()["id"]
    payments = [p["id"] for p in payout.json()["payments"]]
    codes = [boss.code, jane.code]
    # The WSGI handler closes the connection after each request (request_finished); inside
    # the test's transaction that would close it under the test. Django's test client
    # (used above) does the same around each of its requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield Fuzzed(
        headers={"Authorization": f"Bearer {key}"},
        known={
            "/api/v1/partners/{code}/": {"code": codes},
            "/api/v1/partners/{code}/ledger/": {"code": codes},
            "/api/v1/programs/{id}/": {"id": [program.pk]},
            "/api/v1/tracking-links/{code}/": {"code": [link.code]},
            "/api/v1/commissions/{id}/": {"id": commissions},
            "/api/v1/notifications/{id}/": {"id": notifications},
            "/api/v1/payouts/{id}/": {"id": [batch]},
            "/api/v1/payouts/{id}/confirm/": {"id": [batch]},
            "/api/v1/payouts/{id}/payments/{payment_id}/paid/": {
                "id": [batch],
                "payment_id": payments,
            },
            "/api/v1/payouts/{id}/payments/{payment_id}/failed/": {
                "id": [batch],
                "payment_id": payments,
            },
        },
    )
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_never_fails_answers_as_documented_and_refusals_write_nothing(case, data, fuzzed):
    known = fuzzed.known.get(case.path)
    checks = CHECKS
    # Half the time, a resource that exists, so updates and reads get past the 404.
    if (
        known
        and not negative(case, ParameterLocation.PATH)
        and data.draw(st.booleans(), label="an existing resource")
    ):
        case.path_parameters = {
            name: data.draw(st.sampled_from(values), label=name) for name, values in known.items()
        }
        # The invalid part of a negative case may have been the address just replaced.
        checks = [check for check in CHECKS if check is not negative_data_rejection]
    before = table_snapshot()

    response = case.call(headers=fuzzed.headers)
    case.validate_response(response, checks=checks, headers=fuzzed.headers)

    after = table_snapshot()
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    answer = response.json() if "json" in content_type[0] else None
    reasons = [
        reason
        for reason, applies in (
            ("a read", case.method.upper() in READS),
            (f"answered {response.status_code}", 400 <= response.status_code < 500),
            ("a repeated event", isinstance(answer, dict) and answer.get("duplicate") is True),
        )
        if applies
    ]
    if reasons:
        assert not changed(before, after), (
            f"{case.method} {case.formatted_path} ({', '.join(reasons)}) wrote: "
            f"{changed(before, after)}\n{response.status_code} {response.text[:500]}"
        )


# --- What the fuzzing found, pinned -------------------------------------------------------


def test_options_on_the_defaults_describes_its_writes(api):
    """It answered 500: DRF's metadata asks the view for its object to describe PUT."""
    response = api.options("/api/v1/defaults/")

    assert response.status_code == 200
    assert set(response.json()["actions"]) == {"PUT"}
    assert response.json()["actions"]["PUT"]["code_prefix"]["max_length"] == 16


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [("", True), ("vip-", True), ("with space", False), ("x" * 17, False)],
    ids=["blank", "prefix", "space", "too-long"],
)
def test_the_schema_takes_a_blank_code_prefix(api, prefix, valid):
    """drf-spectacular's `oneOf` [pattern, blank] refused "", which the pattern also takes."""
    import jsonschema_rs

    components = api.get("/api/schema/?format=json").json()["components"]["schemas"]
    for name in ("Defaults", "DefaultsSaved", "DefaultsRequest", "PatchedDefaultsRequest"):
        code_prefix = components[name]["properties"]["code_prefix"]
        assert "oneOf" not in code_prefix, name
        assert jsonschema_rs.validator_for(code_prefix).is_valid(prefix) is valid, name


@pytest.mark.parametrize(
    ("query", "count"),
    [("limit=43747065342951719698432", 3), ("limit=2", 2), ("offset=99999999999999999999", 0)],
    ids=["limit-past-bigint", "small-limit", "offset-past-bigint"],
)
def test_a_huge_page_is_cut_to_the_largest_page(api, query, count):
    """`?limit=` past PostgreSQL's bigint answered 500; a limit is now at most 1,000."""
    for n in range(3):
        PartnerFactory(code=f"page{n}")

    response = api.get(f"/api/v1/partners/?{query}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == count
    assert response.json()["count"] == 3


def test_a_limit_over_1000_gives_1000(api):
    from referral_program.pagination import Pagination

    assert Pagination.max_limit == 1000
    PartnerFactory.create_batch(1001)

    response = api.get("/api/v1/partners/?limit=5000")

    assert len(response.json()["results"]) == 1000
    assert response.json()["next"].endswith("limit=1000&offset=1000")


def test_an_order_too_large_for_the_money_columns_is_refused_with_400(api):
    from commissions.models import Event, Order

    PartnerFactory(code="jane")
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": "huge-1",
            "contact": {"email": "ada@example.com"},
            "sale_partner": "jane",
            "items": [{"sku": "A", "quantity": 38997, "unit_price": "108083224060.00"}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert "items" in response.json()
    assert (Event.objects.count(), Order.objects.count()) == (0, 0)


# --- What `schemathesis run --checks all` found (issue 15), pinned -------------------------


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("offset=null&offset=null", "offset"),
        ("offset=1&offset=2", "offset"),
        ("offset=", "offset"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=1.5", "limit"),
        ("status=active&status=inactive", "status"),
        ("program=1&program=2", "program"),
        ("program=9223372036854775808", "program"),
    ],
    ids=str,
)
def test_a_page_or_filter_parameter_that_is_not_one_valid_value_is_refused(api, query, parameter):
    """DRF read a bad `limit`/`offset` as left out and the last of several values; the
    schema says one integer (limit >= 1, offset >= 0), and a filter one value."""
    PartnerFactory(code="page0")

    response = api.get(f"/api/v1/partners/?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [parameter]


@pytest.mark.parametrize(
    "query", ["", "limit=1", "offset=0", "limit=5&offset=1", "status=", "status=active"]
)
def test_valid_page_and_filter_parameters_still_answer(api, query):
    PartnerFactory(code="page0")

    response = api.get(f"/api/v1/partners/?{query}")

    assert response.status_code == 200


def test_an_empty_ledger_day_is_all_time_as_the_schema_says(api):
    PartnerFactory(code="jane")
    schema = api.get("/api/schema/?format=json").json()
    (start,) = [
        p
        for p in schema["paths"]["/api/v1/partners/{code}/ledger/"]["get"]["parameters"]
        if p["name"] == "start"
    ]

    response = api.get("/api/v1/partners/jane/ledger/?start=&end=")

    assert response.status_code == 200
    assert (response.json()["start"], response.json()["end"]) == (None, None)
    assert {"type": "string", "maxLength": 0} in start["schema"]["anyOf"]


def test_a_path_no_route_matches_answers_json_under_api(api, client):
    response = api.get("/api/v1/commissions/1.5/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_every_operation_declares_its_error_answers(api):
    schema = api.get("/api/schema/?format=json").json()

    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            declared = set(operation["responses"])
            assert {"400", "401", "403", "503"} <= declared, (method, path)
            names_an_order = path.endswith(("/refunds/", "/payments/"))
            assert ("404" in declared) is ("{" in path or names_an_order), path
            assert ({"413", "415"} <= declared) is ("requestBody" in operation), (method, path)
            # gunicorn's 414 for a request line too long is its HTML page, before the app
            assert list(operation["responses"]["414"]["content"]) == ["text/html"], path
            for code in {c for c in declared if not c.startswith("2")} - {"414"}:  # 204: no body
                assert "application/json" in operation["responses"][code]["content"], code


@pytest.mark.parametrize(
    ("component", "field", "accepted", "refused"),
    [
        (
            "ProgramRequest",
            "unused_sale_percent",
            ["0", "100", "100.0000", "12.5", ".5"],
            ["", ".", "-1", "100.01", "101", "-.2"],
        ),
        (
            "ProgramRequest",
            "unused_sale_amount",
            ["0", "9999999999.99", "1."],
            ["", "-0.01", "1.234"],
        ),
        ("PayoutBatchRequest", "minimum", ["0", "12.34"], ["-1", "", "1.234"]),
    ],
    ids=["percent", "amount", "minimum"],
)
def test_decimal_patterns_take_what_drf_takes(api, component, field, accepted, refused):
    """drf-spectacular's pattern allowed "", "." and a minus sign on fields >= 0."""
    import jsonschema_rs

    schema = api.get("/api/schema/?format=json").json()["components"]["schemas"][component]
    validator = jsonschema_rs.validator_for(schema["properties"][field])

    assert [v for v in accepted if not validator.is_valid(v)] == []
    assert [v for v in refused if validator.is_valid(v)] == []


def test_a_product_rate_without_its_sku_is_refused_in_a_patch(api):
    """A PATCH makes nested fields optional too: a product rate without `sku` answered 500."""
    from partners.models import ProductRate

    program = ProgramFactory()

    response = api.patch(
        f"/api/v1/programs/{program.pk}/",
        {"product_rates": [{"rates": [], "unused_sale_percent": "100"}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"product_rates": {"0": {"sku": ["Name the sku."]}}}
    assert not ProductRate.objects.exists()


@pytest.mark.parametrize("programs", [{}, {"1": True}], ids=["empty-object", "object"])
def test_a_partners_programs_given_as_an_object_are_refused(api, programs):
    """DRF's many-related field read any iterable, so an object read as its keys."""
    program = ProgramFactory(pk=1)
    partner = PartnerFactory(code="jane", program=program)

    response = api.patch("/api/v1/partners/jane/", {"programs": programs}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["programs"]
    partner.refresh_from_db()
    assert list(partner.programs.all()) == [program]


@pytest.mark.parametrize(
    ("query", "status", "count"),
    [
        ("active=AAA", 400, None),
        ("active=yes", 400, None),
        ("active=1", 400, None),
        ("active=2", 400, None),
        ("active=", 200, 2),
        ("active=true", 200, 1),
        ("active=false", 200, 1),
        ("active=True", 200, 1),
    ],
    ids=str,
)
def test_a_yes_no_filter_takes_true_or_false(api, query, status, count):
    """`?active=AAA` read as no filter and listed every coupon; `?active=2` read as true."""
    from partners.models import Coupon

    jane = PartnerFactory(code="jane")
    Coupon.objects.create(code="ON", partner=jane, active=True)
    Coupon.objects.create(code="OFF", partner=jane, active=False)

    response = api.get(f"/api/v1/coupons/?{query}")

    assert response.status_code == status
    if status == 400:
        assert response.json() == {"active": ["Give true or false."]}
    else:
        assert response.json()["count"] == count


def test_every_operation_schemathesis_toml_names_exists(api):
    """An entry for an operation the schema no longer has would silently state nothing."""
    paths = api.get("/api/schema/?format=json").json()["paths"]
    operations = {
        f"{method.upper()} {path}" for path, methods in paths.items() for method in methods
    }
    with open(Path(__file__).parents[2] / "schemathesis.toml", "rb") as file:
        entries = tomllib.load(file)["operations"]

    named = [name for entry in entries for name in entry["include-name"]]
    assert sorted(set(named) - operations) == []
