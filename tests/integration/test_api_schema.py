"""The OpenAPI schema (/api/schema/) and the browsable docs (/api/docs/) of SPEC §6."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from partners import api as partners_api
from partners.models import DEFAULTS_FIELDS, SPEC_DEFAULTS_FIELDS
from referral_program import api_urls

pytestmark = pytest.mark.django_db

PARTNERS_VIEWS = {
    partners_api.DefaultsView,
    partners_api.PartnerViewSet,
    partners_api.ProgramViewSet,
    partners_api.TrackingLinkViewSet,
}
PARTNERS_OPERATIONS = {
    "/api/v1/defaults/": {"get", "put", "patch"},
    "/api/v1/partners/": {"get", "post"},
    "/api/v1/partners/{code}/": {"get", "put", "patch"},
    "/api/v1/programs/": {"get", "post"},
    "/api/v1/programs/{id}/": {"get", "put", "patch"},
    "/api/v1/programs/{id}/versions/": {"get"},
    "/api/v1/tracking-links/": {"get", "post"},
    "/api/v1/tracking-links/{code}/": {"get", "put", "patch"},
}


@pytest.fixture
def schema(staff_client) -> dict:
    response = staff_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_has_every_partners_resource_and_no_delete(schema):
    for url, methods in PARTNERS_OPERATIONS.items():
        operations = {m for m in schema["paths"][url] if m in {"get", "put", "patch", "post"}}
        assert operations == methods, url
        assert "delete" not in schema["paths"][url], url


def test_the_schema_declares_the_bearer_key_on_every_partners_operation(schema):
    assert schema["components"]["securitySchemes"]["apiKey"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for url, methods in PARTNERS_OPERATIONS.items():
        for method in methods:
            assert {"apiKey": []} in schema["paths"][url][method]["security"], (url, method)


def test_the_schema_describes_the_answers(schema):
    components = schema["components"]["schemas"]
    defaults_write = schema["paths"]["/api/v1/defaults/"]["patch"]["responses"]["200"]
    saved = defaults_write["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert components[saved]["properties"]["programs_updated"]["type"] == "integer"
    assert components["Partner"]["properties"]["link"]["readOnly"] is True
    assert components["Partner"]["properties"]["link"]["format"] == "uri"
    assert "link" not in components["PartnerRequest"]["properties"]
    assert components["Program"]["properties"]["rates"]["items"] == {
        "$ref": "#/components/schemas/ProgramRate"
    }
    for name in ("levels", "payout_on_lead", "payout_percent", "pay_if_unused"):
        assert components["Program"]["properties"][name]["readOnly"] is True
        assert name not in components["ProgramRequest"]["properties"]
    assert components["ProgramRate"]["properties"]["sale_amount"]["type"] == "string"
    assert components["ProgramRate"]["properties"]["sale_amount"]["format"] == "decimal"
    # A PUT needs every SPEC §2 field; the guards added since are optional.
    assert set(components["DefaultsRequest"]["required"]) == set(SPEC_DEFAULTS_FIELDS)
    assert set(components["DefaultsRequest"]["properties"]) == set(DEFAULTS_FIELDS)
    assert "required" not in components["PatchedDefaultsRequest"]
    filters = {p["name"] for p in schema["paths"]["/api/v1/partners/"]["get"]["parameters"]}
    assert {"status", "parent", "program", "search", "limit", "offset"} == filters


def test_the_schema_declares_the_payment_event_and_credit_timing(schema):
    payments = schema["paths"]["/api/v1/events/payments/"]["post"]
    assert {"200", "201", "400", "404"} <= set(payments["responses"])
    answer = payments["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    components = schema["components"]["schemas"]
    result = components[answer.rsplit("/", 1)[-1]]
    assert set(result["properties"]) == {"event_id", "order_id", "paid", "credits", "duplicate"}
    request = components["PaymentEventRequest"]
    assert set(request["required"]) == {"event_id", "order_id", "amount"}
    assert components["Commission"]["properties"]["credited"]["readOnly"] is True
    credit_on = components["Program"]["properties"]["credit_on"]
    assert credit_on["allOf"] == [{"$ref": "#/components/schemas/CreditOnEnum"}]
    assert set(components["CreditOnEnum"]["enum"]) == {"order", "payment"}


def test_the_partners_views_generate_a_valid_schema_without_warnings():
    own = [
        pattern
        for pattern in api_urls.urlpatterns
        if getattr(pattern.callback, "cls", None) in PARTNERS_VIEWS
    ]
    GENERATOR_STATS.reset()

    generated = SchemaGenerator(patterns=[path("api/v1/", include(own))]).get_schema(
        request=None, public=True
    )

    assert not GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache
    validate_schema(generated)
    assert set(generated["paths"]) == set(PARTNERS_OPERATIONS)


def test_the_docs_load_everything_from_this_site(staff_client):
    response = staff_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r"https?://", html) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # favicon, stylesheet, two scripts, and the page's own script (no inline script: CSP)
    assert assets[-1] == "/api/docs/?script="
    assert len(assets) == 5
    for asset in assets[:-1]:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    script = staff_client.get(assets[-1])
    assert script["Content-Type"].startswith("application/javascript")
    assert re.findall(r"https?://", script.content.decode()) == []
    assert 'url: "/api/schema/"' in script.content.decode()


# --- The docs speak to the merchant's developer (issue 20) ------------------------------


def test_every_operation_has_a_summary_and_a_description_for_developers(schema):
    from referral_program.api_docs import OPERATIONS

    operations = [
        operation
        for methods in schema["paths"].values()
        for method, operation in methods.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert operations
    for operation in operations:
        summary, description = OPERATIONS[operation["operationId"]]
        assert (operation["summary"], operation["description"]) == (summary, description)
    assert "Bearer" in schema["info"]["description"]


def test_no_internal_notes_reach_the_docs(schema):
    text = json.dumps(schema)
    for note in ("SPEC", "§", "issue ", "docs/decisions", "TODO"):
        assert note not in text, note


def test_partners_named_in_an_event_are_described_as_codes(schema):
    order = schema["components"]["schemas"]["OrderEventRequest"]["properties"]
    for name in ("sale_partner", "lead_partner"):
        assert order[name]["description"] == "A partner's code (any case)."
    (code,) = [
        p
        for p in schema["paths"]["/api/v1/partners/{code}/"]["get"]["parameters"]
        if p["name"] == "code"
    ]
    assert code["description"] == "The partner's code, in any case."
