"""Webhook retries wait out their back-off in the database and a real Celery worker with beat
on the local Redis sends them when due (§9)."""

import itertools
import os
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from django.db import connections
from rest_framework.test import APIClient

from commissions.models import WebhookDelivery
from commissions.webhooks import webhook_endpoint_create
from partners.services.api_keys import api_key_create
from tests.factories import PartnerFactory, ProgramFactory
from tests.integration.test_notifications_worker import (
    BROKER,
    ROOT,
    app_sending_to,
    wait_for,
)
from tests.processes import database_url
from tests.webhook_receiver import documented_verifier, webhook_receiver

SECRET = "whsec_worker-test-secret-0123456789abcdef"


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A worker with beat on a queue of its own, with a back-off base of one second and the
    sweep that hands due retries to the worker every half second."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER,
        "CELERY_QUEUE": queue,
        "CLICK_BUFFER_URL": "",  # beat's click drain has nothing to read here
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        "NOTIFICATION_REQUEUE_SECONDS": "0.5",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "referral_program", "worker", "-B"),
            *("--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat"),
            *("--loglevel=WARNING", "--schedule", str(tmp_path / "beat-schedule")),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with app_sending_to(queue):
            yield
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        print(output.decode(errors="replace"))
        connections.close_all()


def test_the_worker_retries_after_1_then_2_seconds_and_delivers(worker):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("12.50")}})
    PartnerFactory(code="jane")
    _, raw_key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    verify = documented_verifier()

    with webhook_receiver() as receiver:
        webhook_endpoint_create(url=receiver.url, events=["commission.created"], secret=SECRET)
        receiver.script[:] = [500, 500]
        response = client.post(
            "/api/v1/events/orders/",
            {
                "event_id": "order-1",
                "sale_partner": "jane",
                "contact": {"email": "ada@example.com"},
                "items": [{"sku": "A", "quantity": 1, "unit_price": "125.00"}],
            },
            format="json",
        )
        assert response.status_code == 201
        assert wait_for(
            lambda: WebhookDelivery.objects.filter(status="delivered").exists(), seconds=60
        )

    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 3
    assert [e["status"] for e in delivery.log] == [500, 500, 200]
    arrivals = [r.at for r in receiver.received]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 2
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # back-off: 1 s, then 2 s
    assert all(verify(SECRET, r.body, r.headers["RP-Signature"]) for r in receiver.received)
