"""`/healthz` (the process answers) and `/readyz` (its database and broker answer).

For load balancers and orchestrators: no login, no session, no template.
"""

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure means "not ready", with its reason
        return f"error: {error.__class__.__name__}"
    return "ok"


def _redis(url: str) -> str:
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return f"error: {error.__class__.__name__}"
    return "ok"


def _broker(url: str) -> str:
    if url.startswith(("redis://", "rediss://")):
        return _redis(url)
    from referral_program.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception as error:  # kombu raises many kinds
        return f"error: {error.__class__.__name__}"
    return "ok"


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database()}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _broker(settings.CELERY_BROKER_URL)
    if settings.CLICK_BUFFER_URL and settings.CLICK_BUFFER_URL != settings.CELERY_BROKER_URL:
        checks["click_buffer"] = _redis(settings.CLICK_BUFFER_URL)
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
