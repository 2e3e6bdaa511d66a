"""A staff member changes the Referral Partner Defaults in a real browser (SPEC §2, §7)."""

import re

import pytest
from playwright.sync_api import expect

from partners.models import DefaultsChange, Program
from partners.selectors import defaults_get
from tests.factories import ProgramFactory, StaffFactory

# transaction=True: the live server's thread must see the test's rows. The flush after such a
# test re-emits post_migrate, which makes the defaults row again (partners.apps).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SEP = "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}"  # the breadcrumb separator


def test_staff_switches_to_first_referring_and_three_levels(live_server, page, screenshot):
    StaffFactory(username="maria")  # password: correct-horse-battery
    ProgramFactory.create_batch(2)

    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Referral Partner Defaults"
    ).click()

    expect(page.get_by_role("navigation", name="Breadcrumb")).to_have_text(
        f"CRM {SEP} Settings {SEP} Referral Partner Defaults"
    )
    ip_address = page.locator("#field-use_ip_address")
    page.get_by_label("Cookies only").check()
    expect(ip_address).to_have_class(re.compile(r"\bis-muted\b"))
    page.get_by_label("Cookie", exact=True).check()
    expect(ip_address).not_to_have_class(re.compile(r"\bis-muted\b"))
    page.get_by_label("First referring partner").check()
    page.get_by_label("Referral partner # of levels").select_option("3")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text(
        "Saved. 2 referral partner program records updated."
    )
    expect(page.get_by_label("First referring partner")).to_be_checked()
    expect(page.get_by_label("Referral partner # of levels")).to_have_value("3")
    screenshot()
    defaults = defaults_get()
    assert (defaults.partner_selection, defaults.levels) == ("first", 3)
    assert list(Program.objects.values_list("levels", flat=True)) == [3, 3]
    assert DefaultsChange.objects.get().actor == "maria"


@pytest.mark.parametrize(("width", "lines"), [(1280, 1), (1440, 1), (1024, 2)])
def test_the_staff_menu_fits_on_one_line_from_1280_px(live_server, page, width, lines):
    StaffFactory(username="maria.fernandez-garcia")  # a long name is cut short (ellipsis)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill("maria.fernandez-garcia")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()

    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links).to_have_count(12)
    tops = {round(links.nth(n).bounding_box()["y"]) for n in range(12)}
    assert len(tops) == lines, tops
