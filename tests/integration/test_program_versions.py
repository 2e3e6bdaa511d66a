"""Program versions (SPEC §10 "Versions", issue 16 item 7): every change of a program's pay
terms makes a version, whoever makes it (API, staff page, admin, defaults save); a save
that changes nothing makes none; commissions name the version they were worked out with,
by the API and by the importer, and keep it (and their amount) after a rate change."""

import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from commissions.models import Commission, CommissionEntry
from partners.models import Program, ProgramVersion
from partners.selectors import program_history
from partners.services.defaults import defaults_update, programs_apply_defaults
from partners.services.enrollment import partner_set_programs
from partners.services.programs import program_create, program_set_product_rates, program_update
from tests.factories import PartnerFactory
from tests.functional.test_defaults_page import form_data as defaults_form
from tests.functional.test_staff_pages import page_text
from tests.integration.test_admin import admin_url, form_data
from tests.integration.test_import_events import run

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS = "/api/v1/events/orders/"
STRUCTURE = {
    "levels": 2,
    "payout_on_lead": False,
    "payout_on_sale": True,
    "payout_amount": False,
    "payout_percent": True,
    "pay_if_unused": False,
}
ZERO_RATE = {"lead_amount": "0.00", "lead_percent": "0.0000", "sale_amount": "0.00"}
UNUSED = {
    "unused_lead_amount": "0.00",
    "unused_lead_percent": "0.0000",
    "unused_sale_amount": "0.00",
    "unused_sale_percent": "0.0000",
}


@pytest.fixture
def gold(db) -> Program:
    """Gold pays sales 10 % at level 1 and 5 % at level 2 (percent only)."""
    defaults_update(data=STRUCTURE, acting_user=None)
    return program_create(
        data={"name": "Gold", "priority": 1},
        rates=[{"level": 1, "sale_percent": D("10")}, {"level": 2, "sale_percent": D("5")}],
        actor="setup",
    )


def versions(program: Program) -> list[tuple[int, str]]:
    return list(program.versions.order_by("number").values_list("number", "actor"))


def latest(program: Program) -> ProgramVersion:
    return program.versions.order_by("-number").first()


def gold_terms(level_1_percent: str = "10.0000") -> dict:
    return {
        **STRUCTURE,
        "pays_default": True,
        "rates": [
            {"level": 1, **ZERO_RATE, "sale_percent": level_1_percent},
            {"level": 2, **ZERO_RATE, "sale_percent": "5.0000"},
            {"level": 3, **ZERO_RATE, "sale_percent": "0.0000"},
        ],
        **UNUSED,
        "product_rates": [],
        "renewal_cycles": None,
        "renewal_rates": [],
        "credit_on": "order",
    }


def test_a_new_program_is_version_1_with_its_terms(gold):
    [version] = gold.versions.all()
    assert (version.number, version.actor, version.user) == (1, "setup", None)
    assert version.terms == gold_terms()


# --- The API -----------------------------------------------------------------------------


def test_api_writes_make_versions_named_by_the_key(api):
    defaults_update(data=STRUCTURE, acting_user=None)
    created = api.post("/api/v1/programs/", {"name": "Api", "priority": 3}, format="json")
    assert created.status_code == 201, created.content
    program = Program.objects.get(pk=created.json()["id"])
    url = f"/api/v1/programs/{program.pk}/"

    rate = api.patch(url, {"rates": [{"level": 1, "sale_percent": "12"}]}, format="json")
    same = api.patch(url, {"rates": [{"level": 1, "sale_percent": "12.00"}]}, format="json")
    renamed = api.patch(url, {"name": "Api 2", "notes": "n", "priority": 4}, format="json")

    assert (rate.status_code, same.status_code, renamed.status_code) == (200, 200, 200)
    assert versions(program) == [(1, "api key shop"), (2, "api key shop")]
    assert latest(program).terms["rates"][0]["sale_percent"] == "12.0000"


def test_a_refused_api_write_makes_no_version(api, gold):
    url = f"/api/v1/programs/{gold.pk}/"

    response = api.patch(url, {"rates": [{"level": 1, "sale_percent": "101"}]}, format="json")

    assert response.status_code == 400
    assert "rates" in response.json()
    assert versions(gold) == [(1, "setup")]


def test_api_product_rates_make_a_version(api, gold):
    body = {"product_rates": [{"sku": "BOOK", "rates": [{"level": 1, "sale_percent": "3"}]}]}

    response = api.patch(f"/api/v1/programs/{gold.pk}/", body, format="json")

    assert response.status_code == 200, response.content
    assert versions(gold) == [(1, "setup"), (2, "api key shop")]
    [product] = latest(gold).terms["product_rates"]
    assert product["sku"] == "BOOK"
    assert product["rates"][0] == {"level": 1, **ZERO_RATE, "sale_percent": "3.0000"}


def test_api_renewal_terms_make_a_version_said_in_words(api, gold):
    body = {"renewal_cycles": 2, "renewal_rates": [{"level": 1, "sale_percent": "4"}]}

    response = api.patch(f"/api/v1/programs/{gold.pk}/", body, format="json")

    assert response.status_code == 200, response.content
    assert versions(gold) == [(1, "setup"), (2, "api key shop")]
    assert latest(gold).terms["renewal_cycles"] == 2
    [row] = program_history(gold.pk)[:1]
    assert row.changes == [
        "renewals that earn all → 2",
        "renewal level 1 added",
        "renewal level 2 added",
        "renewal level 3 added",
    ]


def test_the_versions_list(api, gold, django_assert_max_num_queries):
    api.patch(
        f"/api/v1/programs/{gold.pk}/",
        {"rates": [{"level": 1, "sale_percent": "12"}]},
        format="json",
    )
    url = f"/api/v1/programs/{gold.pk}/versions/"

    with django_assert_max_num_queries(5):  # the key, the program, count, page (+ savepoint)
        response = api.get(url)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    second, first = body["results"]
    assert (second["number"], second["author"], first["number"], first["author"]) == (
        2,
        "api key shop",
        1,
        "setup",
    )
    assert second["id"] == latest(gold).pk
    assert second["terms"] == gold_terms("12.0000")
    assert first["terms"] == gold_terms()
    assert set(second) == {"id", "number", "created_at", "author", "terms"}
    page = api.get(url, {"limit": 1}).json()
    assert [v["number"] for v in page["results"]] == [2]
    assert page["next"] is not None


def test_the_versions_list_refuses_others(client, plain_user, gold):
    url = f"/api/v1/programs/{gold.pk}/versions/"
    assert client.get(url).status_code in (401, 403)
    client.force_login(plain_user)
    assert client.get(url).status_code == 403


def test_the_versions_of_an_unknown_program_are_404(api):
    assert api.get("/api/v1/programs/999999/versions/").status_code == 404
    assert api.get("/api/v1/programs/abc/versions/").status_code == 404


# --- The staff pages ---------------------------------------------------------------------


def program_form(client, program: Program) -> dict:
    form = client.get(f"/staff/programs/{program.pk}/edit/").context["form"]
    return {
        name: ("" if value is None else value)
        for name, value in ((name, form[name].value()) for name in form.fields)
    }


def test_the_staff_page_edit_makes_a_version_and_the_history_says_what_changed(
    staff_client, staff_user, gold, django_assert_max_num_queries
):
    data = program_form(staff_client, gold)
    unchanged = staff_client.post(f"/staff/programs/{gold.pk}/edit/", {**data, "notes": "x"})
    changed = staff_client.post(
        f"/staff/programs/{gold.pk}/edit/",
        {**data, "rate_1_sale_percent": "12", "unused_sale_amount": "2.5"},
    )

    assert (unchanged.status_code, changed.status_code) == (302, 302)
    assert versions(gold) == [(1, "setup"), (2, staff_user.username)]
    assert latest(gold).user == staff_user
    with django_assert_max_num_queries(20):
        page = staff_client.get(f"/staff/programs/{gold.pk}/")
    text = page_text(page)
    history = text[text.index("History") :]
    assert (
        f"2 {latest(gold).created_at:%Y-%m-%d %H:%M} {staff_user.username} "
        "level 1 sale percent 10 → 12 unused sale amount 0 → 2.5 "
    ) in history
    assert "1 " in history and "setup First version" in history


def test_the_history_is_staff_only(client, plain_user, gold):
    client.force_login(plain_user)
    assert client.get(f"/staff/programs/{gold.pk}/").status_code == 403


def test_a_product_rates_csv_makes_a_version(staff_client, staff_user, gold):
    csv = "sku,level_1_sale_percent\nBOOK,4\n"
    upload = SimpleUploadedFile("rates.csv", csv.encode(), content_type="text/csv")

    response = staff_client.post(
        f"/staff/programs/{gold.pk}/product-rates/import/", {"file": upload}, follow=True
    )

    assert response.status_code == 200
    assert versions(gold) == [(1, "setup"), (2, staff_user.username)]
    assert "product BOOK added" in page_text(response)


def test_the_admin_change_form_makes_a_version(staff_client, staff_user, gold):
    url = admin_url("program", "change", gold.pk)
    data = form_data(staff_client.get(url))
    data.update({"rates-0-sale_percent": "11"})

    response = staff_client.post(url, data)

    assert response.status_code == 302
    assert versions(gold) == [(1, "setup"), (2, staff_user.username)]
    assert latest(gold).terms["rates"][0]["sale_percent"] == "11.0000"


def test_the_admin_apply_defaults_action_makes_versions_of_the_changed(
    staff_client, staff_user, gold
):
    silver = program_create(data={"name": "Silver", "priority": 2}, actor="setup")
    # The defaults as if saved while gold was elsewhere: only gold's flags change.
    Program.objects.filter(pk=gold.pk).update(levels=3)
    ProgramVersion.objects.filter(program=gold).update(terms={**gold_terms(), "levels": 3})

    response = staff_client.post(
        admin_url("program", "changelist"),
        {"action": "apply_defaults", "_selected_action": [gold.pk, silver.pk], "index": "0"},
        follow=True,
    )

    assert response.status_code == 200
    assert versions(gold) == [(1, "setup"), (2, staff_user.username)]
    assert versions(silver) == [(1, "setup")]
    assert latest(gold).terms == gold_terms()


# --- The defaults ------------------------------------------------------------------------


def test_a_defaults_save_makes_a_version_of_every_program(staff_client, staff_user, gold):
    silver = program_create(data={"name": "Silver", "priority": 2}, actor="setup")
    silver_terms = latest(silver).terms

    response = staff_client.post(
        "/staff/settings/referral-partner-defaults/",
        defaults_form(**{**STRUCTURE, "levels": 3, "pay_if_unused": True}),
    )

    assert response.status_code == 302
    assert versions(gold) == [(1, "setup"), (2, staff_user.username)]
    assert versions(silver) == [(1, "setup"), (2, staff_user.username)]
    assert latest(gold).terms == {**gold_terms(), "levels": 3, "pay_if_unused": True}
    assert latest(silver).terms == {**silver_terms, "levels": 3, "pay_if_unused": True}
    assert latest(gold).user == staff_user
    text = page_text(staff_client.get(f"/staff/programs/{gold.pk}/"))
    assert "levels 2 → 3 pay if unused off → on" in text


def test_a_defaults_save_through_the_api_is_named_by_the_key(api, gold):
    response = api.patch("/api/v1/defaults/", {"levels": 1}, format="json")

    assert response.status_code == 200
    assert versions(gold) == [(1, "setup"), (2, "api key shop")]


@pytest.mark.parametrize(
    "data",
    [pytest.param(STRUCTURE, id="nothing"), pytest.param({"code_prefix": "vip-"}, id="no-flag")],
)
def test_a_defaults_save_that_changes_no_flag_makes_no_version(gold, data):
    defaults_update(data=data, acting_user=None)

    assert versions(gold) == [(1, "setup")]


# --- Commissions name their version ------------------------------------------------------


@pytest.fixture
def seller(gold):
    return PartnerFactory(code="seller", program=gold)


def order(event_id: str, sku: str = "MUG") -> dict:
    return {
        "event_id": event_id,
        "occurred_at": "2026-01-05T10:00:00Z",
        "contact": {"email": "buyer@example.com"},
        "sale_partner": "seller",
        "items": [{"sku": sku, "quantity": 2, "unit_price": "100.00"}],
    }


def test_a_commission_keeps_its_amount_and_version_after_a_rate_change(api, gold, seller):
    first = latest(gold)
    assert api.post(ORDERS, order("o-1"), format="json").status_code == 201
    api.patch(
        f"/api/v1/programs/{gold.pk}/",
        {"rates": [{"level": 1, "sale_percent": "12"}]},
        format="json",
    )
    second = latest(gold)
    assert api.post(ORDERS, order("o-2"), format="json").status_code == 201
    api.post("/api/v1/events/refunds/", {"event_id": "r-1", "order_id": "o-1"}, format="json")

    lines = api.get("/api/v1/commissions/").json()["results"]

    # o-1: 200.00 x 10 % = 20.00 (version 1); o-2: 200.00 x 12 % = 24.00 (version 2); the
    # refund of o-1 takes back its 20.00 under its line's version.
    assert sorted(
        (c["order_id"], c["entry"], c["amount"], c["program_version"]) for c in lines
    ) == [
        ("o-1", CommissionEntry.CLAWBACK, "-20.00", first.pk),
        ("o-1", CommissionEntry.COMMISSION, "20.00", first.pk),
        ("o-2", CommissionEntry.COMMISSION, "24.00", second.pk),
    ]


def test_the_importer_names_the_current_version(api, gold, seller, tmp_path):
    program_set_product_rates(program=gold, product_rates=[], actor="noop")  # no change
    api.patch(
        f"/api/v1/programs/{gold.pk}/",
        {"rates": [{"level": 1, "sale_percent": "12"}]},
        format="json",
    )
    path = tmp_path / "orders.jsonl"
    path.write_text(json.dumps(order("imported-1")) + "\n")

    _, _, error = run(path)

    assert error is None
    assert versions(gold) == [(1, "setup"), (2, "api key shop")]
    [line] = Commission.objects.all()
    assert (line.amount, line.program_version_id) == (D("24.00"), latest(gold).pk)
    [shown] = api.get("/api/v1/commissions/", {"order": "imported-1"}).json()["results"]
    assert shown["program_version"] == latest(gold).pk


def test_an_order_after_a_defaults_save_names_the_version_it_made(api, gold, seller):
    """The engine reads the program's current version as a column
    (`Program.current_version`), which the save's one statement points at the version it
    made; a save that changes no flag leaves it."""
    api.patch("/api/v1/defaults/", {"payout_on_lead": True}, format="json")
    made = latest(gold)
    api.patch("/api/v1/defaults/", {"code_prefix": "x"}, format="json")  # no flag: no version

    assert api.post(ORDERS, order("o-1"), format="json").status_code == 201

    assert versions(gold) == [(1, "setup"), (2, "api key shop")]
    assert Program.objects.get(pk=gold.pk).current_version_id == made.pk
    assert {line.program_version_id for line in Commission.objects.all()} == {made.pk}


def test_every_way_of_making_a_version_points_the_program_at_it(gold):
    silver = program_create(data={"name": "Silver", "priority": 2}, actor="setup")
    bronze = program_create(data={"name": "Bronze", "priority": 3}, actor="setup")
    Program.objects.filter(pk__in=[gold.pk, silver.pk]).update(levels=3)
    ProgramVersion.objects.filter(program=gold).update(terms={**gold_terms(), "levels": 3})

    programs_apply_defaults(programs=Program.objects.filter(pk__in=[gold.pk, silver.pk]))
    program_update(
        program=gold, data={"name": "Gold"}, rates=[{"level": 1, "sale_percent": D("11")}]
    )

    pointed = dict(Program.objects.values_list("pk", "current_version"))
    assert pointed == {p.pk: latest(p).pk for p in (gold, silver, bronze)}
    assert [v for v, _ in versions(gold)] == [1, 2, 3]
    assert [v for v, _ in versions(silver)] == [1]  # its version already had these flags


def test_each_program_of_a_partner_names_its_own_version(api, gold, seller):
    """Seller is enrolled in Books (a product rate for BOOK, read by the engine's second
    query) and Gold: each line names its own program's latest version."""
    books = program_create(
        data={"name": "Books", "priority": 0, "pays_default": False}, actor="setup"
    )
    program_set_product_rates(
        program=books,
        product_rates=[{"sku": "BOOK", "rates": [{"level": 1, "sale_percent": D("7")}]}],
        actor="setup",
    )
    partner_set_programs(partner=seller, programs=[gold, books])
    body = order("mixed")
    body["items"].append({"sku": "BOOK", "quantity": 1, "unit_price": "50.00"})

    assert api.post(ORDERS, body, format="json").status_code == 201

    # Books: 50.00 x 7 % = 3.50 (its version 2: the product rate); Gold: 200.00 x 10 % = 20.00
    assert sorted(
        Commission.objects.values_list("program__name", "amount", "program_version__number")
    ) == [("Books", D("3.50"), 2), ("Gold", D("20.00"), 1)]
    assert set(Commission.objects.values_list("program_version_id", flat=True)) == {
        latest(books).pk,
        latest(gold).pk,
    }
