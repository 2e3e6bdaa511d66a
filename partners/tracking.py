"""Pure rules of the /go/ tracker: client IP, bots, safe destinations. No database."""

import re
from collections.abc import Collection, Mapping
from ipaddress import ip_address
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from django.utils.http import url_has_allowed_host_and_scheme

# Clicks from these user agents are redirected but not recorded. Matched case-insensitively
# anywhere in the User-Agent header: search engine and link-preview crawlers, monitoring,
# and command-line HTTP clients. Real browsers (headless ones included) are not on it.
BOT_USER_AGENT = re.compile(
    r"bot\b|bot/|crawler|spider|slurp|facebookexternalhit|embedly|quora link preview"
    r"|pinterest|whatsapp|skypeuripreview|bitlybot|curl/|wget/|python-requests|python-urllib"
    r"|httpclient|go-http-client|okhttp|uptimerobot|pingdom|statuscake|lighthouse",
    re.IGNORECASE,
)
USER_AGENT_MAX = 256
REFERRER_MAX = 512
AD_CODE_MAX = 64


def is_bot(user_agent: str) -> bool:
    return bool(BOT_USER_AGENT.search(user_agent or ""))


def client_ip(meta: Mapping[str, str], *, trusted_proxies: int) -> str | None:
    """The visitor's IP address.

    With `trusted_proxies` = N > 0, the app sits behind N proxies that each append to
    X-Forwarded-For, so the address N places from the right is the one the first trusted
    proxy saw. Anything further left was sent by the client and is not believed.
    """
    candidate = meta.get("REMOTE_ADDR", "")
    if trusted_proxies > 0:
        hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= trusted_proxies:
            candidate = hops[-trusted_proxies]
    try:
        return str(ip_address(candidate))
    except ValueError:
        return None


def redirect_hosts(configured: Collection[str], site_url: str) -> list[str]:
    """The hosts `?to=` may lead to: the configured ones and the site's own (a partner's
    recruit link leads through the tracker to the sign-up page, SPEC §12)."""
    return [*configured, urlsplit(site_url).netloc]


def safe_destination(to: str | None, *, allowed_hosts: Collection[str]) -> str | None:
    """`to` when it is an absolute http(s) URL on an allowed host, else None."""
    if not to or not allowed_hosts:
        return None
    parts = urlsplit(to)
    if parts.scheme not in ("http", "https") or not parts.netloc or "\\" in to:
        return None
    if not url_has_allowed_host_and_scheme(to, allowed_hosts=set(allowed_hosts)):
        return None
    return to


def with_query_param(url: str, name: str, value: str) -> str:
    """The URL with `name=value` set in its query, the rest of the query kept as it was."""
    if "?" not in url and "#" not in url:  # the usual destination: no query to keep
        return f"{url}?{quote_plus(name)}={quote_plus(value)}"
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))
