"""Staff invite a partner from the partner page; the partner sets their password on a phone
(SPEC §12), in a real browser."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from playwright.sync_api import expect

from tests.factories import PartnerFactory, StaffFactory
from tests.functional.test_browser_every_page import serious_violations, too_wide

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

LINK = re.compile(r"http://127\.0\.0\.1:8000(/partner/invitation/[^/\s]+/[^/\s]+/)")


def test_staff_invite_and_the_partner_sets_a_password_at_375_px(live_server, page, screenshot):
    StaffFactory(username="maria")
    PartnerFactory(code="kim-lee", name="Kim Lee", email="kim@partners.example")
    site = live_server.url

    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Username").fill("maria")
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{site}/staff/partners/kim-lee/")
    card = page.locator("#partner-center-access")
    card.get_by_role("button", name="Invite to the Partner Center").click()
    expect(page.get_by_text("Invitation to the Partner Center queued")).to_be_visible()
    expect(card).to_contain_text("Invited")
    [message] = mail.outbox
    link = LINK.search(message.body)[1]

    page.context.clear_cookies()
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{site}{link}")
    expect(page).to_have_url(re.compile(r"/set-password/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose your password")
    assert too_wide(page) is None
    assert serious_violations(Axe(), page) == []
    screenshot()
    page.get_by_label("New password", exact=True).fill("kim-lee-new-phrase")
    page.get_by_label("New password confirmation").fill("kim-lee-new-phrase")
    page.get_by_role("button", name="Set my password").click()

    expect(page).to_have_url(re.compile(r"/partner/$"))
    expect(page.get_by_text("Your password is set. Welcome, Kim Lee.")).to_be_visible()
    page.goto(f"{site}{link}")
    expect(page.get_by_role("heading", level=1)).to_have_text("This invitation link does not work")
    assert too_wide(page) is None
