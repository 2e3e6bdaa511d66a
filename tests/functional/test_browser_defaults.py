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


def log_in(page, live_server, username: str = "maria") -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()


def test_an_invalid_save_points_at_each_error(live_server, page, screenshot):
    StaffFactory(username="maria")
    log_in(page, live_server)
    page.goto(f"{live_server.url}/staff/settings/referral-partner-defaults/")

    # Save is in view without scrolling down the long form, and stays so.
    save = page.get_by_role("button", name="Save")
    expect(save).to_be_in_viewport()
    page.mouse.wheel(0, 1200)
    expect(save).to_be_in_viewport()

    # The chosen parent shows only with "One chosen partner".
    chosen_parent = page.get_by_label("Chosen parent (partner code)")
    expect(chosen_parent).to_be_hidden()
    page.get_by_label("One chosen partner").check()
    expect(chosen_parent).to_be_visible()
    chosen_parent.fill("nobody-here")
    page.get_by_label("Referral partner code prefix").fill("bad prefix")
    page.get_by_label("Count repeated clicks once for (minutes)").fill("99999")
    save.click()

    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text(
        "There are 3 problems: correct them and send the form again"
    )
    expect(summary.get_by_role("link")).to_have_text(
        [
            "Referral partner code prefix: Use up to 16 letters, digits, hyphens or underscores "
            "(no spaces).",
            "Count repeated clicks once for (minutes): Ensure this value is less than or equal "
            "to 1440.",
            "Chosen parent (partner code): No partner has the code nobody-here.",
        ]
    )
    screenshot()
    summary.get_by_role("link").nth(2).click()
    expect(chosen_parent).to_be_focused()
    expect(chosen_parent).to_be_in_viewport()
    assert defaults_get().code_prefix == ""
