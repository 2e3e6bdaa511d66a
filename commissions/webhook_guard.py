"""Where outgoing webhooks may go: public internet addresses only (issue 21, finding 2).

A webhook URL is chosen by staff, and the worker POSTs to it from inside the merchant's
network; without a guard it reaches what only that network should: Redis, PostgreSQL, the
cloud's metadata service (169.254.169.254), the app itself. So loopback, private,
link-local, multicast, reserved and unspecified addresses (and IPv6 addresses that carry one
of them: IPv4-mapped, 6to4, Teredo, NAT64) are refused twice:

- when an endpoint is saved (`url_refusal`): an address literal, or a name that resolves to
  such an address (a name that does not resolve yet is accepted: the second check stands);
- when a delivery connects (`OPENER`): the host name is resolved once, every address is
  checked, and the socket connects to the checked address itself, so a name that answers a
  public address to a check and a private one to the connection (DNS rebinding) gets
  nowhere. Proxies from the environment are not used (the proxy would connect instead).

`WEBHOOK_ALLOW_PRIVATE=true` lifts both checks, for a developer's receiver on their own
machine. The program's own site (`SITE_URL`, `ALLOWED_HOSTS`) is refused in any case.
"""

import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
PUBLIC_ONLY = "webhooks go to public internet addresses only"


class RefusedAddress(OSError):
    """The connection was not made: the address is not a public one."""


def address_refusal(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is ("loopback", "private"…), None if public."""
    if ip.version == 6:
        teredo = ip.teredo[1] if ip.teredo else None
        nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None
        for embedded in (ip.ipv4_mapped, ip.sixtofour, teredo, nat64):
            if embedded is not None and (kind := address_refusal(embedded)):
                return kind
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _own_site(host: str, port: int | None) -> bool:
    """Whether `host:port` is this program's own site: `SITE_URL`'s host, or any of
    `ALLOWED_HOSTS` (on any port; with private addresses allowed, `SITE_URL`'s port only, since
    a developer's receiver shares 127.0.0.1 with the site)."""
    host = host.rstrip(".").lower()
    site = urlsplit(settings.SITE_URL)
    site_port = site.port or (443 if site.scheme == "https" else 80)
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return host == site.hostname and port == site_port
    names = {h.lstrip(".").lower() for h in settings.ALLOWED_HOSTS if h not in ("*", "")}
    return host == site.hostname or host in names


def _resolve(host: str, port: int | None) -> list[tuple]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _refused(host: str, infos: list[tuple]) -> str | None:
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if kind := address_refusal(ip):
            shown = host if host == str(ip) else f"{host} resolves to {ip}, which"
            return f"{shown} is a {kind} address: {PUBLIC_ONLY}."
    return None


def url_refusal(url: str) -> str | None:
    """Why an endpoint URL may not be saved, or None (checked when it is saved)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None  # the URL validator says what is wrong
    if not host:
        return None
    if not settings.WEBHOOK_ALLOW_PRIVATE:
        try:
            if why := _refused(host, _resolve(host, None)):
                return why[0].upper() + why[1:]
        except (OSError, UnicodeError):
            pass  # not resolvable yet: the connection is checked again at every delivery
    if _own_site(host, port):
        return "This is the program's own site: webhooks go to the merchant's systems."
    return None


def guarded_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """`socket.create_connection`, but to public addresses only, checked as connected."""
    host, port = address
    infos = _resolve(host, port)
    if not settings.WEBHOOK_ALLOW_PRIVATE and (why := _refused(host, infos)):
        raise RefusedAddress(f"Refused: {why}")
    if _own_site(host, port):
        raise RefusedAddress(f"Refused: {host} is the program's own site.")
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)  # the very address that was checked
            return sock
        except OSError as failed:
            error = failed
            sock.close()
    raise error or OSError(f"{host} has no address")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = guarded_connection


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    """The TLS handshake still names and verifies the host name (SNI, certificate)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = guarded_connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (a failed one), never followed to another URL."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _NoRedirects, _GuardedHTTPHandler, _GuardedHTTPSHandler
)
