"""Faults (issue 7, part 4): PostgreSQL restarted under a burst of orders; the broker down.

Both run the product as real processes (gunicorn with 2 workers; a Celery worker with beat)
against a throwaway PostgreSQL cluster made here with `initdb` (and, for the broker, a
throwaway `redis-server`): the machine's PostgreSQL and Redis, which other tests share, are
never stopped. Everything is checked with SQL in the throwaway database.

docs/reliability.md says what the site answers meanwhile and why.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from glob import glob
from http.client import HTTPConnection
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parents[2]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"
SELLERS = [f"seller{n}" for n in range(4)]

# The seed: 2 levels; level 1 earns 5.00 + 10 % of the base, level 2 (boss) 2.00.
SEED = """
from decimal import Decimal
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory

defaults_update(data={"levels": 2, "payout_percent": True}, acting_user=None)
program = ProgramFactory(
    priority=1,
    levels=2,
    payout_percent=True,
    rates={
        1: {"sale_amount": Decimal("5.00"), "sale_percent": Decimal("10")},
        2: {"sale_amount": Decimal("2.00")},
    },
)
boss = PartnerFactory(code="boss", program=program)
for n in range(4):
    PartnerFactory(code=f"seller{n}", parent=boss, program=program)
TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
print(api_key_create(name="faults")[1])
"""


def expected_lines(quantity: int) -> set[tuple[str, int, Decimal]]:
    base = Decimal("40.00") * quantity
    seller = Decimal("5.00") + base / 10
    return {("seller", 1, seller), ("boss", 2, Decimal("2.00"))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], seconds: float = 60.0, every: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


# --- A throwaway PostgreSQL cluster ---------------------------------------------------------


def postgres_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """`initdb` in a temporary directory, served on a free port; as the `postgres` OS user
    when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            pytest.skip("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres and not shutil.which("runuser"):
            pytest.skip("running as root needs runuser to start PostgreSQL as postgres")
        self.dir = Path(tempfile.mkdtemp(prefix="rp-faults-pg-"))
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "-N")
        self.start()

    @property
    def data(self) -> str:
        return str(self.dir / "data")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _ctl(self, action: str) -> None:
        options = f"-k {self.dir} -c listen_addresses=127.0.0.1 -p {self.port}"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", action, "-D", self.data, "-l", log, "-w", "-m", "fast", "-o", options)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def sql(self, database: str, query: str, *params) -> list[tuple]:
        """One statement in autocommit (psycopg2's `with connection` would open a
        transaction, in which CREATE DATABASE cannot run)."""
        connection = psycopg2.connect(self.url(database))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def create_database(self, name: str, template: str | None = None) -> str:
        like = f' TEMPLATE "{template}"' if template else ""
        self.sql("postgres", f'CREATE DATABASE "{name}"{like}')
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One throwaway cluster for the module, with a migrated template database."""
    made = Cluster()
    try:
        env = {**os.environ, "DATABASE_URL": made.create_database("rp_template")}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield made
    finally:
        made.remove()


@dataclass
class Site:
    """A seeded database in the cluster and the processes serving it."""

    cluster: Cluster
    name: str
    key: str
    port: int = 0
    env: dict = field(default_factory=dict)
    processes: list = field(default_factory=list)

    def sql(self, query: str, *params) -> list[tuple]:
        return self.cluster.sql(self.name, query, *params)


def seeded_site(cluster: Cluster, name: str) -> Site:
    url = cluster.create_database(name, template="rp_template")
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": ""},
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Site(cluster=cluster, name=name, key=seeded.stdout.strip().splitlines()[-1])


def start(site: Site, tmp_path: Path, **extra: str) -> None:
    """gunicorn (2 workers) on a free port, and a Celery worker with beat if there is a broker."""
    site.port = free_port()
    site.env = {
        **os.environ,
        "DATABASE_URL": site.cluster.url(site.name),
        "CELERY_BROKER_URL": "",
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"http://127.0.0.1:{site.port}",
        **extra,
    }
    web_log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 (closed with the process)
    site.processes.append(
        (
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"),
                    *("--bind", f"127.0.0.1:{site.port}", "--workers", "2"),
                    *("--max-requests", "0", "--timeout", "30"),
                ],
                cwd=ROOT,
                env=site.env,
                stdout=web_log,
                stderr=subprocess.STDOUT,
            ),
            web_log,
        )
    )
    if site.env["CELERY_BROKER_URL"]:
        worker_log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
        site.processes.append(
            (
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "celery", "-A", "referral_program", "worker"),
                        *("-B", "--pool=solo", "--without-gossip", "--without-mingle"),
                        *("--loglevel=INFO", "--schedule", str(tmp_path / "beat-schedule")),
                    ],
                    cwd=ROOT,
                    env=site.env,
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                ),
                worker_log,
            )
        )
    assert wait_for(lambda: healthy(site.port), 30), (tmp_path / "web.log").read_text()


def stop(site: Site, tmp_path: Path) -> None:
    for process, log in reversed(site.processes):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
    for name in ("web.log", "worker.log"):
        if (tmp_path / name).exists():
            print(f"--- {name}\n" + (tmp_path / name).read_text(errors="replace")[-4000:])


def healthy(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
    except OSError:
        return False


# --- HTTP -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer at all (connection refused or reset)
    body: dict | str
    headers: dict
    seconds: float


def order_body(n: int, prefix: str = "burst") -> dict:
    return {
        "event_id": f"{prefix}-{n}",
        "contact": {"email": f"buyer{n}@example.com"},
        "sale_partner": SELLERS[n % len(SELLERS)],
        "items": [{"sku": "A", "quantity": 1 + n % 3, "unit_price": "40.00"}],
    }


def request(site: Site, method: str, path: str, body: dict | None = None, **headers) -> Answer:
    began = time.monotonic()
    connection = HTTPConnection("127.0.0.1", site.port, timeout=20)
    try:
        connection.request(
            method,
            path,
            body=json.dumps(body) if body is not None else None,
            headers={
                "Authorization": f"Bearer {site.key}",
                "Content-Type": "application/json",
                **headers,
            },
        )
        response = connection.getresponse()
        raw = response.read().decode()
    except OSError as error:
        return Answer(None, repr(error), {}, time.monotonic() - began)
    finally:
        connection.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    return Answer(response.status, parsed, dict(response.getheaders()), time.monotonic() - began)


def post_order(site: Site, n: int, prefix: str = "burst") -> Answer:
    return request(site, "POST", "/api/v1/events/orders/", order_body(n, prefix))


def assert_retryable(answer: Answer) -> None:
    """What a sender sees while the database is away: a prompt 503 it may retry."""
    assert answer.status == 503, answer
    assert answer.body == {
        "detail": "The database is unavailable. Send the request again shortly (same event_id).",
        "code": "database_unavailable",
    }
    assert answer.headers["Retry-After"] == "5"
    assert answer.seconds < 5, answer


def retry_until_recorded(site: Site, n: int, prefix: str, seconds: float = 60) -> Answer:
    deadline = time.monotonic() + seconds
    while True:
        answer = post_order(site, n, prefix)
        if answer.status in (200, 201) or time.monotonic() > deadline:
            return answer
        assert answer.status in (503, None), answer
        time.sleep(0.2)


def assert_each_order_whole(site: Site, event_ids: list[str]) -> None:
    """One event, one order and exactly its two commission lines per event_id."""
    events = dict(
        site.sql("SELECT event_id, count(*) FROM commissions_event WHERE kind = 'order' GROUP BY 1")
    )
    assert events == dict.fromkeys(event_ids, 1)
    assert site.sql("SELECT count(*) FROM commissions_event WHERE result IS NULL") == [(0,)]
    orders = dict(site.sql("SELECT order_id, count(*) FROM commissions_order GROUP BY 1"))
    assert orders == dict.fromkeys(event_ids, 1)
    lines: dict[str, set] = {}
    for order_id, code, level, amount in site.sql(
        """SELECT o.order_id, p.code, c.level, c.amount
           FROM commissions_commission c
           JOIN commissions_order o ON o.id = c.order_id
           JOIN partners_partner p ON p.id = c.partner_id
           WHERE c.entry = 'commission'"""
    ):
        lines.setdefault(order_id, set()).add((code.rstrip("0123456789"), level, amount))
    for event_id in event_ids:
        quantity = 1 + int(event_id.rsplit("-", 1)[1]) % 3
        assert lines.get(event_id) == expected_lines(quantity), event_id
    assert site.sql("SELECT count(*) FROM commissions_commission") == [(2 * len(event_ids),)]
    notifications = site.sql(
        "SELECT count(*), count(DISTINCT (event_id, partner_id, kind)) "
        "FROM commissions_notification"
    )
    assert notifications == [(2 * len(event_ids), 2 * len(event_ids))]


# --- PostgreSQL restarted in the middle of a burst of orders --------------------------------


THREADS = 6
AFTER_RESTART = 30  # answers after the database is back before the burst stops


def test_orders_sent_while_postgresql_restarts_are_recorded_once_and_whole(cluster, tmp_path):
    site = seeded_site(cluster, "rp_restart")
    start(site, tmp_path)  # no broker: emails go out in-process after each commit
    answers: dict[int, Answer] = {}
    numbers = iter(range(100_000))
    lock = threading.Lock()
    done = threading.Event()

    def sender() -> None:
        while not done.is_set():
            with lock:
                n = next(numbers)
            answers[n] = post_order(site, n)
            if answers[n].status != 201:
                time.sleep(0.1)  # a sender backs off a little after a refusal

    threads = [threading.Thread(target=sender) for _ in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        assert wait_for(lambda: len(answers) >= 30, 60, every=0.01), len(answers)

        cluster.stop()  # a fast shutdown: transactions in flight are rolled back
        down = [post_order(site, n, "while-down") for n in range(3)]
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"http://127.0.0.1:{site.port}/readyz", timeout=5)
        time.sleep(1)  # the burst goes on against a stopped database
        cluster.start()
        back = len(answers)
        assert wait_for(lambda: len(answers) >= back + AFTER_RESTART, 60, every=0.01)
        done.set()
        for thread in threads:
            thread.join(60)

        failed = {n: a for n, a in answers.items() if a.status != 201}
        retried = {n: retry_until_recorded(site, n, "burst") for n in failed}
        retried_down = [retry_until_recorded(site, n, "while-down") for n in range(3)]
        again = {n: post_order(site, n) for n in range(0, len(answers), 10)}
    finally:
        done.set()
        stop(site, tmp_path)

    # While the database was away: a prompt 503 with Retry-After, never a 500 or a hang.
    for answer in down:
        assert_retryable(answer)
    assert not_ready.value.code == 503
    assert failed, "the restart should have refused some of the burst"
    for answer in failed.values():
        if answer.status is not None:  # None: the connection itself failed; retried too
            assert_retryable(answer)
    slowest = max(a.seconds for a in [*down, *failed.values()])
    lost = sum(a.status == 200 for a in retried.values())
    print(
        f"{len(failed)} of {len(answers)} orders refused during the restart "
        f"({sum(a.status is None for a in failed.values())} without an answer; slowest "
        f"refusal {slowest:.3f} s); {lost} had committed before their answer was lost"
    )

    # Every retry recorded its event: 201 if the first copy had not committed; 200 with the
    # first result ("duplicate") if it had and only its answer was lost.
    for n, answer in retried.items():
        assert answer.status in (200, 201), (n, answer)
        assert answer.body["duplicate"] is (answer.status == 200)
        assert answer.body["order_id"] == f"burst-{n}"
    assert [a.status for a in retried_down] == [201, 201, 201]
    for n, answer in again.items():
        assert (answer.status, answer.body["duplicate"]) == (200, True)
        assert answer.body["order_id"] == f"burst-{n}"

    # Nothing doubled, nothing half-written.
    event_ids = [f"burst-{n}" for n in answers] + [f"while-down-{n}" for n in range(3)]
    assert_each_order_whole(site, event_ids)


# --- The broker down -------------------------------------------------------------------------


class Redis:
    """A throwaway redis-server (no persistence), killed and started again by the test."""

    def __init__(self, tmp_path: Path) -> None:
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                *("--dir", str(self.dir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(self.answers, 10)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        self.process.kill()  # a crash: what the queue held is lost
        self.process.wait(10)

    def remove(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill()


def go(site: Site, n: int) -> Answer:
    began = time.monotonic()
    connection = HTTPConnection("127.0.0.1", site.port, timeout=20)
    connection.request(
        "GET", "/go/seller0/", headers={"User-Agent": BROWSER, "X-Forwarded-For": f"198.51.100.{n}"}
    )
    response = connection.getresponse()
    response.read()
    headers = dict(response.getheaders())
    connection.close()
    return Answer(response.status, "", headers, time.monotonic() - began)


def sent_mail(tmp_path: Path) -> list[str]:
    """Every message the file mailer wrote (a file can hold several, one after another)."""
    folder = tmp_path / "mail"
    text = "".join(p.read_text() for p in folder.iterdir()) if folder.exists() else ""
    return [m for m in text.split("-" * 79 + "\n") if m.strip()]


def test_with_the_broker_down_clicks_and_orders_land_and_emails_go_out_when_it_is_back(
    cluster, tmp_path
):
    site = seeded_site(cluster, "rp_broker")
    redis = Redis(tmp_path)
    start(
        site,
        tmp_path,
        CELERY_BROKER_URL=redis.url,  # also the click buffer
        CELERY_QUEUE="faults",
        CLICK_DRAIN_SECONDS="1",
        BROKER_RETRY_AFTER_SECONDS="1",
        NOTIFICATION_REQUEUE_SECONDS="1",
        NOTIFICATION_REQUEUE_AFTER_SECONDS="2",
        TRUSTED_PROXY_DEPTH="1",
    )
    clicks = lambda: site.sql("SELECT count(*) FROM partners_click")[0][0]  # noqa: E731
    sent = lambda: site.sql(  # noqa: E731
        "SELECT count(*) FROM commissions_notification WHERE status = 'sent'"
    )[0][0]
    try:
        # Up: a click and an order go the usual way (buffer and drain; a worker's email).
        assert go(site, 1).status == 302
        assert post_order(site, 0, "up").status == 201
        assert wait_for(lambda: clicks() == 1 and sent() == 2, 60), (clicks(), sent())

        redis.kill()
        down_clicks = [go(site, n) for n in range(2, 22)]
        down_orders = [post_order(site, n, "down") for n in range(10)]
        # Written by the web processes themselves, at once.
        assert wait_for(lambda: clicks() == 21, 20), clicks()
        queued = site.sql(
            """SELECT count(*) FROM commissions_notification nt
               JOIN commissions_event e ON e.id = nt.event_id
               WHERE e.event_id LIKE 'down-%%' AND nt.status = 'queued'"""
        )
        time.sleep(3)  # the requeue sweep runs meanwhile and can't reach the broker either
        redis.start()
        assert wait_for(lambda: sent() == 22, 90), sent()
        assert go(site, 30).status == 302
        assert wait_for(lambda: clicks() == 22, 30), clicks()
        time.sleep(3)  # a few more sweeps: nothing is sent twice
    finally:
        stop(site, tmp_path)
        redis.remove()

    for answer in down_clicks:
        assert answer.status == 302, answer
        assert answer.headers["Location"].startswith("https://shop.example/?rp_ref=")
        assert "rp_ref=" in answer.headers["Set-Cookie"]
        assert answer.seconds < 3, answer
    for answer in down_orders:
        assert answer.status == 201, answer
        assert answer.seconds < 5, answer
    assert queued == [(20,)]  # logged while the broker was away, sent when it came back
    assert_each_order_whole(site, ["up-0"] + [f"down-{n}" for n in range(10)])
    mail = sent_mail(tmp_path)
    assert len(mail) == 22  # one email per notification, none twice
    assert sum("To: boss@partners.example" in m for m in mail) == 11
    assert site.sql(
        "SELECT count(*) FROM commissions_notification WHERE status <> 'sent' OR sent_at IS NULL"
    ) == [(0,)]


# --- Redis restarted while webhook retries wait (issue 21, finding 3) ------------------------

ENDPOINT = """
from commissions.webhooks import webhook_endpoint_create
webhook_endpoint_create(url={url!r}, events=["commission.created"], secret="s" * 32)
"""


def test_the_worker_survives_a_redis_restart_with_webhook_retries_waiting(cluster, tmp_path):
    """celery 5.7 / kombu 5.7 exited for good ("Unrecoverable error: AttributeError('NoneType'
    object has no attribute 'hostname')") when Redis restarted while the worker held retries
    with a countdown, 2 times out of 2. Retries now wait in the database (`next_attempt_at`)
    and the beat sweep hands them to the worker when due: the worker holds nothing delayed."""
    from tests.webhook_receiver import webhook_receiver

    site = seeded_site(cluster, "rp_webhook_retries")
    redis = Redis(tmp_path)
    with webhook_receiver() as receiver:
        receiver.script[:] = [500, 500, 500]
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ENDPOINT.format(url=receiver.url)],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": site.cluster.url(site.name),
                "WEBHOOK_ALLOW_PRIVATE": "true",
                "CELERY_BROKER_URL": "",
            },
            check=True,
            capture_output=True,
            timeout=120,
        )
        start(
            site,
            tmp_path,
            CELERY_BROKER_URL=redis.url,
            CELERY_QUEUE="retries",
            WEBHOOK_ALLOW_PRIVATE="true",
            WEBHOOK_RETRY_BASE_SECONDS="4",
            NOTIFICATION_REQUEUE_SECONDS="1",
            NOTIFICATION_REQUEUE_AFTER_SECONDS="2",
        )
        worker = site.processes[-1][0]
        try:
            orders = [post_order(site, n, "hook") for n in range(3)]
            # Each delivery failed once and waits 4 s for its retry.
            assert wait_for(lambda: len(receiver.received) >= 3, 30), len(receiver.received)
            redis.kill()
            time.sleep(1)
            redis.start()
            delivered = lambda: site.sql(  # noqa: E731
                "SELECT count(*) FROM commissions_webhookdelivery WHERE status = 'delivered'"
            )[0][0]
            assert wait_for(lambda: delivered() == 3 or worker.poll() is not None, 90)
            time.sleep(3)  # a few more sweeps: nothing is posted twice
            alive = worker.poll() is None
        finally:
            stop(site, tmp_path)
            redis.remove()

    assert [o.status for o in orders] == [201, 201, 201]
    assert alive, "the worker exited when Redis restarted"
    assert delivered() == 3
    oks = [r for r in receiver.received if r.headers["RP-Attempt"] != "1"]
    assert len({r.headers["RP-Delivery"] for r in receiver.received}) == 3
    assert len(receiver.received) - len(oks) == 3  # the first attempts, all failed
    # Each delivery reached the receiver with a 2xx exactly once.
    answered_ok = site.sql(
        "SELECT count(*) FROM commissions_webhookdelivery d, jsonb_array_elements(d.log) e "
        "WHERE (e->>'status')::int BETWEEN 200 AND 299"
    )
    assert answered_ok == [(3,)]
