"""The Partner Center's welcome message and Resources (SPEC §12, issue 18 items 1 and 4):
staff write and upload them, partners read them with their own link filled in."""

import html
import io
import random
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.test import Client
from PIL import Image

from commissions.creative_selectors import markdown_html
from commissions.creatives import banner_image_check, resource_create
from commissions.models import PartnerCenterSettings, Resource
from tests.factories import UserFactory
from tests.functional.test_partner_center import logged_in, page_text, partner_with_login

pytestmark = pytest.mark.django_db

SETTINGS_PAGE = "/staff/settings/partner-center/"
RESOURCES = "/staff/settings/resources/"
NEW = "/staff/settings/resources/new/"
SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script></svg>"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """Uploads go to a directory of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "https://partners.shop.example"
    return settings.MEDIA_ROOT


def stored_files(media: Path) -> list[str]:
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (728, 90), noise: bool = False) -> bytes:
    if noise:
        noisy = random.Random(0).randbytes(size[0] * size[1] * 3)  # does not compress
        image = Image.frombytes("RGB", size, noisy)
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def banner_form(name: str = "spring.png", content: bytes | None = None, **fields) -> dict:
    return {
        "kind": "banner",
        "title": "Spring sale 728x90",
        "alt_text": "Spring sale: 20 % off",
        "text": "",
        "position": "0",
        "image": upload(name, image_bytes() if content is None else content),
        **fields,
    }


def a_banner(title: str = "Leaderboard", alt: str = "Shop now") -> Resource:
    image = banner_image_check(io.BytesIO(image_bytes()), name="b.png")
    return resource_create(
        data={"kind": "banner", "title": title, "alt_text": alt, "position": 1}, image=image
    )


def a_text(text: str = "Hi! Our shop has a sale: {link} (ends Sunday).") -> Resource:
    return resource_create(data={"kind": "email", "title": "Sale email", "text": text})


# --- Upload: what is stored, and what is refused -----------------------------------------


def test_staff_upload_a_banner_served_with_its_type_and_nosniff(staff_client, media):
    content = image_bytes()

    response = staff_client.post(NEW, banner_form(content=content))

    assert response.status_code == 302, page_text(response)
    assert response["Location"] == RESOURCES
    banner = Resource.objects.get()
    assert (banner.kind, banner.image_type, banner.width, banner.height) == (
        "banner",
        "image/png",
        728,
        90,
    )
    assert re.fullmatch(r"banners/[0-9a-f]{32}\.png", banner.image.name)
    assert stored_files(media) == [banner.image.name]
    served = Client().get(f"/media/{banner.image.name}")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served["Content-Security-Policy"]
    assert b"".join(served.streaming_content) == content


def test_a_jpeg_is_stored_as_jpg_and_served_as_image_jpeg(staff_client):
    staff_client.post(NEW, banner_form("photo.jpeg", image_bytes("JPEG")))

    banner = Resource.objects.get()
    assert banner.image.name.endswith(".jpg")
    assert Client().get(f"/media/{banner.image.name}")["Content-Type"] == "image/jpeg"


NOT_AN_IMAGE = "The file is not an image Pillow can read"
REFUSED = [
    pytest.param(
        "banner.html",
        b"<!doctype html><html><script>alert(1)</script></html>",
        "SVG and HTML files are refused",
        id="html",
    ),
    pytest.param(
        "banner.png",
        b"  <html><body onload=alert(1)>",
        "SVG and HTML files are refused",
        id="html-named-png",
    ),
    pytest.param("banner.svg", SVG_WITH_SCRIPT, "SVG and HTML files are refused", id="svg-script"),
    pytest.param("banner.png", b"\x00\x01 just some bytes" * 50, NOT_AN_IMAGE, id="bytes"),
    pytest.param("banner.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", NOT_AN_IMAGE, id="pdf"),
    pytest.param(
        "banner.png",
        image_bytes("JPEG"),
        "The file is named banner.png but holds a JPEG image",
        id="jpeg-renamed-png",
    ),
    pytest.param(
        "banner.gif",
        image_bytes("BMP"),
        "BMP images are refused",
        id="bmp",
    ),
    pytest.param(
        "wide.png",
        image_bytes(size=(3001, 10)),
        "The image is 3001 x 10 pixels; banners may be at most 3000 x 3000",
        id="too-wide",
    ),
    pytest.param(
        "tall.png",
        image_bytes(size=(10, 3001)),
        "The image is 10 x 3001 pixels",
        id="too-tall",
    ),
    pytest.param("cut.png", image_bytes(noise=True)[:-400], "The image is damaged", id="truncated"),
]


@pytest.mark.parametrize(("name", "content", "message"), REFUSED)
def test_a_bad_upload_is_refused_naming_the_field_and_nothing_is_stored(
    staff_client, media, name, content, message
):
    response = staff_client.post(NEW, banner_form(name, content))

    assert response.status_code == 200
    text = page_text(response)
    assert "There is a problem" in text
    assert f"Image: {message}" in text, text
    assert not Resource.objects.exists()
    assert stored_files(media) == []


def test_an_oversized_file_is_refused_and_nothing_is_stored(staff_client, media, settings):
    settings.RESOURCE_IMAGE_MAX_BYTES = 50_000
    content = image_bytes(size=(400, 400), noise=True)
    assert len(content) > 50_000

    response = staff_client.post(NEW, banner_form(content=content))

    assert "Image: The file is larger than 49 KB: make the banner smaller." in page_text(response)
    assert not Resource.objects.exists()
    assert stored_files(media) == []


def test_a_banner_needs_an_image_and_alt_text(staff_client, media):
    form = banner_form(alt_text="")
    del form["image"]

    text = page_text(staff_client.post(NEW, form))

    assert "Image: A banner needs its image." in text
    assert not Resource.objects.exists()
    text = page_text(staff_client.post(NEW, banner_form(alt_text=" ")))
    assert "Image description (alt text): Say what the banner shows" in text
    assert not Resource.objects.exists()
    assert stored_files(media) == []


def test_a_text_needs_the_link_placeholder(staff_client):
    form = {"kind": "social", "title": "Tweet", "text": "Great shop!", "position": "0"}

    assert "Text: Put {link} where the partner's link goes." in page_text(
        staff_client.post(NEW, form)
    )
    assert not Resource.objects.exists()

    form["text"] = "Great shop! {link} #ad"
    assert staff_client.post(NEW, form).status_code == 302
    assert Resource.objects.get().text == "Great shop! {link} #ad"


# --- Edit and delete ----------------------------------------------------------------------


def test_replacing_a_banner_image_deletes_the_old_file(
    staff_client, media, django_capture_on_commit_callbacks
):
    banner = a_banner()
    old = banner.image.name
    form = banner_form("new.gif", image_bytes("GIF", (300, 250)), title="Medium rectangle")
    form.pop("kind")  # a resource keeps its kind

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"{RESOURCES}{banner.pk}/", form)

    assert response.status_code == 302, page_text(response)
    banner.refresh_from_db()
    assert (banner.title, banner.image_type, banner.width, banner.height) == (
        "Medium rectangle",
        "image/gif",
        300,
        250,
    )
    assert stored_files(media) == [banner.image.name] != [old]


def test_a_refused_replacement_keeps_the_banner_as_it_was(staff_client, media):
    banner = a_banner()
    before = model_to_dict(banner)
    form = banner_form("x.svg", SVG_WITH_SCRIPT, title="Changed")

    response = staff_client.post(f"{RESOURCES}{banner.pk}/", form)

    assert "Image: SVG and HTML files are refused" in page_text(response)
    banner.refresh_from_db()
    assert model_to_dict(banner) == before
    assert stored_files(media) == [banner.image.name]


def test_delete_asks_then_removes_the_resource_and_its_file(
    staff_client, media, django_capture_on_commit_callbacks
):
    banner = a_banner()
    page = staff_client.get(f"{RESOURCES}{banner.pk}/delete/")
    assert "Delete “Leaderboard”?" in page_text(page)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"{RESOURCES}{banner.pk}/delete/")

    assert response["Location"] == RESOURCES
    assert not Resource.objects.exists()
    assert stored_files(media) == []
    assert Client().get(f"/media/{banner.image.name}").status_code == 404


def test_the_list_shows_every_resource(staff_client):
    a_banner("Leaderboard")
    a_text()

    text = page_text(staff_client.get(RESOURCES))

    assert "Leaderboard Banner" in text
    assert "Sale email Email copy Hi! Our shop has a sale: {link}" in text


# --- Who may --------------------------------------------------------------------------------


STAFF_ONLY = [SETTINGS_PAGE, RESOURCES, NEW]


@pytest.mark.parametrize("url", STAFF_ONLY)
def test_staff_pages_refuse_partners_and_send_anonymous_to_the_login(url, media):
    partner = logged_in(partner_with_login("alice"))

    assert partner.get(url).status_code == 403
    assert partner.post(url, banner_form()).status_code == 403
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/?next=")
    assert not Resource.objects.exists()
    assert not PartnerCenterSettings.objects.exists()
    assert stored_files(media) == []


def test_staff_without_the_permission_get_403(client, media):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(RESOURCES).status_code == 200  # any staff may look
    assert client.post(NEW, banner_form()).status_code == 403
    assert client.post(SETTINGS_PAGE, {"welcome_message": "Hi"}).status_code == 403
    assert not Resource.objects.exists()
    assert stored_files(media) == []


def test_a_post_without_the_csrf_token_is_refused(staff_user, media):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    assert client.post(NEW, banner_form()).status_code == 403
    banner = a_banner()
    assert client.post(f"{RESOURCES}{banner.pk}/delete/").status_code == 403
    assert client.post(SETTINGS_PAGE, {"welcome_message": "Hi"}).status_code == 403
    assert Resource.objects.count() == 1
    assert not PartnerCenterSettings.objects.exists()


# --- What the partner sees ---------------------------------------------------------------


def test_the_partner_sees_each_resource_with_their_own_link():
    a_banner(alt='Spring "sale" <20 % off>')
    a_text("Hi {name}! Our sale: {link}\nSee you at {link}")
    alice = partner_with_login("alice")
    partner_with_login("bob")

    response = logged_in(alice).get("/partner/resources/")

    body = response.content.decode()
    link = "https://partners.shop.example/go/alice/"
    assert link in body
    assert "/go/bob/" not in body
    copies = [html.unescape(value) for value in re.findall(r'data-copy="([^"]*)"', body)]
    banner = Resource.objects.get(kind="banner")
    image_url = f"https://partners.shop.example/media/{banner.image.name}"
    assert copies == [
        f'<a href="{link}"><img src="{image_url}" alt="Spring &quot;sale&quot; &lt;20 % off&gt;"'
        ' width="728" height="90"></a>',
        link,
        f"Hi {{name}}! Our sale: {link}\nSee you at {link}",
    ]
    # Shown on the page from this site, escaped once more as text.
    assert f'<img class="resource-banner" src="/media/{banner.image.name}"' in body
    assert "&lt;a href=&quot;https://partners.shop.example/go/alice/&quot;&gt;" in body


def test_the_link_is_the_one_the_links_page_shows_first(client):
    from partners.services.defaults import defaults_update

    defaults_update(
        data={"code_prefix": "p-", "link_url": "https://shop.example/r/"}, acting_user=None
    )
    a_text()
    alice = logged_in(partner_with_login("alice"))

    links = alice.get("/partner/links/").content.decode()
    first = re.search(r'data-copy="([^"]+)"', links.split("All my links", 1)[1]).group(1)
    resources = alice.get("/partner/resources/").content.decode()

    assert first in resources
    assert f"Our shop has a sale: {first} (ends Sunday)." in html.unescape(resources)


def test_no_resources_yet():
    alice = logged_in(partner_with_login("alice"))

    assert "No resources yet" in page_text(alice.get("/partner/resources/"))


def test_staff_get_403_on_the_partner_resources_page(staff_client):
    assert staff_client.get("/partner/resources/").status_code == 403


def test_an_unknown_banner_is_404():
    a_text()

    assert Client().get("/media/banners/nothing.png").status_code == 404
    assert Client().get("/media/banners/..%2Fsecret.png").status_code == 404


# --- The welcome message --------------------------------------------------------------------


def test_staff_write_the_welcome_message_and_partners_read_it(staff_client):
    text = "# Welcome!\n\nSell **more** with [our guide](https://shop.example/guide)."

    response = staff_client.post(SETTINGS_PAGE, {"welcome_message": text})

    assert response.status_code == 302
    assert PartnerCenterSettings.objects.get().welcome_message == text
    home = logged_in(partner_with_login("alice")).get("/partner/").content.decode()
    assert "<h1>Welcome!</h1>" in home
    assert "Sell <strong>more</strong> with" in home
    assert '<a href="https://shop.example/guide">our guide</a>' in home
    again = staff_client.post(SETTINGS_PAGE, {"welcome_message": text}, follow=True)
    assert "Nothing changed." in page_text(again)


def test_no_html_from_staff_reaches_the_page_unescaped(staff_client):
    text = (
        "<script>alert(1)</script>\n\n"
        "[click](javascript:alert(2)) [data](data:text/html,<b>x</b>) "
        '<img src=x onerror="alert(3)"> <a href="javascript:alert(4)">a</a>\n\n'
        "![pic](https://evil.example/x.png)"
    )
    staff_client.post(SETTINGS_PAGE, {"welcome_message": text})

    home = logged_in(partner_with_login("alice")).get("/partner/").content.decode()
    welcome = re.search(r'<section class="card welcome-message".*?</section>', home, re.S).group()

    assert "<script>alert(1)" not in home
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in welcome
    assert "javascript:" not in re.sub(r"&[^;]+;", "", "".join(re.findall(r"<[^>]*>", welcome)))
    # Neither script link is kept; the image is only a link to it.
    assert re.findall(r'<a href="([^"]*)"', welcome) == ["https://evil.example/x.png"]
    assert "<img" not in welcome
    assert "onerror" not in "".join(re.findall(r"<[^>]*>", welcome))


def test_markdown_renders_lists_and_line_breaks_safely():
    assert markdown_html("- one\n- two") == "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
    assert markdown_html('<b onclick="x">hi</b>') == (
        "<p>&lt;b onclick=&quot;x&quot;&gt;hi&lt;/b&gt;</p>\n"
    )


def test_no_welcome_message_shows_nothing():
    home = logged_in(partner_with_login("alice")).get("/partner/").content.decode()

    assert "welcome-message" not in home


# --- The admin ------------------------------------------------------------------------------


def test_the_admin_checks_the_image_as_the_staff_page_does(staff_client, media):
    form = banner_form("x.svg", SVG_WITH_SCRIPT)

    response = staff_client.post("/admin/commissions/resource/add/", form)

    assert response.status_code == 200
    assert "SVG and HTML files are refused" in page_text(response)
    assert not Resource.objects.exists()
    assert stored_files(media) == []

    response = staff_client.post("/admin/commissions/resource/add/", banner_form())
    assert response.status_code == 302
    banner = Resource.objects.get()
    assert stored_files(media) == [banner.image.name]
    assert banner.image_type == "image/png"
