"""Login lockout (issue 7): the hooks django-axes calls, see the AXES_* settings.

Failed logins are counted per *identity*, whatever name was typed: a partner's code and
email (any case) both count against the partner's login, a staff member's username against
that login. After LOGIN_FAILURE_LIMIT failures the identity is locked for
LOGIN_COOLOFF_MINUTES, even with the right password; the login pages then answer 429.
"""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Partner
from .tracking import client_ip

# AccessAttempt.username holds 255 characters; the login forms take at most 254.
IDENTITY_MAX = 255


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, first in AUTHENTICATION_BACKENDS: refuses a locked-out identity.

    A login without a request (the shell, a management command) has no client to lock
    out, so it is left to the other backends instead of failing.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _typed_name(request: HttpRequest, credentials: dict | None) -> str:
    field = get_user_model().USERNAME_FIELD
    if credentials and credentials.get(field) is not None:
        name = credentials[field]
    else:
        name = request.POST.get(field, "") if request.method == "POST" else ""
    return str(name).replace("\x00", "").strip()


def identity_of(name: str) -> str:
    """The login a typed name stands for, the way the backends find it: a partner by code,
    then by email (any case), then a username. An unknown name stands for itself (in
    lower case), so guesses at a name that does not exist are counted too."""
    if not name:
        return ""
    name = name[:IDENTITY_MAX]
    with_login = Partner.objects.filter(user__isnull=False)
    username = (
        with_login.by_code(name).values_list("user__username", flat=True).first()
        or with_login.filter(email__iexact=name)
        .order_by("pk")
        .values_list("user__username", flat=True)
        .first()
        or get_user_model().objects.filter(username=name).values_list("username", flat=True).first()
    )
    return (username or name).lower()[:IDENTITY_MAX]


def login_identity(request: HttpRequest, credentials: dict | None) -> str:
    """AXES_USERNAME_CALLABLE. Looked up once per request (axes asks several times)."""
    name = _typed_name(request, credentials)
    known = getattr(request, "_login_identities", None)
    if known is None:
        known = request._login_identities = {}
    if name not in known:
        known[name] = identity_of(name)
    return known[name]


def login_client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the client's address as the tracker reads it (behind
    TRUSTED_PROXY_DEPTH proxies). Recorded with a failed login, not used to lock."""
    return client_ip(request.META, trusted_proxies=settings.TRUSTED_PROXY_DEPTH)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a 429 page saying for how long. It names nobody: the identity
    a name was matched to (a partner's code for an email) is not the visitor's business."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
