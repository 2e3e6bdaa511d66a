"""`GET /go/{prefix}{code}/` and `GET /go/{link_code}/{prefix}{code}/` (SPEC §3, §4).

The product's hot path, one round trip to the database: without a click buffer, one
statement resolves the code and stores the click (`click_track`); with the Redis buffer,
one read (`tracker_target`) and the click goes to the buffer (no wait on a database
commit), with no round trip at all while this process remembers the code's answer
(`tracker_memo`, TRACKER_MEMO_SECONDS). Everything that needs no database (click id,
time, IP address, bot check) is worked out before. No session, no user, no template.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone
from django.views.decorators.http import require_safe

from .click_buffer import BufferedClick
from .models import Click
from .selectors import tracker_target
from .services.clicks import click_buffer, click_track
from .tokens import (
    TokenClick,
    click_window_end,
    cookie_max_age,
    decode_token,
    encode_token,
    new_click_id,
    token_after_click,
)
from .tracker_memo import remembered_target
from .tracking import (
    AD_CODE_MAX,
    REFERRER_MAX,
    USER_AGENT_MAX,
    client_ip,
    is_bot,
    redirect_hosts,
    safe_destination,
    with_query_param,
)

COOKIE_NAME = "rp_ref"


@require_safe
def go(request: HttpRequest, code: str, link_code: str | None = None) -> HttpResponseRedirect:
    at = timezone.now()
    user_agent = request.META.get("HTTP_USER_AGENT", "")  # not request.headers: 40 µs less
    record = not is_bot(user_agent)  # bots are redirected, not counted
    click_id = new_click_id(at)
    values = {  # the click; its partner and tracking link come from the code
        "id": click_id,
        "ad_code": request.GET.get("ad", "")[:AD_CODE_MAX],
        "ip": client_ip(request.META, trusted_proxies=settings.TRUSTED_PROXY_DEPTH),
        "user_agent": user_agent[:USER_AGENT_MAX],
        "referrer": request.META.get("HTTP_REFERER", "")[:REFERRER_MAX],
        "at": at,
    }
    buffer = click_buffer()
    if buffer is None:
        target = click_track(code=code, link_code=link_code, click=Click(**values), record=record)
    else:
        target = remembered_target(
            code=code,
            link_code=link_code,
            lookup=lambda: tracker_target(code=code, link_code=link_code),
        )
        if record and target.partner_id is not None:
            buffer.add(  # stored by the drain, repeats left out there
                BufferedClick(
                    partner_id=target.partner_id,
                    tracking_link_id=target.tracking_link_id,
                    **values,
                )
            )

    fallback = target.default_destination or f"{settings.SITE_URL}/"
    if target.partner_id is None:
        return HttpResponseRedirect(fallback)
    destination = (
        safe_destination(
            request.GET.get("to"),
            allowed_hosts=redirect_hosts(settings.ALLOWED_REDIRECT_HOSTS, settings.SITE_URL),
        )
        or target.destination
        or fallback
    )
    if not record:
        return HttpResponseRedirect(destination)

    clicks = token_after_click(
        decode_token(request.COOKIES.get(COOKIE_NAME)),
        TokenClick(
            click_id=click_id,
            partner_id=target.partner_id,
            at=at,
            until=click_window_end(at, target.cookie_days),
        ),
    )
    token = encode_token(clicks)
    response = HttpResponseRedirect(with_query_param(destination, COOKIE_NAME, token))
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=cookie_max_age(clicks, at=at),
        domain=settings.REFERRAL_COOKIE_DOMAIN,
        secure=request.is_secure() or settings.SITE_URL.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    return response
