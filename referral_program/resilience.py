"""How the site behaves while PostgreSQL or the broker is away (docs/reliability.md).

The database: `DatabaseUnavailableMiddleware` answers a view that lost its database
connection, or could not open one, with 503 and `Retry-After` (JSON under /api/, text
elsewhere) instead of an HTML 500. Nothing half-written stays behind: each event is one
transaction, which PostgreSQL rolls back when the connection goes, and Django drops the
broken connection at the end of the request; the next request opens a new one. A sender
that retries with the same `event_id` gets either the result (a first copy that did commit
answers 200 with `"duplicate": true`) or the event is recorded then.

The broker: `BrokerTolerantTask` (the Celery app's task class) logs and skips a task it
cannot hand to the broker instead of raising into the request that queued it, so an order
still answers 201 when the broker is down. Every task of the project can be recovered from
the database: a notification stays `queued`, a webhook delivery `pending` and a sign-up
email unsent until a sweep queues its task again (`commissions.requeue`, `partners.requeue`,
with `stranded`); clicks are drained every few seconds anyway. After a failed
publish the process does not try the broker again for `BROKER_RETRY_AFTER_SECONDS` (each
try costs a connection attempt and Celery's publish retries, about a second, on the request
path).
"""

import logging
import time
from datetime import datetime, timedelta

from celery import Task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
DATABASE_ERRORS = (OperationalError, InterfaceError)
BROKER_ERRORS = (KombuOperationalError, RedisError, ConnectionError, TimeoutError)
UNAVAILABLE = "The database is unavailable. Send the request again shortly (same event_id)."


class DatabaseUnavailableMiddleware:
    """A view's lost or refused database connection answers 503 with Retry-After.

    Django's `OperationalError` (connection refused or lost, server shutting down, deadlock,
    serialization failure, statement timeout) and `InterfaceError` (connection already
    closed): all of them fail the whole transaction, and the same request sent again can
    succeed. Other database errors stay 500s: they are the site's own faults.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        log.warning(
            "Database unavailable (%s: %s): %s %s answered 503",
            type(exception).__name__,
            str(exception).strip().splitlines()[0] if str(exception).strip() else "",
            request.method,
            request.path,
        )
        if request.path.startswith(API_PREFIX):
            response = JsonResponse(
                {"detail": UNAVAILABLE, "code": "database_unavailable"}, status=503
            )
        else:
            response = HttpResponse(
                "The site is unavailable for a moment. Try again shortly.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = str(settings.DATABASE_RETRY_AFTER_SECONDS)
        return response


class BrokerTolerantTask(Task):
    """Publishing to a broker that cannot be reached is logged and skipped (not raised).

    In-process (eager) runs, without a broker, are left alone: their errors are the task's.
    """

    _broker_down_until = 0.0  # per process: skip the broker until then after a failure

    def apply_async(self, *args, **kwargs):
        task_args = tuple(args[0] if args else kwargs.get("args") or ())
        if self.app.conf.task_always_eager:
            return super().apply_async(*args, **kwargs)
        if time.monotonic() < BrokerTolerantTask._broker_down_until:
            log.warning("Broker down: %s%r not queued (recovered later)", self.name, task_args)
            return None
        try:
            return super().apply_async(*args, **kwargs)
        except BROKER_ERRORS as error:
            BrokerTolerantTask._broker_down_until = (
                time.monotonic() + settings.BROKER_RETRY_AFTER_SECONDS
            )
            log.warning(
                "Broker unreachable (%s): %s%r not queued (recovered later)",
                error,
                self.name,
                task_args,
            )
            return None


REQUEUE_BATCH = 1000  # rows a sweep queues again at most per run


def stranded(rows: QuerySet, *, due: str, at: datetime, limit: int = REQUEUE_BATCH) -> list[int]:
    """Ids of the rows (waiting for their task) that fell due (the field `due`) in the
    window where a task is deemed lost, oldest first, at most `limit`: over
    NOTIFICATION_REQUEUE_AFTER_SECONDS before `at` (until then the task may be on its way)
    and under NOTIFICATION_REQUEUE_MAX_HOURS (given up on after that)."""
    since = at - timedelta(hours=settings.NOTIFICATION_REQUEUE_MAX_HOURS)
    before = at - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS)
    window = {f"{due}__gte": since, f"{due}__lt": before}
    return list(rows.filter(**window).order_by("id").values_list("id", flat=True)[:limit])


def queue_again(task: Task, ids: list[int]) -> int:
    """One task per stranded row id; answers how many. Each task is safe to run twice."""
    for pk in ids:
        task.delay(pk)
    return len(ids)
