"""Background work of the engine. A task takes ids, loads rows, calls a service."""

from smtplib import SMTPException

from celery import shared_task

from .services import notification_send


@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def send_notification(notification_id: int) -> bool:
    """Email one partner notification; safe to run twice (the second run sends nothing)."""
    return notification_send(notification_id=notification_id)
