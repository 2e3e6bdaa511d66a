"""Reads of what staff write for the Partner Center (SPEC §12): the welcome message, rendered
safely, and the resources with a partner's own link filled in.

The welcome message is Markdown rendered by markdown-it-py with raw HTML off: a tag staff
type is shown as text, and a link is kept only if markdown-it's `validateLink` allows its
address (no `javascript:`, `vbscript:`, `file:` or `data:`).
"""

import html
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from partners.models import Partner
from partners.selectors import partner_link

from .models import PartnerCenterSettings, Resource, ResourceKind

# The placeholder a text resource holds where each partner's link goes.
LINK_PLACEHOLDER = "{link}"


@cache
def _markdown() -> MarkdownIt:
    # CommonMark with raw HTML off (escaped as text) and no images (the page's CSP would
    # refuse images from elsewhere anyway).
    return MarkdownIt("commonmark", {"html": False}).disable("image")


def markdown_html(text: str) -> SafeString:
    """Staff's Markdown as HTML in which nothing they typed is raw HTML."""
    return mark_safe(_markdown().render(text))  # html is off: what staff typed is escaped


def welcome_message() -> str:
    """The welcome message as staff wrote it ('' when none is written)."""
    row = PartnerCenterSettings.objects.filter(pk=1).values_list("welcome_message", flat=True)
    return row.first() or ""


def resources_list() -> QuerySet[Resource]:
    """Every resource, in the order partners see them."""
    return Resource.objects.order_by("position", "id")


def fill_link(text: str, link: str) -> str:
    """A text resource with `{link}` replaced by the partner's link (nothing else changes:
    other braces stay as they are)."""
    return text.replace(LINK_PLACEHOLDER, link)


def banner_path(resource: Resource) -> str:
    """Where this site serves a banner's image (commissions.resource_views.banner_image)."""
    return reverse("banner_image", kwargs={"name": resource.image.name.rsplit("/", 1)[-1]})


def banner_snippet(
    *, link: str, image_url: str, alt: str, width: int | None, height: int | None
) -> str:
    """The HTML a partner pastes on their site: the banner linking to their link, every
    value escaped. A plain string (not marked safe): the page escapes it once more to show
    it as text and to put it in the copy button."""
    size = f' width="{int(width)}" height="{int(height)}"' if width and height else ""
    return (
        f'<a href="{html.escape(link)}"><img src="{html.escape(image_url)}" '
        f'alt="{html.escape(alt)}"{size}></a>'
    )


@dataclass(frozen=True)
class PartnerResource:
    """A resource as one partner sees it: `copy` is what their copy button copies (the
    text with their link, or the banner's HTML snippet)."""

    resource: Resource
    link: str
    copy: str
    image_path: str = ""
    image_url: str = ""


def partner_resources(partner: Partner) -> list[PartnerResource]:
    """Every resource with this partner's default link (the one their links page shows
    first, `partners.selectors.partner_link`) filled in. Two queries."""
    link = partner_link(partner)
    shown = []
    for resource in resources_list():
        if resource.kind == ResourceKind.BANNER:
            path = banner_path(resource)
            url = f"{settings.SITE_URL}{path}"
            snippet = banner_snippet(
                link=link,
                image_url=url,
                alt=resource.alt_text,
                width=resource.width,
                height=resource.height,
            )
            shown.append(PartnerResource(resource, link, snippet, path, url))
        else:
            shown.append(PartnerResource(resource, link, fill_link(resource.text, link)))
    return shown
