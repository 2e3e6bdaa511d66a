"""Partner URLs (SPEC §3): pure functions, no database."""

from django.conf import settings


def link_base(link_url: str) -> str:
    """The start of every partner link: the custom link URL, or the site's own URL."""
    return (link_url or settings.SITE_URL).rstrip("/")


def partner_url(*, code: str, prefix: str, link_url: str, link_code: str | None = None) -> str:
    """`{base}/go/{prefix}{code}/`, or `{base}/go/{link_code}/{prefix}{code}/`."""
    path = f"{link_code}/{prefix}{code}" if link_code else f"{prefix}{code}"
    return f"{link_base(link_url)}/go/{path}/"
