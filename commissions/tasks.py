"""Background work of the engine. A task takes ids, loads rows, calls a service."""

from smtplib import SMTPException

from celery import shared_task

from .services import notification_send
from .webhooks import webhook_delivery_attempt

EMAIL_RETRIES = {
    "autoretry_for": (SMTPException, OSError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": 8,
}


@shared_task(**EMAIL_RETRIES)
def send_notification(notification_id: int) -> bool:
    """Email one partner notification; safe to run twice (the second run sends nothing)."""
    return notification_send(notification_id=notification_id)


@shared_task(**EMAIL_RETRIES)
def send_notifications(notification_ids: list[int]) -> int:
    """Email an event's queued notifications, one after the other (one task per event: one
    message to the broker on the request path instead of one per email); how many were
    sent. Safe to run twice: a sent notification is not sent again, so a retry after a
    failure sends the rest."""
    return sum(notification_send(notification_id=pk) for pk in notification_ids)


@shared_task(bind=True, max_retries=None, acks_late=True)
def deliver_webhook(self, delivery_id: int) -> str | None:
    """POST one webhook delivery; a failure is retried with back-off until it gives up.

    `webhook_delivery_attempt` decides when to stop (WEBHOOK_MAX_ATTEMPTS) and how long to
    wait; safe to run twice (a delivered delivery is never sent again). Run in-process
    (no broker), nothing can wait for later: the attempts follow each other at once.
    """
    attempt = webhook_delivery_attempt(delivery_id=delivery_id)
    while self.request.is_eager and attempt is not None and attempt.retry_in is not None:
        attempt = webhook_delivery_attempt(delivery_id=delivery_id)
    if attempt is None:
        return None
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in)
    return attempt.status
