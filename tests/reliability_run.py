"""The reliability run of issue 21: 500 orders through a Redis restart and a killed worker.

    .venv/bin/python tests/reliability_run.py [--orders 500] [--threads 4]

The product as in production, on throwaway services (never the machine's shared PostgreSQL
or Redis): a PostgreSQL cluster made with `initdb`, a `redis-server` on a free port (broker
and click buffer), gunicorn (2 workers), a Celery worker with beat, the file mailer, and a
webhook receiver that answers 500 to the first attempt of every fifth delivery (so retries
wait while Redis restarts). 4 threads send the orders. After a third of them Redis is killed
and started again (its queue is lost: no persistence); after two thirds the worker is killed
(SIGKILL, mid-task) and a new one started, as systemd's `Restart=always` would. Then it waits
until every email is sent and every webhook delivered, and prints the figures: answers,
commission lines, emails (each once?), webhook deliveries (each posted with a 2xx once?),
and whether the worker is alive. Exit code 1 if a figure is off. Not collected by pytest
(it takes about two minutes); docs/reliability.md has its last result.
"""

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_faults import (  # noqa: E402
    Cluster,
    Redis,
    post_order,
    seeded_site,
    sent_mail,
    start,
    stop,
    wait_for,
)

ENDPOINT = (
    "from commissions.webhooks import webhook_endpoint_create\n"
    "webhook_endpoint_create(url={url!r}, events=['commission.created'], secret='s' * 32)\n"
)


class Receiver:
    """A webhook receiver that answers 500 to the first attempt of every fifth delivery."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, int]] = []  # (RP-Delivery, RP-Attempt, status)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                uid, attempt = self.headers["RP-Delivery"], self.headers["RP-Attempt"]
                status = 500 if attempt == "1" and int(uid[-2:], 16) % 5 == 0 else 200
                with receiver.lock:
                    receiver.posts.append((uid, attempt, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def migrated_cluster() -> Cluster:
    cluster = Cluster()
    env = {**os.environ, "DATABASE_URL": cluster.create_database("rp_template")}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return cluster


def new_worker(site, tmp: Path) -> subprocess.Popen:
    log = open(tmp / "worker.log", "ab")  # noqa: SIM115 (closed with the process by stop())
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "referral_program", "worker"),
            *("-B", "--pool=solo", "--without-gossip", "--without-mingle"),
            *("--loglevel=INFO", "--schedule", str(tmp / "beat-schedule")),
        ],
        cwd=ROOT,
        env=site.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    site.processes.append((process, log))
    return process


def count(site, query: str) -> int:
    return site.sql(query)[0][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    orders = args.orders

    began = time.monotonic()
    cluster = migrated_cluster()
    tmp = Path(tempfile.mkdtemp(prefix="rp-reliability-"))
    redis = Redis(tmp)
    receiver = Receiver()
    site = seeded_site(cluster, "rp_reliability")
    answers: dict = {}
    tries = collections.Counter()
    events: list[str] = []
    numbers = iter(range(orders))
    lock = threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            answer = post_order(site, n, "run")
            tries[answer.status] += 1
            while answer.status not in (200, 201):
                time.sleep(0.2)  # a sender sends the same event_id again
                answer = post_order(site, n, "run")
                tries[answer.status] += 1
            answers[n] = answer

    try:
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ENDPOINT.format(url=receiver.url)],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": cluster.url(site.name),
                "CELERY_BROKER_URL": "",
                "WEBHOOK_ALLOW_PRIVATE": "true",
            },
            check=True,
            capture_output=True,
            timeout=120,
        )
        start(
            site,
            tmp,
            CELERY_BROKER_URL=redis.url,
            CELERY_QUEUE="reliability",
            WEBHOOK_ALLOW_PRIVATE="true",
            WEBHOOK_RETRY_BASE_SECONDS="2",
            NOTIFICATION_REQUEUE_SECONDS="1",
            NOTIFICATION_REQUEUE_AFTER_SECONDS="3",
            BROKER_RETRY_AFTER_SECONDS="1",
        )
        worker = site.processes[-1][0]
        threads = [threading.Thread(target=sender) for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answers) >= orders // 3, 300, every=0.05)
        redis.kill()
        events.append(f"Redis killed after {len(answers)} orders")
        time.sleep(2)
        redis.start()
        events.append(f"started again after {len(answers)}")
        wait_for(lambda: len(answers) >= 2 * orders // 3, 300, every=0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        events.append(f"the worker killed (SIGKILL) after {len(answers)}")
        time.sleep(2)
        worker = new_worker(site, tmp)
        events.append(f"a new one started after {len(answers)}")
        for thread in threads:
            thread.join(600)
        sent_sql = "SELECT count(*) FROM commissions_notification WHERE status = 'sent'"
        done_sql = "SELECT count(*) FROM commissions_webhookdelivery WHERE status = 'delivered'"
        wait_for(
            lambda: count(site, sent_sql) == 2 * orders and count(site, done_sql) == orders,
            300,
            every=1,
        )
        time.sleep(5)  # a few more sweeps: nothing goes out twice
        alive = worker.poll() is None
        figures = {
            "events": count(site, "SELECT count(*) FROM commissions_event WHERE kind = 'order'"),
            "lines": count(site, "SELECT count(*) FROM commissions_commission"),
            "notifications": count(site, "SELECT count(*) FROM commissions_notification"),
            "sent": count(site, sent_sql),
            "deliveries": count(site, "SELECT count(*) FROM commissions_webhookdelivery"),
            "delivered": count(site, done_sql),
        }
    finally:
        stop(site, tmp)
        redis.remove()
        receiver.close()
        cluster.remove()

    mail = sent_mail(tmp)
    recipients_per_notification = len(mail)
    oks = collections.Counter(uid for uid, _, status in receiver.posts if status == 200)
    failed_first = sum(1 for _, attempt, status in receiver.posts if status == 500)
    statuses = collections.Counter(a.status for a in answers.values())
    report = [
        f"{orders} orders from {args.threads} threads in {time.monotonic() - began:.0f} s; "
        + "; ".join(events),
        "answers: "
        + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items()))
        + " (every try: "
        + ", ".join(f"{n} x {s}" for s, n in sorted(tries.items(), key=str))
        + ")",
        f"events: {figures['events']} of {orders}; commission lines: {figures['lines']} "
        f"of {2 * orders}",
        f"emails: {figures['sent']} of {figures['notifications']} notifications sent, "
        f"{recipients_per_notification} emails written (each once: "
        f"{recipients_per_notification == figures['sent']})",
        f"webhooks: {figures['delivered']} of {figures['deliveries']} delivered; "
        f"{failed_first} first attempts answered 500 and retried; deliveries posted with a "
        f"2xx: {len(oks)}, more than once: {sum(1 for n in oks.values() if n > 1)}",
        f"worker alive at the end: {alive}",
    ]
    print("\n".join(report))
    good = (
        statuses == {201: orders}
        and figures["events"] == orders
        and figures["lines"] == 2 * orders
        and figures["sent"] == figures["notifications"] == 2 * orders
        and recipients_per_notification == 2 * orders
        and figures["delivered"] == figures["deliveries"] == orders
        and len(oks) == orders
        and alive
    )
    if good:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"The logs and the mail are in {tmp}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
