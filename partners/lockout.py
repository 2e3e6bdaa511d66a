"""Login lockout (issue 7): the hooks django-axes calls, see the AXES_* settings; and the
limit per client address (issue 21).

Failed logins are counted per *identity*, whatever name was typed: a partner's code and
email (any case) both count against the partner's login, a staff member's username against
that login. After LOGIN_FAILURE_LIMIT failures the identity is locked for
LOGIN_COOLOFF_MINUTES, even with the right password; the login pages then answer 429.

Every try costs a password hash (about 0.5 s of CPU, partners.auth), so tries are also
limited per client address, before any hash: more than LOGIN_TRIES_PER_ADDRESS_PER_MINUTE
tries (right or wrong, any names) from one address in a minute answer 429 at once, without
counting against any identity. Staff see the locked identities and unlock them at
/staff/locked-logins/.
"""

from dataclasses import dataclass
from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max, Sum
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from referral_program.counters import count_in_minute

from .models import LoginAddressCount, Partner
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
        limit = settings.LOGIN_TRIES_PER_ADDRESS_PER_MINUTE
        if (
            limit
            and count_in_minute(LoginAddressCount, ip=login_client_ip(request), at=timezone.now())
            > limit
        ):
            # Refused before any password is hashed; axes records no failure for it.
            request.login_address_limited = True
            request.axes_locked_out = True
            raise AxesBackendPermissionDenied("Too many logins from this address.")
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
    if getattr(request, "login_address_limited", False):
        response = render(request, "registration/address_limited.html", status=429)
        response["Retry-After"] = "60"
        return response
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )


# --- The staff page of locked logins (issue 21) -------------------------------------------


@dataclass(frozen=True)
class LockedLogin:
    identity: str  # the login's username (a partner's code), or the unknown name typed
    failures: int
    last_failure: datetime
    unlocks_at: datetime
    partner: Partner | None  # the partner whose login it is, if any
    has_login: bool  # False: a name no login has (guesses are counted too)


def locked_logins(*, at: datetime) -> list[LockedLogin]:
    """Every identity locked out at `at`, the latest failure first (three queries)."""
    rows = list(
        AccessAttempt.objects.filter(attempt_time__gte=at - settings.AXES_COOLOFF_TIME)
        .values("username")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .order_by("-last", "username")
    )
    names = [row["username"] for row in rows]  # identities are in lower case
    partners = {
        partner.user.username.lower(): partner
        for partner in Partner.objects.annotate(login=Lower("user__username"))
        .filter(login__in=names)
        .select_related("user")
    }
    logins = set(
        get_user_model()
        .objects.annotate(login=Lower("username"))
        .filter(login__in=names)
        .values_list("login", flat=True)
    )
    return [
        LockedLogin(
            identity=row["username"],
            failures=row["failures"],
            last_failure=row["last"],
            unlocks_at=row["last"] + settings.AXES_COOLOFF_TIME,
            partner=partners.get(row["username"]),
            has_login=row["username"] in logins,
        )
        for row in rows
    ]


def login_unlock(*, identity: str) -> int:
    """Forget the failed logins of one identity: it may log in again at once. The number
    of failure records removed (0: it was not locked)."""
    return AccessAttempt.objects.filter(username=identity).delete()[0]
