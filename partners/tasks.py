"""Background work of the partners app."""

from celery import shared_task

from .services import clicks_drain


@shared_task(ignore_result=True)
def drain_clicks() -> int:
    """Store buffered clicks (every few seconds, and when many are waiting)."""
    return clicks_drain()
