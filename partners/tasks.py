"""Background work of the partners app."""

from celery import shared_task
from django.utils import timezone

from .services.clicks import click_flags_create, clicks_drain, clicks_erase_old_ips
from .services.signup import signup_email_send


@shared_task(ignore_result=True)
def drain_clicks() -> int:
    """Store buffered clicks (every few seconds, and when many are waiting)."""
    return clicks_drain()


@shared_task(ignore_result=True)
def flag_click_volume() -> int:
    """Flag partners with unusually many clicks in the last whole hour (every 10 minutes;
    each run of the hour looks at the same hour again, so late clicks count too)."""
    return click_flags_create(at=timezone.now())


@shared_task(ignore_result=True)
def erase_old_click_ips() -> int:
    """Blank the IP address of clicks older than CLICK_IP_RETENTION_DAYS (daily)."""
    return clicks_erase_old_ips(at=timezone.now())


@shared_task
def send_signup_email(email_id: int) -> bool:
    """Email one sign-up message; safe to run twice (the second run sends nothing). A
    failure leaves it unsent: `partners.requeue` queues it again (never a delayed retry in
    the worker, see commissions/tasks.py)."""
    return signup_email_send(email_id=email_id)
