"""Background work of the engine. A task takes ids, loads rows, calls a service.

No task is ever delayed in a worker (no countdown, ETA or automatic retry): celery 5.7 with
kombu 5.7 exits for good when Redis restarts while a worker holds delayed tasks (issue 21).
What must be tried again waits in the database instead (a queued notification, a pending
webhook delivery with its `next_attempt_at`) and the beat sweeps of `commissions.requeue`
hand it to a worker again (docs/reliability.md).
"""

from celery import shared_task

from .services.notifications import notification_send
from .services.simulations import preview_run
from .webhooks import webhook_delivery_attempt


@shared_task
def send_notification(notification_id: int) -> bool:
    """Email one partner notification; safe to run twice (the second run sends nothing)."""
    return notification_send(notification_id=notification_id)


@shared_task
def send_notifications(notification_ids: list[int]) -> int:
    """Email an event's queued notifications, one after the other (one task per event: one
    message to the broker on the request path instead of one per email); how many were
    sent. Safe to run twice: a sent notification is not sent again, so a retry after a
    failure sends the rest."""
    return sum(notification_send(notification_id=pk) for pk in notification_ids)


@shared_task(bind=True, acks_late=True)
def deliver_webhook(self, delivery_id: int) -> str | None:
    """POST one webhook delivery once, if its attempt is due.

    A failure leaves the delivery pending with the time of its next attempt (the back-off
    of `webhook_delivery_attempt`, until WEBHOOK_MAX_ATTEMPTS); the beat sweep
    `requeue_webhook_deliveries` queues this task again once that time has come. Safe to run
    twice (a delivery is claimed, and a delivered one is never sent again). Run in-process
    (no broker), nothing can wait for later: the attempts follow each other at once.
    """
    attempt = webhook_delivery_attempt(delivery_id=delivery_id)
    while self.request.is_eager and attempt is not None and attempt.retry_in is not None:
        attempt = webhook_delivery_attempt(delivery_id=delivery_id, due_only=False)
    return None if attempt is None else attempt.status


@shared_task
def run_simulation(run_id: str) -> str | None:
    """Replay one *Preview the effect* run (SPEC §13), writing its progress and answer on its
    row; its status at the end. Safe to run twice (only a queued run is started). Run
    in-process (no broker), it runs right after the request that made it commits."""
    return preview_run(run_id=run_id)
