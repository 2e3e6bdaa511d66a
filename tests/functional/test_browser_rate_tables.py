"""A program's product rates edited as a table in a real browser (SPEC §10): "Add a row"
adds a sku row, "Remove" takes one out, Save replaces them."""

import pytest
from playwright.sync_api import expect

from partners.models import ProductRate
from tests.factories import ProgramFactory, StaffFactory
from tests.integration.test_program_engine import product_rate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_add_a_sku_row_and_remove_one(live_server, page, screenshot):
    StaffFactory(username="maria")  # password: correct-horse-battery
    books = ProgramFactory(name="Books")
    product_rate(books, "BOOK", {1: ("2", "10")})
    product_rate(books, "MAP", {1: ("0", "3")})

    page.goto(f"{live_server.url}/staff/programs/{books.pk}/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Edit as a table").click()

    rows = page.locator("#rates-rows tr")
    expect(rows).to_have_count(3)  # BOOK, MAP and one empty row
    page.get_by_role("button", name="Add a row").click()
    expect(rows).to_have_count(4)
    expect(page.locator("#id_rates-3-sku")).to_be_focused()
    page.locator("#id_rates-3-sku").fill("PEN")
    page.locator("#id_rates-3-level_1_sale_percent").fill("7.5")
    rows.nth(1).get_by_label("Remove").check()
    screenshot()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Product rates of Books saved.")
    expect(page.locator("#product-rates tbody th")).to_have_text(["BOOK", "PEN"])
    rates = {r.sku: r for r in ProductRate.objects.filter(program=books)}
    assert set(rates) == {"BOOK", "PEN"}
    assert str(rates["PEN"].rates.get(level=1).sale_percent) == "7.5000"
