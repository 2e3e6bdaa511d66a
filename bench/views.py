"""The baselines of bench/redirect.py, in the same project as the /go/ tracker.

Both answer a click the way the tracker does (a 302 with the signed `rp_ref` cookie, made
by `partners.tokens.encode_token`) but look nothing up and ignore `code`:

- `baseline`: the issue's baseline: redirect with a signed cookie and insert one row, a
  Click for the fixed partner BENCH_PARTNER_ID (set by bench/redirect.py);
- `bare`: redirect with a signed cookie, no database at all.
"""

import os

from django.http import HttpRequest, HttpResponseRedirect
from django.utils import timezone
from django.views.decorators.http import require_safe

from partners.models import Click
from partners.tokens import TokenClick, encode_token, new_click_id

DESTINATION = "https://shop.example/"
COOKIE_NAME = "rp_ref"
COOKIE_MAX_AGE = 30 * 24 * 3600
# Set by bench/redirect.py; 0 where the baseline is not benchmarked (the insert then fails).
PARTNER_ID = int(os.environ.get("BENCH_PARTNER_ID", "0"))
BARE_PARTNER_ID = 1


def _redirect_with_token(click: TokenClick) -> HttpResponseRedirect:
    response = HttpResponseRedirect(DESTINATION)
    response.set_cookie(
        COOKIE_NAME,
        encode_token([click]),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
    )
    return response


@require_safe
def baseline(request: HttpRequest, code: str) -> HttpResponseRedirect:
    at = timezone.now()
    click = Click(
        id=new_click_id(at),
        partner_id=PARTNER_ID,
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("user-agent", "")[:256],
        at=at,
    )
    Click.objects.bulk_create([click])
    return _redirect_with_token(TokenClick(click_id=click.id, partner_id=PARTNER_ID, at=at))


@require_safe
def bare(request: HttpRequest, code: str) -> HttpResponseRedirect:
    at = timezone.now()
    return _redirect_with_token(
        TokenClick(click_id=new_click_id(at), partner_id=BARE_PARTNER_ID, at=at)
    )
