"""Counts per client address and minute, shared by every process (in the database): the
hosted forms' post limit and the login limit per address.

A counter table has the columns `ip`, `started_at` and `posts`, unique together on `ip` and
`started_at` (`commissions.FormPostCount`, `partners.LoginAddressCount`).
"""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Model

from referral_program.db import execute


def count_in_minute(model: type[Model], *, ip: str | None, at: datetime) -> int:
    """Count one more from `ip` in the minute of `at`; the count so far that minute.

    One statement (an upsert), so concurrent requests from many processes all count. The
    first count of a minute clears the counts older than an hour.
    """
    started = at.replace(second=0, microsecond=0)
    table = connection.ops.quote_name(model._meta.db_table)
    [[posts]] = execute(
        f"INSERT INTO {table} (ip, started_at, posts) VALUES (%s, %s, 1) "
        f"ON CONFLICT (ip, started_at) DO UPDATE SET posts = {table}.posts + 1 "
        "RETURNING posts",
        [ip or "unknown", connection.ops.adapt_datetimefield_value(started)],
    )
    if posts == 1:
        model.objects.filter(started_at__lt=started - timedelta(hours=1)).delete()
    return posts
