"""A partner uses the Partner Center in a real browser (SPEC §7)."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from partners.models import Click
from tests.factories import ProgramFactory, TrackingLinkFactory
from tests.functional.test_partner_center import PASSWORD, partner_with_login, sell

# transaction=True: the live server's thread must see the test's rows. The flush after such a
# test re-emits post_migrate, which makes the defaults row again (partners.apps).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_partner_copies_a_link_reads_the_ledger_and_sees_the_chart(
    live_server, page, screenshot, api
):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    TrackingLinkFactory(code="shop", name="Shop home page", is_default=True)
    TrackingLinkFactory(code="haircare", name="Hair care")
    partner = partner_with_login("maria-lopez", name="Maria Lopez")
    now = timezone.now()
    Click.objects.bulk_create(
        Click(id=uuid.uuid4(), partner=partner, at=now - timedelta(days=days))
        for days in (0, 1, 1, 4)
    )
    sell(api, "order-1", (now - timedelta(hours=2)).isoformat(), "80.00", "maria-lopez")
    site = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)

    page.goto(f"{site}/partner/")
    expect(page).to_have_url(re.compile(r"/partner/login/\?next=/partner/$"))
    page.get_by_label("Partner code or email").fill("MARIA-LOPEZ")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Maria Lopez")

    nav = page.get_by_role("navigation", name="Partner Center")
    nav.get_by_role("link", name="My links").click()
    hair_link = "http://127.0.0.1:8000/go/haircare/maria-lopez/"
    row = page.get_by_role("row").filter(has_text="Hair care")
    row.get_by_role("button", name="Copy").click()
    expect(row.get_by_role("button")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == hair_link

    page.get_by_label("Tracking link").select_option(label="Hair care")
    page.get_by_label("Ad code").fill("june news")
    generated = f"{hair_link}?ad=june%20news"
    expect(page.get_by_label("Your link")).to_have_value(generated)  # made by the script
    page.locator("[data-generated-copy]").click()
    assert page.evaluate("navigator.clipboard.readText()") == generated
    page.get_by_role("button", name="Make the link").click()
    expect(page.get_by_label("Your link")).to_have_value(generated)  # made by the server

    nav.get_by_role("link", name="My ledger").click()
    expect(page.locator('[data-figure="earned"]')).to_have_text("10.00")
    expect(page.locator('[data-figure="ending_balance"]')).to_have_text("10.00")
    ledger_row = page.get_by_role("row").filter(has_text="order-1")
    expect(ledger_row).to_contain_text("Sale, level 1: credited because the order named you")

    nav.get_by_role("link", name="My dashboard").click()
    daily = page.get_by_role("img", name=re.compile(r"^Clicks, opt-ins and orders per day"))
    expect(daily).to_be_visible()
    assert daily.locator("rect.chart-bar").count() == 4  # clicks on 3 days, 1 order
    weekly = page.get_by_role("img", name=re.compile(r"^Commissions earned per week"))
    expect(weekly).to_be_visible()
    expect(weekly.locator("rect.chart-bar")).to_have_count(1)
    box = daily.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 200
    screenshot()
