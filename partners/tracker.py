"""`GET /go/{prefix}{code}/` and `GET /go/{link_code}/{prefix}{code}/` (SPEC §3, §4).

The product's hot path: one read, then the click goes to the Redis buffer (no wait on a
database commit) or, without a buffer, a duplicate check and one insert. No session, no
user, no template.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone
from django.views.decorators.http import require_safe

from .click_buffer import click_buffer
from .models import Click
from .selectors import tracker_target
from .services import click_record
from .tokens import TokenClick, decode_token, encode_token, new_click_id, token_after_click
from .tracking import (
    AD_CODE_MAX,
    REFERRER_MAX,
    USER_AGENT_MAX,
    client_ip,
    is_bot,
    safe_destination,
    with_query_param,
)

COOKIE_NAME = "rp_ref"
# The cookie's life when the partner sets no cookie days: ten years.
COOKIE_MAX_AGE_UNLIMITED = 10 * 365 * 24 * 3600


@require_safe
def go(request: HttpRequest, code: str, link_code: str | None = None) -> HttpResponseRedirect:
    target = tracker_target(code=code, link_code=link_code)
    fallback = target.default_destination or f"{settings.SITE_URL}/"
    if target.partner_id is None:
        return HttpResponseRedirect(fallback)

    destination = (
        safe_destination(request.GET.get("to"), allowed_hosts=settings.ALLOWED_REDIRECT_HOSTS)
        or target.destination
        or fallback
    )
    user_agent = request.headers.get("user-agent", "")
    if is_bot(user_agent):
        return HttpResponseRedirect(destination)

    at = timezone.now()
    click = Click(
        id=new_click_id(at),
        partner_id=target.partner_id,
        tracking_link_id=target.tracking_link_id,
        ad_code=request.GET.get("ad", "")[:AD_CODE_MAX],
        ip=client_ip(request.META, trusted_proxies=settings.TRUSTED_PROXY_DEPTH),
        user_agent=user_agent[:USER_AGENT_MAX],
        referrer=request.headers.get("referer", "")[:REFERRER_MAX],
        at=at,
    )
    buffer = click_buffer()
    if buffer is not None:
        buffer.add(click)  # stored by the drain, repeats left out there
    else:
        click_record(click=click, duplicate_minutes=target.duplicate_click_minutes)
    clicks = token_after_click(
        decode_token(request.COOKIES.get(COOKIE_NAME)),
        TokenClick(click_id=click.id, partner_id=click.partner_id, at=at),
    )
    token = encode_token(clicks)
    response = HttpResponseRedirect(with_query_param(destination, COOKIE_NAME, token))
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=target.cookie_days * 24 * 3600 if target.cookie_days else COOKIE_MAX_AGE_UNLIMITED,
        domain=settings.REFERRAL_COOKIE_DOMAIN,
        secure=request.is_secure() or settings.SITE_URL.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    return response
