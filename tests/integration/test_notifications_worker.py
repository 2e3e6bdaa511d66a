"""Notifications go out through a real Celery worker on the local Redis (SPEC §5.6)."""

import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from commissions.models import Notification
from partners.services import api_key_create
from referral_program.celery import app as celery_app
from tests.factories import PartnerFactory, ProgramFactory

BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path, transactional_db):
    """A Celery worker process on a queue of its own; the test app sends to that queue."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker shares the test database, which needs PostgreSQL")
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
    saved = {
        k: celery_app.conf[k] for k in ("broker_url", "task_always_eager", "task_default_queue")
    }
    celery_app.conf.update(broker_url=BROKER, task_always_eager=False, task_default_queue=queue)
    drop_connections()
    try:
        yield mail_dir
    finally:
        celery_app.conf.update(saved)
        drop_connections()
        process.terminate()
        output, _ = process.communicate(timeout=30)
        print(output.decode(errors="replace"))


def drop_connections():
    """Forget pooled broker connections, made with whatever broker_url was set then."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None


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
    _, raw_key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    response = client.post(
        "/api/v1/events/orders/",
        {
            "event_id": "order-9",
            "contact": {"email": "ada@example.com"},
            "sale_partner": "jane",
            "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        },
        format="json",
    )

    assert response.status_code == 201
    notification = Notification.objects.get(partner=partner)
    assert wait_for(lambda: Notification.objects.get(pk=notification.pk).status == "sent")
    [message] = [p.read_text() for p in worker.iterdir()]
    assert "To: jane@partners.example" in message
    assert "Subject: You earned 12.50 USD on a sale" in message
    assert "Hello Jane Roe," in message
    assert "Level 1 sale commission: 12.50 USD" in message
