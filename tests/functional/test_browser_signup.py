"""A visitor signs up as a partner in a real browser, through a partner's link (SPEC §9)."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from partners.models import Partner, PartnerStatus
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, TrackingLinkFactory

# transaction=True: the live server's thread must see the test's rows. The flush after such a
# test re-emits post_migrate, which makes the defaults row again (partners.apps).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_a_visitor_follows_a_partners_link_signs_up_and_confirms(live_server, page, screenshot):
    site = live_server.url
    alice = PartnerFactory(code="alice", name="Alice Recruiter")
    TrackingLinkFactory(code="join", name="Become a partner", destination=f"{site}/partner/signup/")
    defaults_update(data={"signup_enabled": True, "signup_parent": "referring"}, acting_user=None)

    page.goto(f"{site}/go/join/alice/")
    expect(page).to_have_url(re.compile(r"/partner/signup/\?rp_ref="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Become a partner")
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill("blue-river-lantern-42")
    page.get_by_label("The same password again").fill("blue-river-lantern-42")
    page.get_by_label("Your website").fill("ada.example/blog")
    page.get_by_label("How will you promote us?").fill("My newsletter on engines.")
    trap = page.locator("#id_fax").bounding_box()
    assert trap is not None and trap["x"] + trap["width"] < 0  # out of sight, left empty
    screenshot()
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    partner = Partner.objects.select_related("signup").get(email="ada@example.com")
    assert (partner.code, partner.status, partner.parent_id) == (
        "ada-lovelace",
        PartnerStatus.PENDING,
        alice.pk,
    )
    assert partner.signup.website == "https://ada.example/blog"

    [message] = mail.outbox
    path = re.search(r"/partner/signup/confirm/[^/\s]+/", message.body)[0]
    page.goto(f"{site}{path}")
    page.get_by_role("button", name="Confirm my email").click()

    expect(page.get_by_role("status")).to_contain_text("Your email is confirmed.")
    partner.signup.refresh_from_db()
    assert partner.signup.email_confirmed_at is not None
