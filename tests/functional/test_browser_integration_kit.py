"""The merchant's own page with rp.js and a hosted form, in a real browser (SPEC §9).

The merchant's static pages are served by the test on another address (127.0.0.2, another
origin and another site than the app's 127.0.0.1), so the app's own cookie never reaches
the form post: the credit can only come from what rp.js kept on the merchant's side.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import expect

from commissions.hosted_forms import form_html_example, hosted_form_save
from commissions.models import Event, HostedForm, Lead
from partners.tokens import decode_token
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

MERCHANT_HOST = "127.0.0.2"
TEN_YEARS = 3650 * 24 * 3600
CHROMIUM_MAX_AGE = 400 * 24 * 3600


@dataclass
class Site:
    root: Path
    url: str


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def merchant(tmp_path) -> Iterator[Site]:
    """The merchant's static web site, on another origin than the app."""
    server = ThreadingHTTPServer((MERCHANT_HOST, 0), partial(QuietHandler, directory=tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(root=tmp_path, url=f"http://{MERCHANT_HOST}:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


def page_html(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


def test_a_visitor_from_a_partner_link_fills_the_merchants_form_and_the_partner_is_credited(
    live_server, page, screenshot, merchant, settings
):
    settings.SITE_URL = live_server.url
    settings.ALLOWED_REDIRECT_HOSTS = [urlsplit(merchant.url).netloc]
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    maria = PartnerFactory(code="maria-lopez", name="Maria Lopez")
    contact_form = hosted_form_save(
        hosted_form=HostedForm(
            code="contact-us",
            name="Contact us",
            keep_fields="company",
            thank_you_url=f"{merchant.url}/thanks.html",
        )
    )
    snippet = form_html_example(contact_form)  # what staff copy from the admin
    (merchant.root / "landing.html").write_text(
        page_html(
            "Hair care", f'<h1>Hair care</h1><script src="{live_server.url}/static/rp.js"></script>'
        )
    )
    (merchant.root / "contact.html").write_text(page_html("Contact", f"<h1>Contact</h1>{snippet}"))
    (merchant.root / "thanks.html").write_text(page_html("Thanks", "<h1>Thanks!</h1>"))

    landing = f"{merchant.url}/landing.html"
    page.goto(f"{live_server.url}/go/maria-lopez/?to={quote(landing, safe='')}")

    expect(page.get_by_role("heading", name="Hair care")).to_be_visible()
    assert page.url.startswith(f"{landing}?rp_ref=")
    token = parse_qs(urlsplit(page.url).query)["rp_ref"][0]
    assert [click.partner_id for click in decode_token(token)] == [maria.pk]
    assert page.evaluate("window.rp.token()") == token
    [kept] = [c for c in page.context.cookies(merchant.url) if c["name"] == "rp_ref"]
    assert (kept["domain"], kept["value"], kept["sameSite"]) == (MERCHANT_HOST, token, "Lax")
    # Ten years asked for; Chromium keeps no cookie longer than 400 days (the app's neither).
    assert abs(kept["expires"] - (time.time() + min(TEN_YEARS, CHROMIUM_MAX_AGE))) < 120

    # Another page of the merchant's, without rp_ref in its address: the cookie fills the form.
    page.context.clear_cookies(domain="127.0.0.1")  # the app's own cookie is gone too
    page.goto(f"{merchant.url}/contact.html")
    expect(page.locator('input[name="rp_ref"]')).to_have_value(token)
    event_id = page.locator('input[name="rp_event_id"]').input_value()
    assert len(event_id) == 32
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("company").fill("Acme")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name="Thanks!")).to_be_visible()
    assert page.url == f"{merchant.url}/thanks.html"
    screenshot()
    lead = Lead.objects.select_related("contact", "partner", "event").get()
    assert (lead.contact.email, lead.contact.first_name) == ("ada@example.com", "Ada")
    assert (lead.partner, lead.form, lead.trace["source"]) == (maria, "contact-us", "cookie")
    event = Event.objects.get()
    assert event.event_id == f"form-contact-us-{event_id}"
    assert event.payload["tracking_token"] == token
    assert event.payload["fields"] == {"company": "Acme"}
