"""The click buffer on Redis and its drain (issue 6): nothing lost, nothing twice."""

import multiprocessing
import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.db import connections
from django.utils import timezone

from partners.click_buffer import buffer_key, click_to_bytes
from partners.models import Click
from partners.services import clicks as click_services
from partners.services.clicks import click_buffer, clicks_drain
from partners.services.defaults import defaults_update
from partners.tokens import new_click_id
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory

REDIS_URL = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"


@pytest.fixture
def buffered(settings):
    """Clicks go to a Redis list of this test's own."""
    settings.CLICK_BUFFER_URL = REDIS_URL
    settings.CLICK_BUFFER_KEY = f"test:clicks:{uuid.uuid4().hex}"
    settings.CLICK_DRAIN_AT = 10**9
    settings.CLICK_BUFFER_FLUSH_MS = 600_000  # the test pushes when it wants to
    click_buffer.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    if click_buffer() is not None:
        click_buffer().close()  # its thread must not push into a later test's list
    client.delete(settings.CLICK_BUFFER_KEY)
    click_buffer.cache_clear()


def make_clicks(partner, n, *, minutes_apart=0):
    start = timezone.now() - timedelta(hours=1)
    return [
        Click(
            id=new_click_id(start),
            partner_id=partner.pk,
            ip=f"198.51.100.{k % 250}",
            user_agent=BROWSER,
            at=start + timedelta(minutes=k * minutes_apart, microseconds=k),
        )
        for k in range(n)
    ]


def push(client, clicks):
    client.rpush(buffer_key(), *[click_to_bytes(c) for c in clicks])


@pytest.mark.django_db
def test_the_tracker_buffers_clicks_and_the_drain_stores_them(client, buffered):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    jane = PartnerFactory(code="jane")

    for n in range(3):
        response = client.get("/go/jane/", headers={"user-agent": f"{BROWSER} {n}"})
        assert response.status_code == 302
    click_buffer().flush()

    assert Click.objects.count() == 0
    assert buffered.llen(buffer_key()) == 3
    assert clicks_drain() == 3
    assert buffered.llen(buffer_key()) == 0
    assert list(Click.objects.values_list("partner", flat=True)) == [jane.pk] * 3


@pytest.mark.django_db
def test_the_redirect_runs_one_query_with_a_buffer(client, buffered, django_assert_num_queries):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    PartnerFactory(code="jane")
    with django_assert_num_queries(1):
        assert client.get("/go/jane/", headers={"user-agent": BROWSER}).status_code == 302


@pytest.mark.django_db
def test_the_drain_counts_repeats_once(buffered):
    jane = PartnerFactory(code="jane")
    defaults_update(data={"duplicate_click_minutes": 30}, acting_user=None)
    clicks = make_clicks(jane, 1) * 1  # one visitor...
    start = clicks[0].at
    repeats = [
        Click(
            id=new_click_id(start),
            partner_id=jane.pk,
            ip=clicks[0].ip,
            user_agent=BROWSER,
            at=start + timedelta(minutes=m),
        )
        for m in (5, 29, 61)
    ]
    push(buffered, clicks + repeats)

    assert clicks_drain() == 4
    assert sorted(Click.objects.values_list("at", flat=True)) == [
        start,
        start + timedelta(minutes=61),
    ]


@pytest.mark.django_db
def test_a_drained_batch_stored_again_lands_once(buffered):
    jane = PartnerFactory(code="jane")
    clicks = make_clicks(jane, 50)
    push(buffered, clicks)
    clicks_drain()
    push(buffered, clicks)  # the same batch again, as after a drain died before trimming

    clicks_drain()

    assert Click.objects.count() == 50


def _drain_and_die(stage: str, ready) -> None:
    """In a child process: drain, then hang at `stage` until killed."""
    real_store = click_services.clicks_store

    def store_then_hang(**kwargs):
        stored = real_store(**kwargs)
        if stage == "before-commit":
            ready.set()
            time.sleep(600)
        return stored

    click_services.clicks_store = store_then_hang
    if stage == "before-trim":
        real_ltrim = redis.Redis.ltrim

        def hang(self, *args):
            ready.set()
            time.sleep(600)
            return real_ltrim(self, *args)

        redis.Redis.ltrim = hang
    clicks_drain()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stage", ["before-commit", "before-trim"])
def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(buffered, stage):
    jane = PartnerFactory(code="jane")
    defaults_update(data={"duplicate_click_minutes": 0}, acting_user=None)
    clicks = make_clicks(jane, 1200)
    push(buffered, clicks)
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    connections.close_all()  # the child must open its own connection, not share ours
    child = context.Process(target=_drain_and_die, args=(stage, ready))
    child.start()
    assert ready.wait(60), "the child drain never reached its stage"

    os.kill(child.pid, signal.SIGKILL)
    child.join(30)

    expected_before = 1200 if stage == "before-trim" else 0
    assert Click.objects.count() == expected_before
    assert buffered.llen(buffer_key()) == 1200  # nothing trimmed without a commit
    buffered.delete(f"{buffer_key()}:drain-lock")  # the dead drain's lock (it would expire)
    assert clicks_drain() == 1200
    assert Click.objects.count() == 1200
    assert set(Click.objects.values_list("id", flat=True)) == {c.id for c in clicks}


@pytest.mark.django_db
def test_an_order_before_the_drain_is_still_attributed(client, api, buffered):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    ProgramFactory(priority=1)
    PartnerFactory(code="jane")
    token = client.get("/go/jane/", headers={"user-agent": BROWSER}).cookies["rp_ref"].value
    assert Click.objects.count() == 0

    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": "o1",
            "contact": {"email": "ada@example.com"},
            "tracking_token": token,
            "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
        },
        format="json",
    )

    assert response.json()["sale_partner"] == "jane"
    assert response.json()["attribution"] == {"source": "cookie", "rule": "last"}


@pytest.mark.django_db
def test_with_redis_down_the_tracker_writes_directly(client, settings):
    settings.CLICK_BUFFER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CLICK_BUFFER_KEY = "test:clicks:down"
    settings.CLICK_BUFFER_FLUSH_MS = 600_000  # pushed (and failed over) by the test itself
    click_buffer.cache_clear()
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    PartnerFactory(code="jane")
    try:
        response = client.get("/go/jane/", headers={"user-agent": BROWSER})
        click_buffer().close()
    finally:
        click_buffer.cache_clear()

    assert response.status_code == 302
    assert Click.objects.count() == 1
