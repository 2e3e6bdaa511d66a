"""The pages work in a real browser under the Content Security Policy (issue 7, part 3):
chromium reports no CSP violation and no script error on the staff pages, the admin, the
API docs and the Partner Center, and their scripts still run."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.factories import ProgramFactory, StaffFactory, TrackingLinkFactory
from tests.functional.test_partner_center import PASSWORD, partner_with_login, sell

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

STAFF_PAGES = [
    "/staff/",
    "/staff/settings/referral-partner-defaults/",
    "/staff/partners/",
    "/staff/partners/maria-lopez/",
    "/staff/partners/maria-lopez/erase/",
    "/staff/reports/ledger/",
    "/admin/",
    "/admin/partners/partner/",
    "/admin/partners/partner/import/",
    "/admin/partners/partner/export/",
]
PARTNER_PAGES = ["/partner/", "/partner/links/", "/partner/ledger/", "/partner/commissions/"]
PARTNER_PAGES += ["/partner/resources/"]


def watch(page) -> list[str]:
    """Every CSP violation, script error and failed load the page reports from now on
    (but the favicon.ico a browser asks every site for: this one has none)."""
    problems: list[str] = []

    def console(message) -> None:
        if message.text.startswith("Failed to load resource"):
            return  # reported with its address by on_response
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def log_in(page, site: str, url: str, username: str) -> None:
    page.goto(f"{site}{url}")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form [type=submit]").click()


def test_staff_pages_and_the_admin_run_under_the_csp(live_server, page, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    partner_with_login("maria-lopez", name="Maria Lopez")
    StaffFactory(username="staff", password=PASSWORD)
    site = live_server.url
    problems = watch(page)
    log_in(page, site, "/accounts/login/", "staff")
    expect(page).to_have_url(re.compile(r"/staff/$"))

    for url in STAFF_PAGES:
        response = page.goto(f"{site}{url}")
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"]

    # The export page's "Select all" box clears and ticks every field.
    page.goto(f"{site}/admin/partners/partner/export/")
    fields = page.locator('.selectable-field-export-row input[type="checkbox"]')
    page.locator("input.select-toggle").uncheck()
    expect(fields.first).not_to_be_checked()
    page.locator("input.select-toggle").check()
    expect(fields.last).to_be_checked()

    # The defaults page's script greys out "Use IP address" with "Cookies only".
    page.goto(f"{site}/staff/settings/referral-partner-defaults/")
    page.get_by_label("Cookies only").check()
    expect(page.locator("#field-use_ip_address")).to_have_class(re.compile(r"\bis-muted\b"))
    assert problems == []


def test_the_api_docs_render_under_the_csp(live_server, page):
    StaffFactory(username="staff", password=PASSWORD)
    site = live_server.url
    problems = watch(page)
    log_in(page, site, "/accounts/login/", "staff")

    page.goto(f"{site}/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Referral Partner Program API")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert problems == []


def test_the_partner_center_runs_under_the_csp(live_server, page, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    TrackingLinkFactory(code="haircare", name="Hair care")
    partner_with_login("maria-lopez", name="Maria Lopez")
    sell(api, "order-1", "2026-11-18T10:00:00Z", "80.00", "maria-lopez")
    site = live_server.url
    problems = watch(page)
    log_in(page, site, "/partner/login/", "maria-lopez")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Maria Lopez")

    for url in PARTNER_PAGES:
        response = page.goto(f"{site}{url}")
        assert response.status == 200, url

    # The link generator's script builds the URL as you type.
    page.goto(f"{site}/partner/links/")
    page.get_by_label("Tracking link").select_option(label="Hair care")
    page.get_by_label("Ad code").fill("june")
    expect(page.get_by_label("Your link")).to_have_value(
        "http://127.0.0.1:8000/go/haircare/maria-lopez/?ad=june"
    )
    assert problems == []
