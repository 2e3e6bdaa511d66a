"""The whole product as real processes: gunicorn, a Celery worker with beat, PostgreSQL and
Redis (issue 6). Clicks and orders go over HTTP; every click and commission must land."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from decimal import Decimal
from http.client import HTTPConnection
from pathlib import Path

import pytest

from commissions.models import Commission, Notification, Order
from partners.models import Click
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory
from tests.processes import database_url

ROOT = Path(__file__).resolve().parents[2]
REDIS = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds=60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


@pytest.fixture
def stack(tmp_path, transactional_db):
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": REDIS,
        "CELERY_QUEUE": f"stack-{tag}",
        "CLICK_BUFFER_KEY": f"stack:clicks:{tag}",
        "CLICK_DRAIN_SECONDS": "1",
        "TRUSTED_PROXY_DEPTH": "1",
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"http://127.0.0.1:{port}",
    }
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("web", "worker")}  # noqa: SIM115
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--max-requests",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=logs["web"],
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "referral_program",
            "worker",
            "-B",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=logs["worker"],
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: _up(port), 30), (tmp_path / "web.log").read_text()
        yield port
    finally:
        web.send_signal(signal.SIGTERM)  # graceful: the workers push what they hold
        web.wait(30)
        wait_for(lambda: False, 3)  # let beat drain what the stop pushed
        worker.terminate()
        worker.wait(30)
        for log in logs.values():
            log.close()
        print((tmp_path / "web.log").read_text()[-3000:])
        print((tmp_path / "worker.log").read_text()[-3000:])


def _up(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
    except OSError:
        return False


def click(port: int, code: str, n: int) -> str:
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "GET",
        f"/go/{code}/",
        headers={"User-Agent": BROWSER, "X-Forwarded-For": f"203.0.113.{n % 250}"},
    )
    response = conn.getresponse()
    assert response.status == 302
    cookie = response.getheader("Set-Cookie")
    return cookie.split("rp_ref=", 1)[1].split(";", 1)[0].strip('"')


def post_order(port: int, key: str, n: int, token: str) -> dict:
    body = json.dumps(
        {
            "event_id": f"stack-order-{n}",
            "contact": {"email": f"buyer{n}@example.com"},
            "tracking_token": token,
            "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        }
    )
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/api/v1/events/orders/",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    assert response.status == 201, response.read()
    return json.loads(response.read())


def test_clicks_and_orders_over_http_all_land(stack):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    defaults_update(data={"levels": 2}, acting_user=None)
    ProgramFactory(
        priority=1,
        levels=2,
        rates={1: {"sale_amount": Decimal("10")}, 2: {"sale_amount": Decimal("4")}},
    )
    boss = PartnerFactory(code="bossy")
    partners = [PartnerFactory(code=f"part{n:02d}", parent=boss) for n in range(5)]
    _, key = api_key_create(name="stack")

    tokens = [click(stack, partners[n % 5].code, n) for n in range(200)]
    answers = [post_order(stack, key, n, tokens[n]) for n in range(0, 200, 10)]

    assert all(a["sale_partner"] == partners[n * 10 % 5].code for n, a in enumerate(answers))
    assert wait_for(lambda: Click.objects.count() == 200, 60), Click.objects.count()
    assert Order.objects.count() == 20
    assert Commission.objects.count() == 40  # each order: the partner 10.00, its parent 4.00
    assert sum(c.amount for c in Commission.objects.all()) == Decimal("280.00")
    assert wait_for(lambda: Notification.objects.filter(status="sent").count() == 40, 60), list(
        Notification.objects.values_list("status", flat=True)
    )
