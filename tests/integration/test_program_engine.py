"""Commission programs in depth wired to the engine (SPEC §10, issue 16 items 1-3 and the
trace of item 8): a partner enrolled in several programs, product rates, the discount spread
over the items; the same rows over HTTP and by the import; query counts constant in the
number of programs and product rates."""

import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commissions.models import Commission, Contact, Event, Order, Referral
from partners.models import ProductRate, ProductRateLevel
from partners.services.defaults import defaults_update
from partners.services.enrollment import partner_set_programs
from tests.factories import PartnerFactory, ProgramFactory
from tests.integration.test_import_events import run

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS = "/api/v1/events/orders/"


def product_rate(program, sku, levels, **unused):
    """A product rate of `program` for `sku`; `levels`: {level: (sale amount, sale %)}."""
    rate = ProductRate.objects.create(program=program, sku=sku, **unused)
    ProductRateLevel.objects.bulk_create(
        ProductRateLevel(
            product_rate=rate, level=level, sale_amount=D(amount), sale_percent=D(percent)
        )
        for level, (amount, percent) in levels.items()
    )
    return rate


@pytest.fixture
def shop(db):
    """The mixed order of tests/unit/test_program_calculation.py, without the override.

    BOOKS (priority 1) pays only the sku BOOK (pays_default off), at 2.00 + 10 %,
    1.00 + 5 %, 0 + 2 % per level; STANDARD (priority 2) pays default rates 5.00 + 20 %,
    0 + 10 %, 0 + 5 %. `me` (level 1) is enrolled in both; its parent and grandparent in none
    (the level-1 partner's programs pay every level)."""
    defaults_update(
        data={
            "levels": 3,
            "payout_on_lead": False,
            "payout_on_sale": True,
            "payout_amount": True,
            "payout_percent": True,
            "pay_if_unused": False,
        },
        acting_user=None,
    )
    common = {"levels": 3, "payout_on_sale": True, "payout_amount": True, "payout_percent": True}
    standard = ProgramFactory(
        name="Standard",
        priority=2,
        **common,
        rates={
            1: {"sale_amount": D("5"), "sale_percent": D("20")},
            2: {"sale_percent": D("10")},
            3: {"sale_percent": D("5")},
        },
    )
    books = ProgramFactory(name="Books", priority=1, pays_default=False, **common)
    product_rate(books, "BOOK", {1: ("2", "10"), 2: ("1", "5"), 3: ("0", "2")})
    grandparent = PartnerFactory(code="grandpa")
    parent = PartnerFactory(code="parent", parent=grandparent)
    me = PartnerFactory(code="me-seller", parent=parent)
    partner_set_programs(partner=me, programs=[standard, books])
    return {"standard": standard, "books": books, "me": me}


def order(event_id="mixed-1", **more) -> dict:
    return {
        "event_id": event_id,
        "occurred_at": "2026-01-05T10:00:00Z",
        "contact": {"email": "buyer@example.com"},
        "sale_partner": "me-seller",
        "currency": "USD",
        "discount": "10.01",
        "items": [
            {"sku": "BOOK", "quantity": 2, "unit_price": "30.00"},
            {"sku": "MUG", "quantity": 1, "unit_price": "40.00"},
            {"sku": "POSTER", "quantity": 4, "unit_price": "25.00"},
        ],
        **more,
    }


def rows() -> list[tuple]:
    return sorted(
        (c.partner.code, c.level, c.kind, c.program.name, c.base, c.amount, json.dumps(c.trace))
        for c in Commission.objects.select_related("partner", "program")
    )


def test_a_mixed_order_with_two_programs_a_product_rate_a_discount_and_three_levels(api, shop):
    """Items 2 x 30.00 BOOK, 1 x 40.00 MUG, 4 x 25.00 POSTER (200.00), discount 10.01:
    shares 3.00, 2.00, 5.01; bases 57.00, 38.00, 94.99. BOOKS pays the book (57.00),
    STANDARD the mug and the poster (132.99), each up the whole chain:

    level 1 BOOKS:    2.00 x 2 + 57.00 x 10 %            = 4.00 + 5.70  = 9.70
    level 1 STANDARD: 5.00 once + 132.99 x 20 % = 26.598 = 31.598      -> 31.60
    level 2 BOOKS:    1.00 x 2 + 57.00 x 5 %             = 2.00 + 2.85  = 4.85
    level 2 STANDARD: 132.99 x 10 %                      = 13.299      -> 13.30
    level 3 BOOKS:    57.00 x 2 %                                       = 1.14
    level 3 STANDARD: 132.99 x 5 %                       = 6.6495      -> 6.65 (half up)
    """
    response = api.post(ORDERS, order(), format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["base"] == "189.99"
    assert sorted((c["partner"], c["level"], c["amount"]) for c in answer["commissions"]) == [
        ("grandpa", 3, "1.14"),
        ("grandpa", 3, "6.65"),
        ("me-seller", 1, "31.60"),
        ("me-seller", 1, "9.70"),
        ("parent", 2, "13.30"),
        ("parent", 2, "4.85"),
    ]
    found = {(row[0], row[1], row[3]): (row[4], row[5]) for row in rows()}
    assert found == {
        ("me-seller", 1, "Books"): (D("57.00"), D("9.70")),
        ("me-seller", 1, "Standard"): (D("132.99"), D("31.60")),
        ("parent", 2, "Books"): (D("57.00"), D("4.85")),
        ("parent", 2, "Standard"): (D("132.99"), D("13.30")),
        ("grandpa", 3, "Books"): (D("57.00"), D("1.14")),
        ("grandpa", 3, "Standard"): (D("132.99"), D("6.65")),
    }
    # The trace names the paying program and, per item, the rate that paid it.
    line = Commission.objects.get(partner=shop["me"], program=shop["books"])
    assert line.trace["program"] == {
        "id": shop["books"].pk,
        "name": "Books",
        "levels": 3,
        "version": line.program_version_id,  # the version the line was worked out with
    }
    assert line.trace["base"] == "57.00"
    assert line.trace["items"] == [
        {
            "item": 0,
            "sku": "BOOK",
            "quantity": 2,
            "base": "57.00",
            "rate": "product",
            "amount": "2.00",
            "percent": "10.0000",
            "per_unit": True,
        }
    ]
    line = Commission.objects.get(partner=shop["me"], program=shop["standard"])
    assert [(i["item"], i["rate"], i["base"]) for i in line.trace["items"]] == [
        (1, "default", "38.00"),
        (2, "default", "94.99"),
    ]
    assert "rates" not in line.trace and "uncovered" not in line.trace


def test_an_item_no_program_covers_earns_nothing_and_the_trace_says_so(api, shop):
    partner_set_programs(partner=shop["me"], programs=[shop["books"]])

    response = api.post(ORDERS, order(), format="json")

    assert response.status_code == 201, response.content
    [line] = Commission.objects.filter(level=1)
    assert (line.program_id, line.amount) == (shop["books"].pk, D("9.70"))
    assert line.trace["uncovered"] == [{"item": 1, "sku": "MUG"}, {"item": 2, "sku": "POSTER"}]


def test_the_import_writes_the_same_rows(api, shop, tmp_path):
    payloads = [order("mixed-1"), order("mixed-2", discount="0")]
    for payload in payloads:
        assert api.post(ORDERS, payload, format="json").status_code == 201
    by_api = rows()
    assert len(by_api) == 12
    Commission.objects.all().delete()
    for model in (Order, Referral, Event, Contact):
        model.objects.all().delete()
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in payloads))

    _, _, error = run(path)

    assert error is None
    assert rows() == by_api


def test_one_program_without_product_rates_keeps_the_old_trace(api, shop):
    partner_set_programs(partner=shop["me"], programs=[shop["standard"]])

    api.post(ORDERS, order(), format="json")

    line = Commission.objects.get(level=1)
    # 5.00 + 189.99 x 20 % = 42.998 -> 43.00, over the order's base
    assert (line.base, line.amount) == (D("189.99"), D("43.00"))
    assert line.trace["rates"] == {"rate": "level 1", "amount": "5.00", "percent": "20.0000"}
    assert "items" not in line.trace


def queries_of_an_order(api, event_id) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.post(ORDERS, order(event_id), format="json")
    assert response.status_code == 201, response.content
    return len(queries)


def test_the_queries_are_constant_in_programs_and_product_rates(
    api, shop, django_assert_max_num_queries
):
    """Two programs and one product rate, then six programs and 300 product rates: the same
    count (one query more than a partner with one program and no product rates)."""
    partner_set_programs(partner=shop["me"], programs=[shop["standard"]])
    queries_of_an_order(api, "first")  # the contact's first order writes it
    plain = queries_of_an_order(api, "plain")
    partner_set_programs(partner=shop["me"], programs=[shop["standard"], shop["books"]])
    few = queries_of_an_order(api, "few")
    more = [ProgramFactory(priority=10 + n, levels=3, payout_on_sale=True) for n in range(4)]
    for program in [shop["books"], *more]:
        for n in range(60):
            product_rate(program, f"SKU-{program.pk}-{n}", {1: ("1", "1"), 2: ("1", "1")})
    partner_set_programs(partner=shop["me"], programs=[shop["standard"], shop["books"], *more])

    with django_assert_max_num_queries(few):
        response = api.post(ORDERS, order("many"), format="json")

    assert response.status_code == 201
    assert few == plain + 1


# --- The API: `programs` on partners, `pays_default` and `product_rates` on programs --------


def test_programs_on_the_partner_resource(api, shop):
    standard, books = shop["standard"], shop["books"]

    answer = api.get("/api/v1/partners/me-seller/").json()
    assert (answer["programs"], answer["program"]) == ([books.pk, standard.pk], books.pk)

    # Writing `program` enrolls in exactly that one.
    answer = api.patch("/api/v1/partners/me-seller/", {"program": standard.pk}, format="json")
    assert (answer.json()["programs"], answer.json()["program"]) == ([standard.pk], standard.pk)
    # Writing `programs` enrolls in exactly those; `program` reads as the first by priority.
    answer = api.patch(
        "/api/v1/partners/me-seller/", {"programs": [standard.pk, books.pk]}, format="json"
    )
    assert (answer.json()["programs"], answer.json()["program"]) == (
        [books.pk, standard.pk],
        books.pk,
    )
    # A program's new priority changes which program `program` reads as.
    api.patch(f"/api/v1/programs/{books.pk}/", {"priority": 9}, format="json")
    answer = api.get("/api/v1/partners/me-seller/").json()
    assert (answer["programs"], answer["program"]) == ([standard.pk, books.pk], standard.pk)
    # None: the default program pays.
    answer = api.patch("/api/v1/partners/me-seller/", {"programs": []}, format="json").json()
    assert (answer["programs"], answer["program"]) == ([], None)


@pytest.mark.parametrize("programs", [[999999], "twice"])
def test_bad_programs_are_refused(api, shop, programs):
    if programs == "twice":
        programs = [shop["books"].pk, shop["books"].pk]

    response = api.patch("/api/v1/partners/me-seller/", {"programs": programs}, format="json")

    assert response.status_code == 400
    assert "programs" in response.json()


def test_product_rates_on_the_program_resource(api, shop):
    body = {
        "name": "Gadgets",
        "pays_default": False,
        "product_rates": [
            {
                "sku": "GADGET",
                "rates": [{"level": 1, "sale_amount": "1.50", "sale_percent": "7.5"}],
                "unused_sale_percent": "9",
            }
        ],
    }

    response = api.post("/api/v1/programs/", body, format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["pays_default"] is False
    [rate] = answer["product_rates"]
    assert rate["sku"] == "GADGET"
    assert rate["unused_sale_percent"] == "9.0000"
    assert [(r["level"], r["sale_amount"], r["sale_percent"]) for r in rate["rates"]] == [
        (1, "1.50", "7.5000"),
        (2, "0.00", "0.0000"),
        (3, "0.00", "0.0000"),
    ]
    # Writing product_rates replaces them all.
    url = f"/api/v1/programs/{answer['id']}/"
    answer = api.patch(url, {"product_rates": [{"sku": "OTHER"}]}, format="json").json()
    assert [r["sku"] for r in answer["product_rates"]] == ["OTHER"]
    assert ProductRate.objects.filter(program_id=answer["id"]).count() == 1


@pytest.mark.parametrize(
    "product_rates",
    [
        [{"sku": ""}],
        [{"sku": "A"}, {"sku": "A"}],
        [{"sku": "A", "rates": [{"level": 4}]}],
        [{"sku": "A", "rates": [{"level": 1}, {"level": 1}]}],
        [{"sku": "A", "unused_sale_percent": "1.23456"}],
    ],
)
def test_bad_product_rates_are_refused(api, shop, product_rates):
    url = f"/api/v1/programs/{shop['books'].pk}/"

    response = api.patch(url, {"product_rates": product_rates}, format="json")

    assert response.status_code == 400
    assert "product_rates" in response.json()
    assert list(
        ProductRate.objects.filter(program=shop["books"]).values_list("sku", flat=True)
    ) == ["BOOK"]


# --- The staff partner page ------------------------------------------------------------------


def test_the_staff_partner_page_shows_and_edits_the_programs(staff_client, shop):
    standard, books = shop["standard"], shop["books"]

    page = staff_client.get("/staff/partners/me-seller/")

    assert page.status_code == 200
    assert [p.name for p in page.context["programs"]] == ["Books", "Standard"]
    assert 'Books</a> <span class="muted">(priority 1)</span>' in page.text

    form = staff_client.get("/staff/partners/me-seller/edit/").context["form"]
    assert sorted(form["programs"].value()) == sorted([standard.pk, books.pk])
    response = staff_client.post(
        "/staff/partners/me-seller/edit/",
        {
            "code": "me-seller",
            "name": "Me",
            "email": "me@example.com",
            "parent": "parent",
            "program": str(books.pk),
            "programs": [str(standard.pk)],
            "status": "active",
        },
    )

    assert response.status_code == 302
    shop["me"].refresh_from_db()
    assert shop["me"].program == standard
    assert list(shop["me"].programs.all()) == [standard]


# --- The staff program page: product rates as CSV ---------------------------------------------


def test_product_rates_csv_export_and_import(staff_client, shop):
    books = shop["books"]
    page = staff_client.get(f"/staff/programs/{books.pk}/")
    assert page.status_code == 200
    assert page.context["product_rate_rows"][0][0] == "BOOK"

    exported = staff_client.get(f"/staff/programs/{books.pk}/product-rates.csv")

    assert exported.status_code == 200
    lines = exported.content.decode().splitlines()
    assert lines[0].startswith("sku,level_1_lead_amount,level_1_lead_percent,")
    assert lines[1].startswith("BOOK,0.00,0.0000,2.00,10.0000,0.00,0.0000,1.00,5.0000,")

    upload = SimpleUploadedFile(
        "rates.csv", b"sku,level_1_sale_percent,unused_sale_percent\nPEN,3,4\nINK,,\n"
    )
    response = staff_client.post(
        f"/staff/programs/{books.pk}/product-rates/import/", {"file": upload}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == ["2 product rate(s) imported."]
    rates = {r.sku: r for r in ProductRate.objects.filter(program=books)}
    assert set(rates) == {"PEN", "INK"}
    assert rates["PEN"].unused_sale_percent == D("4")
    assert rates["PEN"].rates.get(level=1).sale_percent == D("3")


def test_a_bad_product_rates_file_imports_nothing(staff_client, shop):
    books = shop["books"]
    upload = SimpleUploadedFile("rates.csv", b"sku,level_1_sale_percent\nPEN,abc\n,1\nPEN,2\n")

    response = staff_client.post(
        f"/staff/programs/{books.pk}/product-rates/import/", {"file": upload}, follow=True
    )

    found = [str(m) for m in response.context["messages"]]
    assert len(found) == 3 and found[0].startswith("Line 2:") and "line 2" in found[2]
    skus = ProductRate.objects.filter(program=books).values_list("sku", flat=True)
    assert list(skus) == ["BOOK"]
