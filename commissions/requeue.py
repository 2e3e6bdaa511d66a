"""Notifications and webhook deliveries whose task never ran are queued again
(docs/reliability.md); sign-up emails: `partners.requeue`.

An event commits its notification rows as `queued` and hands one task for them to the
broker after the commit. When the broker cannot be reached then (`referral_program.resilience`),
or loses its queue (a Redis restarted without persistence), the row stays `queued` and nothing
would send it. `requeue_notifications` runs every `NOTIFICATION_REQUEUE_SECONDS` (Celery
beat) and queues a task again for each row still queued whose event arrived between
`NOTIFICATION_REQUEUE_MAX_HOURS` and `NOTIFICATION_REQUEUE_AFTER_SECONDS` ago. Sending is
safe to repeat (`notification_send` sends a row only while it is queued, under a row lock),
so a row whose first task was merely slow is still emailed once.

Webhook deliveries the same way (`requeue_webhook_deliveries`), and this is also how their
retries run: a failed attempt leaves the delivery pending with the time of its next attempt,
and no delayed task in a worker (issue 21: celery 5.7 exited when Redis restarted while it
held some). A delivery still pending that no attempt holds gets its task again when its
next attempt has fallen due (a retry: at once; a first attempt, whose task was queued after
the commit: over `NOTIFICATION_REQUEUE_AFTER_SECONDS` ago), under
`NOTIFICATION_REQUEUE_MAX_HOURS` ago. An attempt claims the delivery first, so two tasks
never post it at once, an attempt not due yet is not made, and a delivered one is never
posted again.
"""

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from referral_program.resilience import REQUEUE_BATCH, queue_again, stranded

from .models import Notification, NotificationStatus, WebhookDelivery, WebhookDeliveryStatus
from .tasks import deliver_webhook, send_notification


def notifications_stranded(*, at: datetime, limit: int = REQUEUE_BATCH) -> list[int]:
    """Ids of notifications still queued a while after their event arrived, oldest first."""
    # Payout emails have no event: they are due from when they were queued.
    queued = Notification.objects.filter(status=NotificationStatus.QUEUED).annotate(
        due_at=Coalesce("event__received_at", "created_at")
    )
    return stranded(queued, due="due_at", at=at, limit=limit)


@shared_task(ignore_result=True)
def requeue_notifications() -> int:
    """Queue a send task again for every stranded notification; answers how many."""
    return queue_again(send_notification, notifications_stranded(at=timezone.now()))


def webhook_deliveries_stranded(*, at: datetime, limit: int = REQUEUE_BATCH) -> list[int]:
    """Ids of pending deliveries that no attempt holds and whose next attempt is due: a
    retry (attempted before) from its time on, a first attempt a while after it (its task
    may be on its way); oldest first."""
    pending = WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=at)
    )
    since = at - timedelta(hours=settings.NOTIFICATION_REQUEUE_MAX_HOURS)
    retries = pending.filter(attempts__gt=0, next_attempt_at__gte=since, next_attempt_at__lte=at)
    firsts = stranded(pending.filter(attempts=0), due="next_attempt_at", at=at, limit=limit)
    ids = firsts + list(retries.order_by("id").values_list("id", flat=True)[:limit])
    return sorted(ids)[:limit]


@shared_task(ignore_result=True)
def requeue_webhook_deliveries() -> int:
    """Queue a delivery task again for every stranded webhook delivery; answers how many."""
    return queue_again(deliver_webhook, webhook_deliveries_stranded(at=timezone.now()))
