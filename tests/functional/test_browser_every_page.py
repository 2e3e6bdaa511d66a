"""Every staff and Partner Center page in a real browser at 1,280 and 375 px wide (issue 20):
no page is wider than the screen, axe-core finds no serious or critical violation, and the
key pages leave screenshots in test-output/.

axe-core comes with axe-playwright-python (its axe.min.js is in the package; nothing is
downloaded). The Django admin and the Swagger UI of the API docs are measured for width
(both are reachable from the menu) but not checked with axe: their markup is Django's and
Swagger's, not this project's.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from commissions.hosted_forms import hosted_form_save
from commissions.models import (
    Commission,
    Contact,
    HostedForm,
    Order,
    PayoutBatch,
    WebhookDelivery,
)
from commissions.payouts import payout_batch_create
from commissions.services.simulations import preview_create
from commissions.webhooks import webhook_endpoint_create
from partners.models import Program, TrackingLink
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from partners.services.partners import partner_login_set_password
from tests.factories import (
    ClickFactory,
    ClickFlagFactory,
    PartnerFactory,
    PartnerSignupFactory,
    ProgramFactory,
    StaffFactory,
    TrackingLinkFactory,
)
from tests.functional.test_defaults_page import form_data

# transaction=True: the live server's thread must see the test's rows. The flush after such a
# test re-emits post_migrate, which makes the defaults row again (partners.apps).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "correct-horse-battery"  # the factories' password
PARTNER_PASSWORD = "partner-pages-pass-42"
WIDTHS = (1280, 375)
SERIOUS = {"serious", "critical"}


@dataclass(frozen=True)
class Site:
    partner_code: str
    order_id: str
    contact_pk: int
    program_pk: int
    link_pk: int
    batch_pk: int
    endpoint_pk: int
    hosted_form_pk: int
    commission_pk: int
    simulation_pk: str


def sell(api, event_id: str, day: date, partner: str, price: str = "180.00") -> None:
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": event_id,
            "occurred_at": f"{day.isoformat()}T12:00:00Z",
            "sale_partner": partner,
            "contact": {"email": f"{event_id}@buyers.example", "first_name": "Ada"},
            "items": [{"sku": "HAIR-1", "quantity": 2, "unit_price": price}],
            "shipping": "5.00",
        },
        format="json",
    )
    assert response.status_code == 201, response.data


@pytest.fixture
def site(api) -> Site:
    """A program in use: partners in a tree, orders over the last weeks (one refunded in
    part), a payout, sign-ups waiting, a click flag, a webhook endpoint with a failed
    delivery, a hosted form and an API key."""
    program = ProgramFactory(
        name="Gold", priority=1, rates={1: {"sale_amount": Decimal("12.50")}, 2: {"sale_amount": 4}}
    )
    boss = PartnerFactory(code="maria-lopez", name="Maria Lopez", program=program)
    kids = [
        PartnerFactory(code=code, name=name, parent=boss)
        for code, name in [("james-carter", "James Carter"), ("priya-n", "Priya Natarajan")]
    ]
    PartnerFactory(code="old-friend", name="Old Friend", status="inactive")
    TrackingLinkFactory(code="hair", name="Hair care", is_default=True)
    ClickFactory.create_batch(3, partner=boss)
    today = timezone.now().date()
    for n in range(12):
        who = [boss, *kids][n % 3]
        sell(api, f"web-{n}", today - timedelta(days=3 * n + 1), who.code)
    refund = {"event_id": "r1", "order_id": "web-1", "amount": "90.00"}
    assert api.post("/api/v1/events/refunds/", refund, format="json").status_code == 201
    batch = payout_batch_create(
        start=today - timedelta(days=60), end=today - timedelta(days=20), method="earned_in_range"
    )
    PartnerSignupFactory.create_batch(2)
    ClickFlagFactory(partner=kids[0])
    endpoint = webhook_endpoint_create(
        url="https://hooks.shop.example/rp", events=["commission.created"], description="Shop"
    )
    WebhookDelivery.objects.create(
        uid=uuid.uuid4(),
        endpoint=endpoint,
        event_type="commission.created",
        subject_id=Order.objects.first().pk,
        status="failed",
        attempts=10,
        log=[{"attempt": 10, "at": "x", "status": 500, "error": "HTTP 500", "ms": 31}],
        created_at=timezone.now(),
    )
    hosted_form = hosted_form_save(hosted_form=HostedForm(code="newsletter", name="Newsletter"))
    api_key_create(name="crm sync")
    partner_login_set_password(partner=boss, password=PARTNER_PASSWORD)
    defaults_update(data={"signup_enabled": True}, acting_user=None)
    order = Order.objects.get(order_id="web-0")
    # A preview of 1 level instead of 2 over the orders' days (run in-process: no broker).
    simulation = preview_create(
        kind="defaults",
        program=None,
        form_data={name: [value] for name, value in form_data(levels=1).items()},
        start=today - timedelta(days=40),
        end=today,
        requested_by=None,
    )
    return Site(
        partner_code=boss.code,
        order_id=order.order_id,
        contact_pk=Contact.objects.order_by("pk").first().pk,
        program_pk=Program.objects.get(name="Gold").pk,
        link_pk=TrackingLink.objects.get(code="hair").pk,
        batch_pk=batch.pk,
        endpoint_pk=endpoint.pk,
        hosted_form_pk=hosted_form.pk,
        commission_pk=Commission.objects.filter(partner=boss).order_by("pk").first().pk,
        simulation_pk=str(simulation.pk),
    )


def staff_pages(site: Site) -> list[str]:
    code = site.partner_code
    return [
        "/staff/",
        "/staff/?days=365",
        "/staff/partners/",
        "/staff/partners/new/",
        f"/staff/partners/{code}/",
        f"/staff/partners/{code}/edit/",
        f"/staff/partners/{code}/export/",
        f"/staff/partners/{code}/erase/",
        f"/staff/crm/partners/{code}/activity/",
        "/staff/signups/",
        "/staff/signups/?show=unconfirmed",
        "/staff/click-flags/",
        "/staff/programs/",
        "/staff/programs/new/",
        f"/staff/programs/{site.program_pk}/",
        f"/staff/programs/{site.program_pk}/edit/",
        "/staff/tracking-links/",
        "/staff/tracking-links/new/",
        f"/staff/tracking-links/{site.link_pk}/edit/",
        "/staff/orders/",
        f"/staff/orders/{site.order_id}/",
        "/staff/contacts/",
        f"/staff/contacts/{site.contact_pk}/",
        "/staff/reports/",
        "/staff/reports/ledger/",
        "/staff/reports/activity/",
        "/staff/reports/payments/",
        "/staff/reports/links/",
        "/staff/payouts/",
        f"/staff/payouts/{site.batch_pk}/",
        "/staff/settings/",
        "/staff/settings/referral-partner-defaults/",
        "/staff/settings/referral-partner-defaults/history/",
        "/staff/settings/webhooks/",
        "/staff/settings/webhooks/new/",
        f"/staff/settings/webhooks/{site.endpoint_pk}/",
        "/staff/settings/webhooks/deliveries/",
        "/staff/settings/hosted-forms/",
        "/staff/settings/hosted-forms/new/",
        f"/staff/settings/hosted-forms/{site.hosted_form_pk}/",
        "/staff/settings/partner-center/",
        "/staff/settings/resources/",
        "/staff/settings/resources/new/",
        "/staff/settings/api-keys/",
        "/staff/settings/locked-logins/",
        f"/staff/simulations/{site.simulation_pk}/",
        "/staff/partners/nobody-at-all/",  # the 404 page
    ]


# Reachable from the staff menu, not this project's markup: width only.
THIRD_PARTY_PAGES = ["/admin/", "/admin/partners/partner/", "/api/docs/"]


def partner_pages(site: Site) -> list[str]:
    return [
        "/partner/",
        "/partner/programs/",
        "/partner/links/",
        "/partner/resources/",
        "/partner/reports/",
        "/partner/ledger/",
        "/partner/commissions/",
        f"/partner/commissions/{site.commission_pk}/",
        "/partner/recruits/",
        "/partner/profile/",
        "/partner/profile/password/",
    ]


PUBLIC_PAGES = [
    "/accounts/login/",
    "/partner/login/",
    "/partner/password-reset/",
    "/partner/signup/",
]


def log_in_staff(page, live_server) -> None:
    StaffFactory(username="maria")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def log_in_partner(page, live_server, code: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/partner/login/")
    page.get_by_label("Partner code or email").fill(code)
    page.get_by_label("Password").fill(PARTNER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/partner/$"))


def too_wide(page) -> int | None:
    """The page's width when it is wider than the window, else None."""
    width = page.evaluate("document.documentElement.scrollWidth")
    return width if width > page.viewport_size["width"] else None


def serious_violations(axe: Axe, page) -> list[str]:
    results = axe.run(page)
    return [
        f"{violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]


def check_pages(page, live_server, paths: list[str], *, axe: Axe | None) -> list[str]:
    problems = []
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
        if (width := too_wide(page)) is not None:
            problems.append(f"{path}: {width} px wide")
        if axe is not None:
            problems += [f"{path}: {found}" for found in serious_violations(axe, page)]
    return problems


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_and_passes_axe(live_server, page, site, width):
    page.set_viewport_size({"width": width, "height": 900})
    axe = Axe()
    problems = check_pages(page, live_server, PUBLIC_PAGES, axe=axe)
    log_in_staff(page, live_server)
    problems += check_pages(page, live_server, staff_pages(site), axe=axe)
    problems += check_pages(page, live_server, THIRD_PARTY_PAGES, axe=None)
    log_in_partner(page, live_server, site.partner_code)
    problems += check_pages(page, live_server, partner_pages(site), axe=axe)
    assert not problems, "\n".join(problems)


def test_the_pages_cover_the_menu(live_server, page, site):
    """Every link of the staff menu and of the settings menu is among the pages checked."""
    log_in_staff(page, live_server)
    checked = set(staff_pages(site)) | set(THIRD_PARTY_PAGES)
    menu = page.get_by_role("navigation", name="Main").get_by_role("link")
    page.goto(f"{live_server.url}/staff/settings/")
    settings_menu = page.get_by_role("navigation", name="Settings").get_by_role("link")
    hrefs = [link.get_attribute("href") for links in (menu, settings_menu) for link in links.all()]
    assert len(hrefs) == 12 + 9
    assert set(hrefs) <= checked, set(hrefs) - checked


def test_the_menu_folds_behind_a_button_on_a_phone(live_server, page, site):
    page.set_viewport_size({"width": 375, "height": 800})
    log_in_staff(page, live_server)
    menu = page.get_by_role("button", name="Menu")
    links = page.get_by_role("navigation", name="Main")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(links).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    links.get_by_role("link", name="Sign-ups").click()
    expect(page.get_by_role("heading", name="Sign-ups", exact=True)).to_be_visible()
    # On a desktop there is no button: the menu is always there.
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def test_a_wide_table_scrolls_on_its_own_with_its_first_column_in_view(live_server, page, site):
    page.set_viewport_size({"width": 375, "height": 800})
    log_in_staff(page, live_server)
    page.goto(f"{live_server.url}/staff/signups/")
    wrap = page.locator(".table-wrap").first
    expect(wrap).to_have_class(re.compile(r"\bis-scrollable\b"))
    expect(page.get_by_text("More columns: scroll the table sideways")).to_be_visible()
    expect(wrap).to_have_attribute("tabindex", "0")
    first_cell = wrap.locator("tbody tr").first.locator("td, th").first
    before = first_cell.bounding_box()["x"]
    wrap.evaluate("element => element.scrollBy(400, 0)")
    assert wrap.evaluate("element => element.scrollLeft") > 0
    assert abs(first_cell.bounding_box()["x"] - before) < 1  # it stays
    approve = page.get_by_role("button", name=re.compile(r"^Approve ")).first
    approve.scroll_into_view_if_needed()
    expect(approve).to_be_in_viewport()
    assert too_wide(page) is None


# --- Screenshots of the key pages (test-output/) ---------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_screenshots_of_the_key_pages(live_server, page, site, width):
    from tests.functional.conftest import OUTPUT_DIR

    OUTPUT_DIR.mkdir(exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    log_in_staff(page, live_server)

    def shot(name: str) -> None:
        page.screenshot(path=str(OUTPUT_DIR / f"issue20-{name}-{width}.png"), full_page=True)

    for name, path in [
        ("dashboard", "/staff/"),
        ("defaults-valid", "/staff/settings/referral-partner-defaults/"),
        ("signups", "/staff/signups/"),
        ("payouts", "/staff/payouts/"),
        ("settings", "/staff/settings/"),
        ("settings-webhook", f"/staff/settings/webhooks/{site.endpoint_pk}/"),
        ("settings-api-keys", "/staff/settings/api-keys/"),
        ("partners", "/staff/partners/"),
    ]:
        page.goto(f"{live_server.url}{path}")
        shot(name)

    page.goto(f"{live_server.url}/staff/settings/referral-partner-defaults/")
    page.get_by_label("Referral partner code prefix").fill("bad prefix")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_be_focused()
    shot("defaults-invalid")
    assert PayoutBatch.objects.count() == 1
