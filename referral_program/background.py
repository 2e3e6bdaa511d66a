"""Queue background work by the task's name.

The services queue tasks, and the tasks (doors in, like views) call the services: a service
that imported its app's `tasks` module would make an import cycle. So a service names the
task instead ("commissions.tasks.send_notifications"), and the Celery app finds it among
those it registered (`autodiscover_tasks`). The task keeps its class, so a broker that
cannot be reached is tolerated (`resilience.BrokerTolerantTask`) and, without a broker, the
task runs in-process (SPEC §8).
"""

from typing import Any

from celery import Task, current_app
from django.db import transaction


def task(name: str) -> Task:
    """The task registered as `name`. A web process has not imported the apps' `tasks`
    modules (only a worker does, at start): the first miss imports them, as the worker
    would (`autodiscover_tasks`). An unknown name raises `celery.exceptions.NotRegistered`."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def task_queue(name: str, *args: Any) -> Any:
    """Queue the task registered as `name` with `args` now; its result handle (None when
    the broker is down)."""
    return task(name).delay(*args)


def task_queue_on_commit(name: str, *args: Any) -> None:
    """Queue the task once the current transaction commits (at once outside of one), so
    the worker finds the rows the transaction wrote; nothing is queued on a rollback."""
    found = task(name)  # an unknown name fails here, inside the transaction
    transaction.on_commit(lambda: found.delay(*args))
