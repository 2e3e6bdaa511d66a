"""A partner reads the welcome message and copies a resource in a real browser (SPEC §12)."""

import io

import pytest
from django.conf import settings as django_settings
from PIL import Image
from playwright.sync_api import expect

from commissions.creatives import banner_image_check, resource_create, welcome_message_update
from tests.functional.test_browser_csp import watch
from tests.functional.test_partner_center import PASSWORD, partner_with_login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def banner_png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def resources(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    welcome_message_update(
        text="**Welcome to our program!** Start with the banners below.\n\n"
        "<script>alert('staff')</script>",
        acting_user=None,
    )
    for title, size in (("Leaderboard", (728, 90)), ("Medium rectangle", (300, 250))):
        image = banner_image_check(io.BytesIO(banner_png(size)), name="b.png")
        resource_create(
            data={"kind": "banner", "title": title, "alt_text": f"Shop now: {title}"},
            image=image,
        )
    resource_create(
        data={
            "kind": "email",
            "title": "Newsletter paragraph",
            "text": "Dear readers,\n\nI buy all my hair care at this shop: {link}\n\nEnjoy!",
        }
    )
    resource_create(
        data={"kind": "social", "title": "Post", "text": "My favourite shop 👉 {link} #ad"}
    )


def log_in(page, site: str) -> None:
    page.goto(f"{site}/partner/login/")
    page.get_by_label("Partner code or email").fill("maria-lopez")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.parametrize("width", [1280, 375])
def test_resources_page_fits_and_copies_the_partner_link(
    live_server, page, screenshot, resources, width
):
    partner_with_login("maria-lopez", name="Maria Lopez")
    partner_with_login("other-partner")
    site = live_server.url
    page.set_viewport_size({"width": width, "height": 900})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    problems = watch(page)  # CSP violations, script errors, failed loads
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    log_in(page, site)
    welcome = page.get_by_role("region", name="Welcome message")
    expect(welcome.locator("strong")).to_have_text("Welcome to our program!")
    expect(welcome).to_contain_text("<script>alert('staff')</script>")  # shown as text

    if width < 800:
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Partner Center").get_by_role(
        "link", name="Resources"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Resources")
    link = f"{django_settings.SITE_URL}/go/maria-lopez/"

    banners = page.locator("li.resource").filter(has=page.locator("img"))
    expect(banners).to_have_count(2)
    for image in banners.locator("img").all():
        assert image.evaluate("i => i.complete && i.naturalWidth > 0")  # served, and shown
    leaderboard = banners.filter(has_text="Leaderboard")
    leaderboard.get_by_role("button", name="Copy the link").click()
    expect(leaderboard.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link
    leaderboard.get_by_role("button", name="Copy the HTML").click()
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet.startswith(f'<a href="{link}"><img src="{django_settings.SITE_URL}/media/')
    assert snippet.endswith('alt="Shop now: Leaderboard" width="728" height="90"></a>')

    email = page.locator("li.resource").filter(has_text="Newsletter paragraph")
    email.get_by_role("button", name="Copy the text").click()
    assert page.evaluate("navigator.clipboard.readText()") == (
        f"Dear readers,\n\nI buy all my hair care at this shop: {link}\n\nEnjoy!"
    )
    expect(page.get_by_text("/go/other-partner/")).to_have_count(0)

    page.wait_for_load_state("load")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{scroll_width} px wide at {width} px"
    assert dialogs == []
    assert problems == []
    screenshot()
