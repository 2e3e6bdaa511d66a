"""*Preview the effect* (SPEC §13) replayed by a real Celery worker on the local Redis: the
page answers at once with the run queued, the worker writes its progress and its answer on
the run's row, and the page's status address reports them (SPEC §8: nothing in a process)."""

from django.test import Client

from commissions.models import Notification, SimulationRun
from tests.factories import StaffFactory
from tests.functional.test_defaults_page import form_data
from tests.functional.test_preview_pages import RANGE, outside_the_runs, shop  # noqa: F401
from tests.integration.test_notifications_worker import wait_for, worker  # noqa: F401

PREVIEW_URL = "/staff/settings/referral-partner-defaults/preview/"


def test_a_worker_replays_the_preview_and_the_status_follows(
    worker,  # noqa: F811 (the fixture)
    shop,  # noqa: F811 (the fixture)
):
    client = Client()
    client.force_login(StaffFactory())
    # The worker sends the orders' emails first (rows the replay must not touch either).
    assert wait_for(lambda: not Notification.objects.filter(status="queued").exists())
    before = outside_the_runs()

    response = client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})

    assert response.status_code == 200
    run = SimulationRun.objects.get()
    assert f'data-status-url="/staff/simulations/{run.pk}/status/"' in response.content.decode()
    assert wait_for(lambda: SimulationRun.objects.get().status == "done", seconds=60), (
        SimulationRun.objects.values("status", "error").get()
    )
    run.refresh_from_db()
    assert run.total > 0
    assert run.done == run.total
    assert (run.answer["total_now"], run.answer["total_proposed"]) == ("25.00", "20.00")
    status = client.get(f"/staff/simulations/{run.pk}/status/").json()
    assert (status["status"], status["done"], status["total"]) == ("done", run.total, run.total)
    assert 'id="preview-partners"' in status["html"]
    assert outside_the_runs() == before
