"""Tables edited row by row over HTTP (SPEC §10): a program's product rates and a partner's
overrides, each a Django formset (add a row, remove one), CSRF-protected, staff only."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from partners.models import PartnerOverride, ProductRate, ProductRateLevel
from tests.factories import PartnerFactory, ProgramFactory, UserFactory
from tests.integration.test_program_engine import product_rate

pytestmark = pytest.mark.django_db

D = Decimal


def formset_data(formset, rows: int | None = None) -> dict:
    """What the page's form posts as it is: the management form and every row's values;
    `rows` more than the formset has counts the rows the test adds by hand."""
    data = {}
    management = formset.management_form
    for name in management.fields:
        data[management.add_prefix(name)] = management[name].value()
    for form in formset.forms:
        for name in form.fields:
            value = form[name].value()
            if name == "DELETE":
                continue
            data[form.add_prefix(name)] = "" if value is None else value
    if rows is not None:
        data[management.add_prefix("TOTAL_FORMS")] = rows
    return data


def product_rates() -> dict:
    return {
        r.sku: {(lv.level, lv.sale_amount, lv.sale_percent) for lv in r.rates.all()}
        | {("unused", r.unused_sale_amount, r.unused_sale_percent)}
        for r in ProductRate.objects.prefetch_related("rates")
    }


def overrides() -> list[tuple]:
    return list(
        PartnerOverride.objects.order_by("pk").values_list(
            "partner__code", "program__name", "sku", "level", "sale_amount", "sale_percent"
        )
    )


@pytest.fixture
def books(db):
    program = ProgramFactory(name="Books")
    product_rate(program, "BOOK", {1: ("2", "10"), 2: ("1", "5")})
    product_rate(program, "MAP", {1: ("0", "3")})
    return program


# --- Product rates -------------------------------------------------------------------------


def test_the_program_page_links_to_the_table(staff_client, books):
    page = staff_client.get(f"/staff/programs/{books.pk}/")

    assert f'href="/staff/programs/{books.pk}/product-rates/">Edit as a table</a>' in page.text


def test_the_table_shows_each_sku_and_an_empty_row(
    staff_client, books, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        page = staff_client.get(f"/staff/programs/{books.pk}/product-rates/")

    assert page.status_code == 200
    forms = page.context["formset"].forms
    assert [f["sku"].value() for f in forms] == ["BOOK", "MAP", None]
    assert forms[0]["level_1_sale_percent"].value() == "10.0000"
    assert 'data-formset-add="rates"' in page.text
    assert 'id="rates-empty-row"' in page.text


def test_add_a_row_change_one_and_remove_one(staff_client, books):
    page = staff_client.get(f"/staff/programs/{books.pk}/product-rates/")
    data = formset_data(page.context["formset"])
    data["rates-0-level_1_sale_percent"] = "12.5"  # BOOK changed
    data["rates-1-DELETE"] = "on"  # MAP removed
    data.update({"rates-2-sku": " PEN ", "rates-2-level_2_sale_amount": "1.50",
                 "rates-2-unused_sale_percent": "4"})  # fmt: skip

    response = staff_client.post(f"/staff/programs/{books.pk}/product-rates/", data)

    assert response.status_code == 302
    assert response["Location"] == f"/staff/programs/{books.pk}/#product-rates"
    assert product_rates() == {
        "BOOK": {(1, D("2.00"), D("12.5000")), (2, D("1.00"), D("5.0000")),
                 (3, D("0.00"), D("0.0000")), ("unused", D("0.00"), D("0.0000"))},
        "PEN": {(1, D("0.00"), D("0.0000")), (2, D("1.50"), D("0.0000")),
                (3, D("0.00"), D("0.0000")), ("unused", D("0.00"), D("4.0000"))},
    }  # fmt: skip


def test_rows_added_beyond_the_page_count_too(staff_client, books):
    """A row the page's script added (numbered after the empty one) is read as well."""
    data = formset_data(
        staff_client.get(f"/staff/programs/{books.pk}/product-rates/").context["formset"], rows=4
    )
    data.update({"rates-3-sku": "INK", "rates-3-level_1_sale_percent": "1"})

    assert staff_client.post(f"/staff/programs/{books.pk}/product-rates/", data).status_code == 302
    assert set(product_rates()) == {"BOOK", "MAP", "INK"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"rates-2-sku": "BOOK"}, "The sku BOOK is on another row too.", id="twice"),
        pytest.param({"rates-0-level_1_sale_percent": "101"},
                     "Ensure this value is less than or equal to 100.", id="percent-over-100"),
        pytest.param({"rates-0-level_2_lead_amount": "-1"},
                     "Ensure this value is greater than or equal to 0.", id="negative"),
        pytest.param({"rates-2-level_1_sale_percent": "3"}, "This field is required.",
                     id="a-rate-without-sku"),
        pytest.param({"rates-0-sku": ""}, "This field is required.", id="sku-emptied"),
    ],
)  # fmt: skip
def test_a_bad_table_is_shown_again_and_saves_nothing(staff_client, books, change, error):
    before = product_rates()
    data = formset_data(
        staff_client.get(f"/staff/programs/{books.pk}/product-rates/").context["formset"]
    )
    data.update(change)

    response = staff_client.post(f"/staff/programs/{books.pk}/product-rates/", data)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert product_rates() == before


def test_the_table_needs_the_csrf_token(staff_user, books):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    before = product_rates()
    page = client.get(f"/staff/programs/{books.pk}/product-rates/")
    data = formset_data(page.context["formset"])
    data["rates-1-DELETE"] = "on"

    refused = client.post(f"/staff/programs/{books.pk}/product-rates/", data)
    assert refused.status_code == 403
    assert product_rates() == before

    token = page.cookies["csrftoken"].value
    done = client.post(
        f"/staff/programs/{books.pk}/product-rates/", {**data, "csrfmiddlewaretoken": token}
    )
    assert done.status_code == 302
    assert set(product_rates()) == {"BOOK"}


def test_past_the_table_limit_the_page_sends_to_the_csv(staff_client, books):
    for n in range(50):
        ProductRate.objects.create(program=books, sku=f"SKU-{n}")
    before = product_rates()

    page = staff_client.get(f"/staff/programs/{books.pk}/product-rates/")
    refused = staff_client.post(
        f"/staff/programs/{books.pk}/product-rates/",
        {"rates-TOTAL_FORMS": "1", "rates-INITIAL_FORMS": "0", "rates-0-sku": "ONLY"},
    )

    assert "edit them with the CSV export and import" in page.text
    assert refused.status_code == 400
    assert product_rates() == before


@pytest.mark.parametrize("who", ["anonymous", "not-staff", "staff-without-right"])
def test_only_staff_who_may_change_programs_edit_the_table(client, books, who):
    if who == "not-staff":
        client.force_login(UserFactory())
    if who == "staff-without-right":
        client.force_login(UserFactory(is_staff=True))
    before = product_rates()

    page = client.get(f"/staff/programs/{books.pk}/product-rates/")
    sent = client.post(
        f"/staff/programs/{books.pk}/product-rates/",
        {"rates-TOTAL_FORMS": "0", "rates-INITIAL_FORMS": "2"},
    )

    if who == "anonymous":
        assert page.status_code == sent.status_code == 302
    else:
        assert page.status_code == sent.status_code == 403
    assert product_rates() == before
    assert ProductRateLevel.objects.count() == 3


# --- A partner's overrides -----------------------------------------------------------------


@pytest.fixture
def ann(books):
    ann = PartnerFactory(code="ann1")
    PartnerOverride.objects.create(partner=ann, program=books, sku="BOOK", level=1,
                                   sale_percent=D("15"))  # fmt: skip
    PartnerOverride.objects.create(partner=ann, program=books, level=2, sale_amount=D("1"))
    return ann


def test_the_partner_page_shows_the_overrides_and_links_to_the_table(staff_client, ann):
    page = staff_client.get("/staff/partners/ann1/")

    assert page.status_code == 200
    assert [(o.sku, o.level) for o in page.context["overrides"]] == [("BOOK", 1), (None, 2)]
    assert 'href="/staff/partners/ann1/rates/">Edit overrides</a>' in page.text
    assert "every item" in page.text
    assert "15 %" in page.text


def test_the_overrides_table_adds_changes_and_removes(staff_client, ann, books,
                                                     django_assert_max_num_queries):  # fmt: skip
    other = ProgramFactory(name="Other")
    with django_assert_max_num_queries(10):
        page = staff_client.get("/staff/partners/ANN1/rates/")
    assert page.status_code == 200
    data = formset_data(page.context["formset"])
    data["overrides-0-sale_percent"] = "20"
    data["overrides-1-DELETE"] = "on"
    data.update({"overrides-2-program": str(other.pk), "overrides-2-sku": "",
                 "overrides-2-level": "3", "overrides-2-sale_percent": "2.5"})  # fmt: skip

    response = staff_client.post("/staff/partners/ann1/rates/", data)

    assert response.status_code == 302, response.context["formset"].errors
    assert response["Location"] == "/staff/partners/ann1/#overrides"
    assert overrides() == [
        ("ann1", "Books", "BOOK", 1, D("0.00"), D("20.0000")),
        ("ann1", "Other", None, 3, D("0.00"), D("2.5000")),
    ]


def test_a_removed_row_may_give_its_place_to_a_new_one(staff_client, ann, books):
    data = formset_data(staff_client.get("/staff/partners/ann1/rates/").context["formset"])
    data["overrides-1-DELETE"] = "on"
    data.update({"overrides-2-program": str(books.pk), "overrides-2-level": "2",
                 "overrides-2-sale_percent": "9"})  # fmt: skip

    assert staff_client.post("/staff/partners/ann1/rates/", data).status_code == 302
    assert overrides()[-1] == ("ann1", "Books", None, 2, D("0.00"), D("9.0000"))
    assert len(overrides()) == 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"overrides-2-sku": "BOOK", "overrides-2-level": "1"},
                     "Another row has this program, sku and level.", id="twin-row"),
        pytest.param({"overrides-2-level": "4"}, "Select a valid choice.", id="level-4"),
        pytest.param({"overrides-2-program": "999999"}, "Select a valid choice.",
                     id="unknown-program"),
        pytest.param({"overrides-0-sale_percent": "-3"},
                     "Ensure this value is greater than or equal to 0.", id="negative"),
        pytest.param({"overrides-2-program": ""}, "This field is required.", id="no-program"),
    ],
)  # fmt: skip
def test_a_bad_overrides_table_saves_nothing(staff_client, ann, books, change, error):
    before = overrides()
    data = formset_data(staff_client.get("/staff/partners/ann1/rates/").context["formset"])
    data.update({"overrides-2-program": str(books.pk), "overrides-2-level": "2",
                 "overrides-2-sale_percent": "9", "overrides-1-DELETE": "on"})  # fmt: skip
    data.update(change)

    response = staff_client.post("/staff/partners/ann1/rates/", data)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert overrides() == before


def test_the_overrides_table_needs_the_csrf_token(staff_user, ann):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    before = overrides()
    data = formset_data(client.get("/staff/partners/ann1/rates/").context["formset"])
    data["overrides-0-DELETE"] = "on"

    assert client.post("/staff/partners/ann1/rates/", data).status_code == 403
    assert overrides() == before


@pytest.mark.parametrize("who", ["not-staff", "staff-without-right", "staff-with-right"])
def test_only_staff_who_may_change_overrides_edit_them(client, ann, who):
    user = UserFactory(is_staff=who != "not-staff")
    if who == "staff-with-right":
        user.user_permissions.add(Permission.objects.get(codename="change_partneroverride"))
    client.force_login(user)
    before = overrides()

    page = client.get("/staff/partners/ann1/rates/")
    sent = client.post(
        "/staff/partners/ann1/rates/",
        {"overrides-TOTAL_FORMS": "0", "overrides-INITIAL_FORMS": "0"},
    )

    expected = 200 if who == "staff-with-right" else 403
    assert page.status_code == expected
    assert sent.status_code in ((302,) if expected == 200 else (403,))
    assert overrides() == before


def test_an_unknown_partner_is_404(staff_client):
    assert staff_client.get("/staff/partners/nobody/rates/").status_code == 404
