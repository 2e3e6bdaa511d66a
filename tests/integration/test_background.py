"""Tasks queued by name (`referral_program.background`): in-process without a broker."""

import pytest
from celery.exceptions import NotRegistered
from django.db import transaction

from referral_program.background import task_queue, task_queue_on_commit

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_task_is_queued_by_its_name_and_runs_in_process_without_a_broker(settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    result = task_queue("commissions.tasks.send_notifications", [])
    assert result.successful() and result.result == 0  # an EagerResult: no .get() (a
    # task earlier in the worker may have set Celery's "never .get() in a task" flag)


def test_an_unknown_task_name_is_refused():
    with pytest.raises(NotRegistered):
        task_queue("commissions.tasks.no_such_task")
    with pytest.raises(NotRegistered):
        task_queue_on_commit("partners.tasks.no_such_task")


def test_a_task_queued_on_commit_waits_for_the_commit_and_never_runs_on_a_rollback(
    monkeypatch,
):
    from celery import current_app

    ran = []
    task = current_app.tasks["commissions.tasks.send_notifications"]
    monkeypatch.setattr(task, "delay", lambda *args: ran.append(args))

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        task_queue_on_commit("commissions.tasks.send_notifications", [1])
        raise Rollback
    assert ran == []
    with transaction.atomic():
        task_queue_on_commit("commissions.tasks.send_notifications", [2])
        assert ran == []
    assert ran == [([2],)]
