"""Notifications go out through a real Celery worker on the local Redis (SPEC §5.6)."""

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import kombu.pools
import pytest
from redis import Redis
from rest_framework.test import APIClient

from commissions.models import Notification
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from referral_program.celery import app as celery_app
from tests.factories import PartnerFactory, ProgramFactory
from tests.processes import database_url

BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]


def sell_for_jane(event_id: str):
    """An order of 100.00 whose sale partner is jane, posted with an API key as a shop."""
    _, raw_key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client.post(
        "/api/v1/events/orders/",
        {
            "event_id": event_id,
            "contact": {"email": "ada@example.com"},
            "sale_partner": "jane",
            "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        },
        format="json",
    )


@contextmanager
def app_sending_to(queue: str):
    """The test app sends its tasks to `queue` on the local Redis, then as before."""
    saved = {
        k: celery_app.conf[k] for k in ("broker_url", "task_always_eager", "task_default_queue")
    }
    celery_app.conf.update(broker_url=BROKER, task_always_eager=False, task_default_queue=queue)
    drop_connections()
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        drop_connections()


@pytest.fixture
def unread_queue(transactional_db):
    """The test app sends to a queue of its own on the local Redis, which no worker reads."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(BROKER)
    try:
        with app_sending_to(queue):
            yield redis, queue
    finally:
        redis.delete(queue)
        redis.close()


def test_an_event_hands_its_emails_to_the_broker_in_one_task(unread_queue):
    """One message on the request path for all of an event's emails, not one per email."""
    redis, queue = unread_queue
    defaults_update(data={"levels": 2}, acting_user=None)
    ProgramFactory(
        priority=1,
        rates={1: {"sale_amount": Decimal("12.50")}, 2: {"sale_amount": Decimal("2.50")}},
    )
    boss = PartnerFactory(code="boss", email="boss@partners.example")
    PartnerFactory(code="jane", email="jane@partners.example", parent=boss)

    response = sell_for_jane("order-7")

    assert response.status_code == 201
    queued = sorted(Notification.objects.filter(status="queued").values_list("pk", flat=True))
    assert len(queued) == 2  # jane's and boss's sale emails
    [message] = [json.loads(raw) for raw in redis.lrange(queue, 0, -1)]
    assert message["headers"]["task"] == "commissions.tasks.send_notifications"
    [ids], _, _ = json.loads(base64.b64decode(message["body"]))
    assert sorted(ids) == queued


@pytest.fixture
def worker(tmp_path, transactional_db):
    """A Celery worker process on a queue of its own; the test app sends to that queue."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER,
        "CELERY_QUEUE": queue,
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(mail_dir),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "referral_program",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with app_sending_to(queue):
            yield mail_dir
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        print(output.decode(errors="replace"))


def drop_connections():
    """Forget pooled broker connections, made with whatever broker_url was set then, and
    kombu's own registry of producer pools, which keeps a pool closed by another worker test
    of this process (keyed by the broker's URL)."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu.pools.reset()


def wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_sale_notification_is_sent_by_the_worker(worker):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("12.50")}})
    partner = PartnerFactory(code="jane", name="Jane Roe", email="jane@partners.example")

    response = sell_for_jane("order-9")

    assert response.status_code == 201
    notification = Notification.objects.get(partner=partner)
    assert wait_for(lambda: Notification.objects.get(pk=notification.pk).status == "sent")
    [message] = [p.read_text() for p in worker.iterdir()]
    assert "To: jane@partners.example" in message
    assert "Subject: You earned 12.50 USD on a sale" in message
    assert "Hello Jane Roe," in message
    assert "Level 1 sale commission: 12.50 USD" in message
