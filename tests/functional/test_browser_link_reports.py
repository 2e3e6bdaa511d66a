"""A partner reads their report per link and per ad code in a real browser (SPEC §12), on a
wide screen and on a phone: the chart is drawn, the figures are theirs, nothing scrolls
sideways at 375 px."""

import re

import pytest
from playwright.sync_api import expect

from tests.functional.conftest import OUTPUT_DIR
from tests.functional.test_link_reports import shop  # noqa: F401 (the fixture)
from tests.functional.test_partner_center import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1280, 375])
def test_the_report_per_link_fits_and_shows_the_partners_own_figures(
    live_server,
    page,
    shop,  # noqa: F811 (the fixture)
    width,
):
    site = live_server.url
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{site}/partner/login/")
    page.get_by_label("Partner code or email").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    if width < 800:
        page.get_by_role("button", name="Menu").click()
    nav = page.get_by_role("navigation", name="Partner Center")
    nav.get_by_role("link", name="My reports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My reports")

    chart = page.get_by_role("img", name=re.compile(r"^Clicks and orders through links"))
    expect(chart).to_be_visible()
    hair = page.locator('#report-links tr[data-key="hair"]')
    expect(hair.locator('[data-figure="clicks"]')).to_have_text("2")
    earned = hair.locator('[data-figure="earned"]')
    earned.scroll_into_view_if_needed()
    box = earned.bounding_box()  # the money column is on screen, not scrolled off
    assert box is not None and box["x"] + box["width"] <= width
    expect(hair.locator('[data-figure="net"]')).to_have_text("0.00 USD")
    expect(page.locator('#report-ad-codes tr[data-key="fb"] [data-figure="orders"]')).to_have_text(
        "1"
    )
    expect(page.get_by_text("bobby")).to_have_count(0)

    page.wait_for_load_state("load")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{scroll_width} px wide at {width} px"
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / f"partner-link-report-{width}.png"), full_page=True)
