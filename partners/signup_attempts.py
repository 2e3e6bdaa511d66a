"""The sign-up rate limit: at most `SIGNUP_RATE_LIMIT` sign-ups from one IP address an hour.

Every sign-up that passes the form counts, whether its email was new or already a
partner's: counting only the partners it made (as before, issue 21 finding 6) let a known
email through the limit, so the limit told who is registered. Attempts are rows of their
own, kept for an hour (each count deletes the older ones), read and written under the lock
of the sign-up (the defaults row), so concurrent sign-ups cannot race past the limit.
"""

from datetime import datetime, timedelta

from django.conf import settings

from .models import SignupAttempt

WINDOW = timedelta(hours=1)


def signup_attempts_exhausted(*, ip: str | None, at: datetime) -> bool:
    """Whether `ip` has used up its sign-ups of the hour before `at`."""
    limit = settings.SIGNUP_RATE_LIMIT
    if not limit or ip is None:
        return False
    SignupAttempt.objects.filter(at__lte=at - WINDOW).delete()
    return SignupAttempt.objects.filter(ip=ip, at__gt=at - WINDOW).count() >= limit


def signup_attempt_record(*, ip: str | None, at: datetime) -> None:
    if settings.SIGNUP_RATE_LIMIT and ip is not None:
        SignupAttempt.objects.create(ip=ip, at=at)
