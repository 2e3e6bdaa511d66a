"""The API's resources for scripts (SPEC §6): defaults, partners, programs, tracking links."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from partners.models import (
    DEFAULTS_FIELDS,
    SPEC_DEFAULTS_FIELDS,
    DefaultsChange,
    Partner,
    Program,
    ProgramRate,
    ReferralDefaults,
    TrackingLink,
)
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory, UserFactory

pytestmark = pytest.mark.django_db

SITE_URL = "https://partners.example"
FIRST_DEFAULTS = {
    "code_prefix": "",
    "skip_notifications": False,
    "partner_selection": "last",
    "tracking_method": "cookie",
    "use_ip_address": False,
    "link_url": "",
    "levels": 2,
    "payout_on_lead": False,
    "payout_on_sale": True,
    "payout_amount": True,
    "payout_percent": False,
    "pay_if_unused": False,
    "duplicate_click_minutes": 30,
    "self_referral_guard": True,
    "click_flag_per_hour": 1000,
    "signup_enabled": False,
    "signup_auto_approve": False,
    "signup_parent": "none",
    "signup_parent_partner": None,
    "hold_days": 0,
}
OTHER_DEFAULTS = {
    "code_prefix": "vip-",
    "skip_notifications": True,
    "partner_selection": "first",
    "tracking_method": "history_and_cookies",
    "use_ip_address": True,
    "link_url": "https://go.shop.example",
    "levels": 3,
    "payout_on_lead": True,
    "payout_on_sale": False,
    "payout_amount": False,
    "payout_percent": True,
    "pay_if_unused": True,
    "duplicate_click_minutes": 5,
    "self_referral_guard": False,
    "click_flag_per_hour": 250,
    "signup_enabled": True,
    "signup_auto_approve": True,
    "signup_parent": "referring",
    "signup_parent_partner": None,
    "hold_days": 30,
}
# Fields after SPEC §2 (guards, sign-up) with their first values: optional in a PUT.
ADDED_DEFAULTS = {
    name: value for name, value in FIRST_DEFAULTS.items() if name not in SPEC_DEFAULTS_FIELDS
}
ZERO_RATE = {
    "lead_amount": "0.00",
    "lead_percent": "0.0000",
    "sale_amount": "0.00",
    "sale_percent": "0.0000",
}


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE_URL


@pytest.fixture
def api(db):
    """A client with a valid API key named "shop"."""
    _, raw_key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


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


def stored_defaults() -> dict:
    return ReferralDefaults.objects.values(*DEFAULTS_FIELDS).get()


# --- Defaults ------------------------------------------------------------------------------


def test_get_defaults_answers_every_field(api):
    response = api.get("/api/v1/defaults/")

    assert response.status_code == 200
    assert response.json() == FIRST_DEFAULTS


def test_patch_changes_exactly_that_field_and_updates_every_program(api):
    ProgramFactory.create_batch(3)

    response = api.patch("/api/v1/defaults/", {"code_prefix": "vip-"}, format="json")

    assert response.status_code == 200
    assert response.json() == {**FIRST_DEFAULTS, "code_prefix": "vip-", "programs_updated": 3}
    assert stored_defaults() == {**FIRST_DEFAULTS, "code_prefix": "vip-"}
    change = DefaultsChange.objects.get()
    assert change.changes == {"code_prefix": {"old": "", "new": "vip-"}}
    assert change.programs_updated == 3
    assert change.user is None
    assert change.actor == "api key shop"


def test_patch_of_a_structural_field_reaches_every_program(api):
    ProgramFactory.create_batch(2)

    response = api.patch("/api/v1/defaults/", {"levels": 3, "payout_percent": True}, format="json")

    assert response.status_code == 200
    assert response.json()["programs_updated"] == 2
    assert list(Program.objects.order_by("pk").values_list("levels", "payout_percent")) == [
        (3, True),
        (3, True),
    ]


def test_put_sets_every_field(api):
    ProgramFactory()

    response = api.put("/api/v1/defaults/", OTHER_DEFAULTS, format="json")

    assert response.status_code == 200
    assert response.json() == {**OTHER_DEFAULTS, "programs_updated": 1}
    assert stored_defaults() == OTHER_DEFAULTS
    # Every field changed but the sign-up's chosen parent, which stays empty.
    assert set(DefaultsChange.objects.get().changes) == set(DEFAULTS_FIELDS) - {
        "signup_parent_partner"
    }


def test_a_put_of_the_spec_fields_alone_still_works(api):
    """Fields added after SPEC §2 are optional: integrations written against it go on."""
    spec_only = {k: v for k, v in OTHER_DEFAULTS.items() if k in SPEC_DEFAULTS_FIELDS}

    response = api.put("/api/v1/defaults/", spec_only, format="json")

    assert response.status_code == 200
    assert stored_defaults() == {**OTHER_DEFAULTS, **ADDED_DEFAULTS}


def test_put_without_every_field_is_refused(api):
    before = database_state()
    body = {name: value for name, value in OTHER_DEFAULTS.items() if name != "link_url"}

    response = api.put("/api/v1/defaults/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"link_url": ["This field is required."]}
    assert database_state() == before


def test_saving_the_same_values_changes_nothing(api):
    ProgramFactory.create_batch(2)
    before = database_state()

    patched = api.patch("/api/v1/defaults/", {"levels": 2, "code_prefix": ""}, format="json")
    put = api.put("/api/v1/defaults/", FIRST_DEFAULTS, format="json")

    assert patched.status_code == 200
    assert patched.json() == {**FIRST_DEFAULTS, "programs_updated": 0}
    assert put.status_code == 200
    assert put.json() == {**FIRST_DEFAULTS, "programs_updated": 0}
    assert not DefaultsChange.objects.exists()
    assert database_state() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("code_prefix", "vip partners", id="prefix-with-space"),
        pytest.param("code_prefix", "a" * 17, id="prefix-too-long"),
        pytest.param("code_prefix", "vip/", id="prefix-with-slash"),
        pytest.param("levels", 0, id="levels-0"),
        pytest.param("levels", 4, id="levels-4"),
        pytest.param("levels", "two", id="levels-not-a-number"),
        pytest.param("link_url", "ftp://go.shop.example", id="link-url-ftp"),
        pytest.param("link_url", "javascript:alert(1)", id="link-url-javascript"),
        pytest.param("link_url", "go.shop.example", id="link-url-not-absolute"),
        pytest.param("partner_selection", "middle", id="selection-unknown"),
        pytest.param("tracking_method", "telepathy", id="method-unknown"),
        pytest.param("skip_notifications", "maybe", id="boolean-not-boolean"),
        pytest.param("payout_on_sale", None, id="boolean-null"),
    ],
)
def test_invalid_defaults_are_refused_naming_the_field(api, field, value):
    ProgramFactory()
    before = database_state()

    # With a valid change alongside: nothing at all is saved.
    body = {"use_ip_address": True, field: value}

    response = api.patch("/api/v1/defaults/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert database_state() == before


def test_a_staff_session_with_the_right_saves_in_its_name(db):
    user = UserFactory(is_staff=True, username="maria")
    user.user_permissions.add(Permission.objects.get(codename="change_referraldefaults"))
    client = APIClient()
    client.force_login(user)

    response = client.patch("/api/v1/defaults/", {"skip_notifications": True}, format="json")

    assert response.status_code == 200
    change = DefaultsChange.objects.get()
    assert change.user == user
    assert change.actor == "maria"


def test_a_staff_session_without_the_right_is_403(db):
    ProgramFactory()
    client = APIClient()
    client.force_login(UserFactory(is_staff=True))
    before = database_state()

    read = client.get("/api/v1/defaults/")
    response = client.patch("/api/v1/defaults/", {"levels": 3}, format="json")

    assert read.status_code == 200
    assert response.status_code == 403
    assert database_state() == before


# --- Partners ------------------------------------------------------------------------------


def partner_json(**values) -> dict:
    code = values["code"]
    return {
        "parent": None,
        "program": None,
        "status": "active",
        "cookie_days": None,
        "notify_lead": True,
        "notify_sale": True,
        "link": f"{SITE_URL}/go/{code}/",
        "programs": [values["program"]] if values.get("program") else [],
        **values,
    }


def test_create_a_partner_without_a_code_makes_one_from_the_name(api):
    response = api.post(
        "/api/v1/partners/", {"name": "Jane O'Neil", "email": "jane@example.com"}, format="json"
    )

    assert response.status_code == 201
    assert response.json() == partner_json(
        code="jane-oneil", name="Jane O'Neil", email="jane@example.com"
    )
    assert Partner.objects.get().code == "jane-oneil"


def test_a_blank_code_also_makes_one_from_the_name(api):
    PartnerFactory(code="jane-oneil")

    response = api.post(
        "/api/v1/partners/",
        {"code": "", "name": "Jane O'Neil", "email": "jane@example.com"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["code"] == "jane-oneil-2"


def test_create_a_partner_with_every_field(api):
    program = ProgramFactory()
    parent = PartnerFactory(code="Recruiter")

    response = api.post(
        "/api/v1/partners/",
        {
            "code": "Bob_2024",
            "name": "Bob",
            "email": "bob@example.com",
            "parent": "recruiter",
            "program": program.pk,
            "status": "inactive",
            "cookie_days": 30,
            "notify_lead": False,
            "notify_sale": False,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {
        "code": "Bob_2024",
        "name": "Bob",
        "email": "bob@example.com",
        "parent": "Recruiter",
        "program": program.pk,
        "status": "inactive",
        "cookie_days": 30,
        "notify_lead": False,
        "notify_sale": False,
        "link": f"{SITE_URL}/go/Bob_2024/",
        "programs": [program.pk],
    }
    bob = Partner.objects.get(code="Bob_2024")
    assert (bob.parent, bob.program, bob.status, bob.cookie_days) == (
        parent,
        program,
        "inactive",
        30,
    )
    assert (bob.notify_lead, bob.notify_sale) == (False, False)


def test_a_code_taken_in_another_case_is_refused(api):
    PartnerFactory(code="alpha1")
    before = database_state()

    response = api.post(
        "/api/v1/partners/",
        {"code": "ALPHA1", "name": "Other", "email": "other@example.com"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": ["A partner with this code already exists (codes ignore case)."]
    }
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"code": "1abc"}, "code", id="code-starts-with-a-digit"),
        pytest.param({"code": "abc"}, "code", id="code-too-short"),
        pytest.param({"code": "a" * 33}, "code", id="code-too-long"),
        pytest.param({"code": "bob smith"}, "code", id="code-with-space"),
        pytest.param({"email": "not-an-email"}, "email", id="bad-email"),
        pytest.param({"parent": "nobody"}, "parent", id="unknown-parent"),
        pytest.param({"program": 999999}, "program", id="unknown-program"),
        pytest.param({"status": "frozen"}, "status", id="unknown-status"),
        pytest.param({"cookie_days": 0}, "cookie_days", id="cookie-days-0"),
        pytest.param({"name": ""}, "name", id="blank-name"),
    ],
)
def test_invalid_partners_are_refused_naming_the_field(api, body, field):
    PartnerFactory(code="alpha1")
    before = database_state()

    response = api.post(
        "/api/v1/partners/", {"name": "Bob", "email": "bob@example.com", **body}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert database_state() == before


def test_an_unknown_parent_code_is_named_in_the_error(api):
    response = api.post(
        "/api/v1/partners/",
        {"name": "Bob", "email": "bob@example.com", "parent": "nobody"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"parent": ["No partner has the code nobody."]}


def test_a_partner_is_found_by_code_in_any_case(api):
    PartnerFactory(code="Alpha1", name="Alpha", email="alpha@example.com")

    response = api.get("/api/v1/partners/aLPHA1/")

    assert response.status_code == 200
    assert response.json() == partner_json(code="Alpha1", name="Alpha", email="alpha@example.com")


def test_an_unknown_code_is_404(api):
    assert api.get("/api/v1/partners/nobody/").status_code == 404
    assert api.patch("/api/v1/partners/nobody/", {"status": "inactive"}).status_code == 404


def test_partners_cannot_be_deleted(api):
    PartnerFactory(code="alpha1")
    before = database_state()

    response = api.delete("/api/v1/partners/alpha1/")

    assert response.status_code == 405
    assert database_state() == before


def test_patch_changes_only_the_fields_sent(api):
    program = ProgramFactory()
    PartnerFactory(code="alpha1", name="Alpha", email="alpha@example.com", program=program)

    response = api.patch(
        "/api/v1/partners/ALPHA1/", {"status": "inactive", "cookie_days": 7}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == partner_json(
        code="alpha1",
        name="Alpha",
        email="alpha@example.com",
        program=program.pk,
        status="inactive",
        cookie_days=7,
    )
    assert Partner.objects.values("name", "email", "program", "status", "cookie_days").get() == {
        "name": "Alpha",
        "email": "alpha@example.com",
        "program": program.pk,
        "status": "inactive",
        "cookie_days": 7,
    }


def test_put_replaces_a_partner_and_may_clear_parent_and_program(api):
    program = ProgramFactory()
    parent = PartnerFactory(code="parent1")
    PartnerFactory(code="alpha1", parent=parent, program=program)

    response = api.put(
        "/api/v1/partners/alpha1/",
        {
            "name": "Alpha Renamed",
            "email": "new@example.com",
            "parent": None,
            "program": None,
            "cookie_days": None,
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == partner_json(
        code="alpha1", name="Alpha Renamed", email="new@example.com"
    )
    alpha = Partner.objects.get(code="alpha1")
    assert (alpha.name, alpha.parent, alpha.program) == ("Alpha Renamed", None, None)


def test_a_parent_that_makes_a_cycle_is_refused(api):
    a = PartnerFactory(code="partner-a")
    PartnerFactory(code="partner-b", parent=a)
    before = database_state()

    response = api.patch("/api/v1/partners/partner-a/", {"parent": "PARTNER-B"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "parent": ["This parent would make a cycle: the partner is already above them in the tree."]
    }
    assert database_state() == before


def test_a_partner_cannot_be_their_own_parent(api):
    PartnerFactory(code="alpha1")
    before = database_state()

    response = api.patch("/api/v1/partners/alpha1/", {"parent": "alpha1"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"parent": ["A partner cannot be their own parent."]}
    assert database_state() == before


def test_renaming_a_code_onto_another_partners_code_is_refused(api):
    PartnerFactory(code="alpha1")
    PartnerFactory(code="beta1")
    before = database_state()

    response = api.patch("/api/v1/partners/beta1/", {"code": "Alpha1"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["code"]
    assert database_state() == before


def test_a_code_cannot_be_blanked_on_update(api):
    PartnerFactory(code="alpha1")
    before = database_state()

    response = api.patch("/api/v1/partners/alpha1/", {"code": ""}, format="json")

    assert response.status_code == 400
    assert response.json() == {"code": ["This field cannot be blank."]}
    assert database_state() == before


def test_the_link_follows_the_prefix_and_the_link_url(api):
    PartnerFactory(code="alpha1")
    defaults_update(
        data={"code_prefix": "vip-", "link_url": "https://go.shop.example/"}, acting_user=None
    )

    detail = api.get("/api/v1/partners/alpha1/")
    listed = api.get("/api/v1/partners/")

    assert detail.json()["link"] == "https://go.shop.example/go/vip-alpha1/"
    assert [row["link"] for row in listed.json()["results"]] == [
        "https://go.shop.example/go/vip-alpha1/"
    ]


@pytest.fixture
def tree(db):
    gold = ProgramFactory(name="Gold")
    top = PartnerFactory(code="top1", name="Top", email="top@example.com", program=gold)
    PartnerFactory(code="kid1", name="Kid One", email="one@kids.example", parent=top)
    PartnerFactory(
        code="kid2", name="Kid Two", email="two@kids.example", parent=top, status="inactive"
    )
    PartnerFactory(code="other1", name="Other", email="other@example.com", program=gold)
    return {"gold": gold}


@pytest.mark.parametrize(
    ("query", "codes"),
    [
        pytest.param("", ["kid1", "kid2", "other1", "top1"], id="all"),
        pytest.param("status=inactive", ["kid2"], id="status"),
        pytest.param("parent=TOP1", ["kid1", "kid2"], id="parent-any-case"),
        pytest.param("parent=nobody", [], id="parent-unknown"),
        pytest.param("search=kids.EXAMPLE", ["kid1", "kid2"], id="search-email"),
        pytest.param("search=oth", ["other1"], id="search-name-and-code"),
        pytest.param("search=KID1", ["kid1"], id="search-code"),
        pytest.param("status=active&parent=top1", ["kid1"], id="combined"),
    ],
)
def test_partner_filters(api, tree, query, codes):
    response = api.get(f"/api/v1/partners/?{query}")

    assert response.status_code == 200
    assert [row["code"] for row in response.json()["results"]] == codes
    assert response.json()["count"] == len(codes)


def test_partner_filter_by_program(api, tree):
    response = api.get(f"/api/v1/partners/?program={tree['gold'].pk}")

    assert [row["code"] for row in response.json()["results"]] == ["other1", "top1"]


@pytest.mark.parametrize("query", ["program=gold", "program=1.5", "status=frozen"])
def test_a_malformed_filter_is_400(api, tree, query):
    response = api.get(f"/api/v1/partners/?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]


def count_queries(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_partner_list_costs_the_same_queries_for_1_or_30_partners(api):
    program = ProgramFactory()
    parent = PartnerFactory(program=program)
    one = count_queries(api, "/api/v1/partners/")

    PartnerFactory.create_batch(29, parent=parent, program=program)
    thirty = count_queries(api, "/api/v1/partners/")

    assert api.get("/api/v1/partners/").json()["count"] == 30
    assert thirty == one


# --- Programs ------------------------------------------------------------------------------


def test_create_a_program_with_rates_answers_exact_decimal_strings(api):
    defaults_update(data=OTHER_DEFAULTS, acting_user=None)

    response = api.post(
        "/api/v1/programs/",
        {
            "name": "Gold",
            "notes": "For resellers.",
            "priority": 5,
            "rates": [
                {"level": 2, "sale_percent": "10", "lead_amount": "1.5"},
                {"level": 1, "sale_percent": "20.125", "sale_amount": "12.50"},
            ],
            "unused_sale_percent": "25",
            "unused_lead_amount": "3",
            # Read-only: they follow the defaults, whatever is sent.
            "levels": 1,
            "payout_on_lead": False,
            "payout_on_sale": True,
            "payout_amount": True,
            "payout_percent": False,
            "pay_if_unused": False,
        },
        format="json",
    )

    assert response.status_code == 201
    program = Program.objects.get()
    assert response.json() == {
        "id": program.pk,
        "name": "Gold",
        "notes": "For resellers.",
        "priority": 5,
        "rates": [
            {**ZERO_RATE, "level": 1, "sale_amount": "12.50", "sale_percent": "20.1250"},
            {**ZERO_RATE, "level": 2, "lead_amount": "1.50", "sale_percent": "10.0000"},
            {**ZERO_RATE, "level": 3},
        ],
        "unused_lead_amount": "3.00",
        "unused_lead_percent": "0.0000",
        "unused_sale_amount": "0.00",
        "unused_sale_percent": "25.0000",
        "hold_days": None,
        "levels": 3,
        "payout_on_lead": True,
        "payout_on_sale": False,
        "payout_amount": False,
        "payout_percent": True,
        "pay_if_unused": True,
        "pays_default": True,
        "credit_on": "order",
        "product_rates": [],
        "renewal_cycles": None,
        "renewal_rates": None,
    }
    assert list(program.rates.values_list("level", "sale_amount", "sale_percent")) == [
        (1, Decimal("12.50"), Decimal("20.1250")),
        (2, Decimal("0.00"), Decimal("10.0000")),
        (3, Decimal("0.00"), Decimal("0.0000")),
    ]
    assert program.unused_sale_percent == Decimal("25")


def test_a_program_without_rates_gets_zero_rates_on_every_level(api):
    response = api.post("/api/v1/programs/", {"name": "Plain"}, format="json")

    assert response.status_code == 201
    assert response.json()["rates"] == [{**ZERO_RATE, "level": n} for n in (1, 2, 3)]
    assert ProgramRate.objects.count() == 3


def test_patch_of_rates_changes_only_the_rates_sent(api):
    program = ProgramFactory(
        name="Gold",
        rates={1: {"sale_percent": Decimal("20")}, 2: {"sale_percent": Decimal("10")}},
    )

    response = api.patch(
        f"/api/v1/programs/{program.pk}/",
        {"rates": [{"level": 2, "lead_amount": "1.25"}], "levels": 1},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Gold"
    assert response.json()["levels"] == 2
    assert response.json()["rates"] == [
        {**ZERO_RATE, "level": 1, "sale_percent": "20.0000"},
        {**ZERO_RATE, "level": 2, "lead_amount": "1.25", "sale_percent": "10.0000"},
        {**ZERO_RATE, "level": 3},
    ]
    assert list(
        program.rates.values_list("level", "lead_amount", "sale_percent").order_by("level")
    ) == [
        (1, Decimal("0.00"), Decimal("20.0000")),
        (2, Decimal("1.25"), Decimal("10.0000")),
        (3, Decimal("0.00"), Decimal("0.0000")),
    ]
    assert Program.objects.get().levels == 2


def test_put_of_a_program_keeps_rates_not_sent(api):
    program = ProgramFactory(name="Gold", rates={1: {"sale_percent": Decimal("20")}})

    response = api.put(
        f"/api/v1/programs/{program.pk}/",
        {"name": "Platinum", "priority": 1, "unused_sale_amount": "9.99"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["rates"][0] == {**ZERO_RATE, "level": 1, "sale_percent": "20.0000"}
    program.refresh_from_db()
    assert (program.name, program.priority, program.unused_sale_amount) == (
        "Platinum",
        1,
        Decimal("9.99"),
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"rates": [{"level": 1}, {"level": 1}]}, "rates", id="level-twice"),
        pytest.param({"rates": [{"level": 4, "sale_percent": "1"}]}, "rates", id="level-4"),
        pytest.param({"rates": [{"sale_percent": "1"}]}, "rates", id="no-level"),
        pytest.param({"rates": [{"level": 1, "sale_amount": "-1"}]}, "rates", id="negative"),
        pytest.param({"rates": [{"level": 1, "sale_percent": "100.5"}]}, "rates", id="over-100"),
        pytest.param({"rates": [{"level": 1, "sale_amount": "1.001"}]}, "rates", id="3-decimals"),
        pytest.param({"unused_sale_percent": "101"}, "unused_sale_percent", id="unused-over-100"),
        pytest.param({"unused_lead_amount": "abc"}, "unused_lead_amount", id="not-a-number"),
        pytest.param({"name": ""}, "name", id="blank-name"),
    ],
)
def test_invalid_programs_are_refused_naming_the_field(api, body, field):
    program = ProgramFactory(name="Gold", rates={1: {"sale_percent": Decimal("20")}})
    before = database_state()

    created = api.post("/api/v1/programs/", {"name": "New", **body}, format="json")
    patched = api.patch(f"/api/v1/programs/{program.pk}/", body, format="json")

    assert created.status_code == 400
    assert list(created.json()) == [field]
    assert patched.status_code == 400
    assert list(patched.json()) == [field]
    assert database_state() == before


def test_programs_cannot_be_deleted(api):
    program = ProgramFactory()
    before = database_state()

    assert api.delete(f"/api/v1/programs/{program.pk}/").status_code == 405
    assert database_state() == before


def test_the_program_list_costs_the_same_queries_for_1_or_10_programs(api):
    ProgramFactory()
    one = count_queries(api, "/api/v1/programs/")

    ProgramFactory.create_batch(9)
    ten = count_queries(api, "/api/v1/programs/")

    assert api.get("/api/v1/programs/").json()["count"] == 10
    assert ten == one


# --- Tracking links ------------------------------------------------------------------------


def test_create_a_tracking_link(api):
    response = api.post(
        "/api/v1/tracking-links/",
        {"code": "haircare", "name": "Hair care", "destination": "https://shop.example/hair"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json() == {
        "code": "haircare",
        "name": "Hair care",
        "destination": "https://shop.example/hair",
        "is_default": False,
    }
    assert TrackingLink.objects.values("code", "name", "destination", "is_default").get() == {
        "code": "haircare",
        "name": "Hair care",
        "destination": "https://shop.example/hair",
        "is_default": False,
    }


def test_a_second_default_takes_the_flag_from_the_first(api):
    TrackingLinkFactory(code="home", is_default=True)

    response = api.post(
        "/api/v1/tracking-links/",
        {
            "code": "sale",
            "name": "Sale",
            "destination": "https://shop.example/sale",
            "is_default": True,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["is_default"] is True
    assert list(TrackingLink.objects.values_list("code", "is_default")) == [
        ("sale", True),
        ("home", False),
    ]


def test_patch_makes_an_existing_link_the_default(api):
    TrackingLinkFactory(code="home", is_default=True)
    TrackingLinkFactory(code="sale")

    response = api.patch("/api/v1/tracking-links/sale/", {"is_default": True}, format="json")

    assert response.status_code == 200
    assert list(TrackingLink.objects.values_list("code", "is_default")) == [
        ("sale", True),
        ("home", False),
    ]
    listed = api.get("/api/v1/tracking-links/").json()["results"]
    assert [(row["code"], row["is_default"]) for row in listed] == [
        ("sale", True),
        ("home", False),
    ]


def test_put_changes_a_link(api):
    TrackingLinkFactory(code="home", name="Home", destination="https://shop.example/")

    response = api.put(
        "/api/v1/tracking-links/home/",
        {"code": "home", "name": "Front page", "destination": "https://shop.example/start"},
        format="json",
    )

    assert response.status_code == 200
    assert api.get("/api/v1/tracking-links/home/").json() == {
        "code": "home",
        "name": "Front page",
        "destination": "https://shop.example/start",
        "is_default": False,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"code": "home"}, "code", id="code-taken"),
        pytest.param({"code": "hair care"}, "code", id="code-with-space"),
        pytest.param({"destination": "ftp://shop.example/"}, "destination", id="ftp"),
        pytest.param({"destination": "shop.example/hair"}, "destination", id="not-absolute"),
        pytest.param({"name": ""}, "name", id="blank-name"),
    ],
)
def test_invalid_tracking_links_are_refused_naming_the_field(api, body, field):
    TrackingLinkFactory(code="home", is_default=True)
    before = database_state()

    response = api.post(
        "/api/v1/tracking-links/",
        {
            "code": "hair",
            "name": "Hair",
            "destination": "https://shop.example/hair",
            "is_default": True,
            **body,
        },
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert database_state() == before


def test_tracking_links_cannot_be_deleted(api):
    TrackingLinkFactory(code="home")
    before = database_state()

    assert api.delete("/api/v1/tracking-links/home/").status_code == 405
    assert database_state() == before
