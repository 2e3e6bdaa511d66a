"""Notifications logged as queued whose task never ran are queued again (docs/reliability.md).

An event commits its notification rows as `queued` and hands one task per row to the broker
after the commit. When the broker cannot be reached then (`referral_program.resilience`), or
loses its queue (a Redis restarted without persistence), the row stays `queued` and nothing
would send it. `requeue_notifications` runs every `NOTIFICATION_REQUEUE_SECONDS` (Celery
beat) and queues a task again for each row still queued whose event arrived between
`NOTIFICATION_REQUEUE_MAX_HOURS` and `NOTIFICATION_REQUEUE_AFTER_SECONDS` ago. Sending is
safe to repeat (`notification_send` sends a row only while it is queued, under a row lock),
so a row whose first task was merely slow is still emailed once.
"""

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import Notification, NotificationStatus
from .tasks import send_notification

REQUEUE_BATCH = 1000


def notifications_stranded(*, at: datetime, limit: int = REQUEUE_BATCH) -> list[int]:
    """Ids of notifications still queued a while after their event arrived, oldest first."""
    after = timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS)
    at_most = timedelta(hours=settings.NOTIFICATION_REQUEUE_MAX_HOURS)
    return list(
        Notification.objects.filter(
            status=NotificationStatus.QUEUED,
            event__received_at__lt=at - after,
            event__received_at__gte=at - at_most,
        )
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


@shared_task(ignore_result=True)
def requeue_notifications() -> int:
    """Queue a send task again for every stranded notification; answers how many."""
    ids = notifications_stranded(at=timezone.now())
    for pk in ids:
        send_notification.delay(pk)
    return len(ids)
