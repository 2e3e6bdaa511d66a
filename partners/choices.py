"""What both apps decide alike: the defaults' attribution choices, the partner statuses, and
the click window (SPEC §2, §4). Pure: no database, no clock (`at` is passed in).

`partners` (the sign-up's referring partner) and `commissions` (attribution) import these,
so a click counts, and the first or the last of several is picked, the same way for both.
"""

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.db.models import TextChoices


class PartnerSelection(TextChoices):
    LAST = "last", "Last referring partner"
    FIRST = "first", "First referring partner"


class TrackingMethod(TextChoices):
    COOKIE = "cookie", "Cookie"
    HISTORY_AND_COOKIES = "history_and_cookies", "Referral history and cookies"
    COOKIES_ONLY = "cookies_only", "Cookies only"


class PartnerStatus(TextChoices):
    """Only active partners are credited, tracked and paid; the others are skipped alike.

    Pending: signed up, waiting for email confirmation and approval. Rejected: a sign-up
    staff turned down. Neither may log in to the Partner Center.
    """

    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    PENDING = "pending", "Pending approval"
    REJECTED = "rejected", "Rejected"


def click_counts_at(
    *, clicked_at: datetime, active: bool, cookie_days: int | None, at: datetime
) -> bool:
    """A click counts at `at` while its partner is active and within the partner's cookie
    days (None: no limit); a click after `at` does not count."""
    if not active or clicked_at > at:
        return False
    return cookie_days is None or at - clicked_at <= timedelta(days=cookie_days)


def first_or_last[Picked](
    items: Iterable[Picked], selection: str, key: Callable[[Picked], tuple]
) -> Picked | None:
    """The first or the last item by `key` (time, then the click or entry id: the tie-break
    of every pick), or None when there is none."""
    ordered = sorted(items, key=key)
    if not ordered:
        return None
    return ordered[0] if selection == PartnerSelection.FIRST else ordered[-1]
