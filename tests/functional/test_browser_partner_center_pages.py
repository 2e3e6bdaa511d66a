"""Every Partner Center page in a real browser at 1,280 and 375 px wide (SPEC §12, issue 18):
no horizontal scroll, the commissions' amounts on screen, charts inside the screen, the recruit
link copied exactly; a screenshot of each page in test-output/partner-<page>-<width>.png."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from commissions.models import Commission
from commissions.payouts import payout_batch_create
from partners.selectors import recruit_link
from partners.services.defaults import defaults_update
from partners.services.programs import program_set_product_rates
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory
from tests.functional.conftest import OUTPUT_DIR
from tests.functional.test_browser_csp import watch
from tests.functional.test_partner_center import PASSWORD, partner_with_login, refund, sell

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

D = Decimal
WIDTHS = (1280, 375)


@pytest.fixture
def maria(api):
    """Maria in Gold (3 levels, 10 % / 5 % / 2 %, BOOK 1.5 %), with two recruits and one of
    theirs; orders over the last weeks, one refunded after it was paid. The defaults' flags
    switch the percent on and the amount off (they set every program's)."""
    defaults_update(
        data={"levels": 3, "payout_amount": False, "payout_percent": True, "signup_enabled": True},
        acting_user=None,
    )
    gold = ProgramFactory(
        name="Gold",
        priority=1,
        levels=3,
        payout_amount=False,
        payout_percent=True,
        hold_days=14,
        rates={
            1: {"sale_percent": D("10")},
            2: {"sale_percent": D("5")},
            3: {"sale_percent": D("2")},
        },
    )
    program_set_product_rates(
        program=gold,
        product_rates=[{"sku": "BOOK", "rates": [{"level": 1, "sale_percent": D("1.5")}]}],
    )
    TrackingLinkFactory(code="hair", name="Hair care products for everyone", is_default=True)
    maria = partner_with_login("maria-lopez", name="Maria Lopez", program=gold)
    james = PartnerFactory(code="james-carter", name="James Carter", parent=maria, program=gold)
    PartnerFactory(code="priya-n", name="Priya Natarajan", parent=maria, program=gold)
    PartnerFactory(code="sam-okafor", name="Sam Okafor", parent=james, program=gold)
    now = timezone.now()
    for n, who in enumerate(["maria-lopez", "james-carter", "sam-okafor"] * 3):
        at = (now - timedelta(days=40 - 4 * n)).isoformat()
        sell(api, f"order-{n}", at, "1234.56", who, email=f"buyer{n}@example.com")
    payout_batch_create(
        start=(now - timedelta(days=60)).date(),
        end=(now - timedelta(days=1)).date(),
        method="earned_in_range",
    )
    refund(api, "refund-0", "order-0", now.isoformat())
    return maria


def pages(maria) -> list[tuple[str, str]]:
    commission = Commission.objects.filter(partner=maria, entry="clawback").first()
    return [
        ("dashboard", "/partner/"),
        ("programs", "/partner/programs/"),
        ("links", "/partner/links/"),
        ("resources", "/partner/resources/"),
        ("reports", "/partner/reports/"),
        ("ledger", "/partner/ledger/"),
        ("commissions", "/partner/commissions/"),
        ("commission", f"/partner/commissions/{commission.pk}/"),
        ("recruits", "/partner/recruits/"),
        ("profile", "/partner/profile/"),
        ("payout-details", "/partner/profile/payout/"),
        ("password", "/partner/profile/password/"),
    ]


def log_in(page, site: str) -> None:
    page.goto(f"{site}/partner/login/")
    page.get_by_label("Partner code or email").fill("maria-lopez")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1).first).to_be_visible()


def inside(page, locator) -> bool:
    """The element is within the window, left to right."""
    box = locator.bounding_box()
    return (
        box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_every_partner_center_page_fits_the_screen(live_server, page, maria, width):
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    problems = watch(page)
    log_in(page, live_server.url)
    too_wide = []
    for name, path in pages(maria):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            too_wide.append(f"{path}: {scroll_width} px")
        page.screenshot(path=str(OUTPUT_DIR / f"partner-{name}-{width}.png"), full_page=True)
        if name == "commissions":
            amounts = page.locator(".commissions-table td[data-label=Amount]")
            assert amounts.count() >= 5
            for amount in amounts.all():
                assert inside(page, amount), amount.text_content()
        if name == "ledger":
            for amount in page.locator(".ledger-table td[data-label=Amount]").all():
                assert inside(page, amount), amount.text_content()
            # Every order was paid out, then order-0 was refunded: below zero, and why.
            expect(page.locator(".balance-below-zero")).to_contain_text(
                "Your balance is below zero because refunds took back 123.46 USD"
            )
        if name == "dashboard":
            figures = page.locator("figure.chart-figure")
            assert figures.count() == 2
            for figure in figures.all():
                assert inside(page, figure)  # the chart scrolls inside it on a phone
                # Drawn at 600 of its 720 units or more: its 12-unit text is 10 px or more.
                assert figure.locator("svg").bounding_box()["width"] >= 600
        if name == "commission":
            text = page.locator("main").inner_text()
            assert "Refund refund-0 returned" in text
            for key in ("clawback_of", "completes_refund", "attribution.source"):
                assert key not in text
        if name == "programs":
            expect(page.get_by_text("You earn 10 % of each sale you refer")).to_be_visible()
    assert too_wide == []
    assert problems == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_recruit_link_is_copied_exactly(live_server, page, maria, width):
    site = live_server.url
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    log_in(page, site)
    if width < 800:
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Partner Center").get_by_role(
        "link", name="My recruits"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My recruits")
    rows = page.locator("tr[data-recruit]")
    expect(rows).to_have_count(2)
    james = rows.filter(has_text="James Carter")
    # James's 3 sales of 1234.56: 5 % = 61.73 each, 185.19 at level 2; Sam's (James's
    # recruit) 3 sales: 2 % = 24.69 each, 74.07 at level 3.
    expect(james.locator("td[data-label='Level 2']")).to_have_text("185.19 USD")
    expect(james.locator("td[data-label='Level 3']")).to_have_text("74.07 USD")
    assert inside(page, james.locator("td[data-label='Level 3']"))

    page.get_by_role("button", name="Copy").click()

    assert page.evaluate("navigator.clipboard.readText()") == recruit_link(maria)
    expect(page.get_by_text("Sam Okafor")).to_have_count(0)  # James's recruit, not Maria's
