"""Load test: clicks, web forms and orders mixed, at a steady rate, for minutes (issue 7).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_load .venv/bin/python bench/load.py

The production layout on one machine: gunicorn (2 sync workers, persistent connections)
with the click buffer and Celery on the local Redis, and one Celery worker with beat
draining the clicks and sending the partners' emails (to files). An open-loop client
(asyncio, in this process) sends --rate requests per second, evenly spaced, for
--seconds, each on a new connection at its scheduled time whatever the earlier answers:

    clicks     90 %  GET /go/<code>/                   a random partner, a new visitor
    web forms   7 %  POST /api/v1/events/web-forms/    a new contact, an explicit lead partner
    orders      3 %  POST /api/v1/events/orders/       a new contact, explicit lead and sale
                                                       partners, 1-3 items, a discount

It reports, per kind, the requests answered, the rate, p50/p99 latency and the errors.
Afterwards it waits for the click buffer and the email queue to empty, then checks:
every answered click was stored once; every 201 event was stored once; and the ledger
(`commissions.ledger.ledger_totals`, the figures every page shows) equals, partner by
partner, the commissions computed here independently from the stored order payloads by
this file's own arithmetic (SPEC §5.2 for this bench's fixed rates, not the engine's
code): a 2-level tree, lead 1.00 + 2 % and 0.50, sale 10 % and 5 %, half-up per line.

The database is emptied first, so its name must contain "bench". Traffic goes to
127.0.0.1 only; needs Redis on 127.0.0.1:6379. (Not wrk: pacing wrk's connections
leaves gunicorn's sync workers waiting on idle sockets, which no real traffic does.)
"""

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BROWSER,
    WORKERS,
    bench_django,
    celery_worker,
    free_port,
    gunicorn,
    load_average,
    process_cpu_seconds,
    report_end,
    report_head,
    seeded,
    wait_until_ready,
    workers_cpu_seconds,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_load"
SECTION_HEADING = "## Mixed load (bench/load.py)"
BROKER = "redis://127.0.0.1:6379/13"
BUFFER_KEY = "rp:bench-load-clicks"
QUEUE = "rp-bench-load"
CONN_MAX_AGE = 60
REQUEST_TIMEOUT = 30  # seconds, from the scheduled time
CENT = Decimal("0.01")

# The bench's own rates (SPEC §5.2 with payout_amount and payout_percent on).
RATES = [
    {"level": 1, "lead_amount": "1.00", "lead_percent": "2", "sale_percent": "10"},
    {"level": 2, "lead_amount": "0.50", "sale_percent": "5"},
]


@dataclass(frozen=True)
class Kind:
    name: str
    share: float
    label: str


KINDS = [
    Kind("clicks", 0.90, "clicks, `GET /go/<code>/`"),
    Kind("forms", 0.07, "web forms, `POST /api/v1/events/web-forms/`"),
    Kind("orders", 0.03, "orders, `POST /api/v1/events/orders/`"),
]


def main() -> int:
    args = parse_args()
    if not bench_django(DEFAULT_DATABASE_URL):
        return 2
    seed, _ = seeded(args.seed)
    print(f"Preparing the database: {args.roots} x {args.fanout} partners (seed {seed})")
    codes, raw_key = prepare_data(args=args)
    if (load := load_average()) > 0.5:
        print(f"Warning: load average {load:.2f} before the run: other work skews the figures")

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="rp-bench-load-") as tmp:
        log = Path(tmp)
        env = {
            "CELERY_BROKER_URL": BROKER,
            "CLICK_BUFFER_URL": BROKER,
            "CLICK_BUFFER_KEY": BUFFER_KEY,
            "CELERY_QUEUE": QUEUE,
            "EMAIL_URL": "filemail://",
            "EMAIL_FILE_PATH": str(log / "mail"),
        }
        broker_reset()
        port = free_port()
        with contextlib.ExitStack() as stack:
            arbiter = stack.enter_context(
                gunicorn(port=port, conn_max_age=CONN_MAX_AGE, log=log, env=env)
            )
            worker = stack.enter_context(
                celery_worker(queue=QUEUE, conn_max_age=CONN_MAX_AGE, log=log, env=env)
            )
            stack.callback(broker_reset)
            wait_until_ready(port)
            print(f"gunicorn on 127.0.0.1:{port}; {args.rate} req/s for {args.seconds} s")
            web_cpu = workers_cpu_seconds(arbiter)
            worker_cpu = process_cpu_seconds(worker)
            started = time.monotonic()
            tallies = run_mixed(
                port, args=args, codes=codes, raw_key=raw_key, prefix=f"load{seed}", seed=seed
            )
            elapsed = time.monotonic() - started
            web_cpu = workers_cpu_seconds(arbiter) - web_cpu
            print("Waiting for the click buffer and the email queue to empty")
            settled = settle(seconds=120)
            worker_cpu = process_cpu_seconds(worker) - worker_cpu
            checks = check(tallies)
    report = markdown_report(
        tallies, checks, args=args, seed=seed, elapsed=elapsed, settled=settled,
        web_cpu=web_cpu, worker_cpu=worker_cpu, load=(load_before, load_average()),
    )  # fmt: skip
    problems = [text for ok, text in checks if not ok]
    return report_end(report, problems, heading=SECTION_HEADING, write_docs=args.write_docs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="length of the run (300)")
    parser.add_argument("--rate", type=int, default=400, help="requests per second (400)")
    parser.add_argument("--roots", type=int, default=20, help="partners at the top (20)")
    parser.add_argument("--fanout", type=int, default=10, help="children per partner (10)")
    parser.add_argument("--seed", type=int, help="seed of the client's choices")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if args.seconds < 5 or args.rate < 10:
        parser.error("--seconds must be at least 5 and --rate at least 10")
    return args


def prepare_data(*, args: argparse.Namespace) -> tuple[list[str], str]:
    """An empty engine, the bench's defaults and rates, and a 2-level partner tree."""
    from django.core.management import call_command
    from django.db import connection

    from commissions import models as engine
    from partners.models import ApiKey, Click, Partner, Program, TrackingLink
    from partners.services.api_keys import api_key_create
    from partners.services.defaults import defaults_ensure, defaults_update
    from partners.services.programs import program_create

    call_command("migrate", interactive=False, verbosity=0)
    models = (
        Click, Partner, Program, ApiKey, TrackingLink, engine.Event, engine.Contact,
        engine.Referral, engine.Lead, engine.Order, engine.Refund, engine.Commission,
        engine.Notification, engine.Payment, engine.PayoutBatch,
    )  # fmt: skip
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    defaults_ensure()  # the cascade may have taken the defaults row with it
    defaults_update(
        data={"levels": 2, "payout_on_lead": True, "payout_on_sale": True,
              "payout_amount": True, "payout_percent": True, "pay_if_unused": False,
              "skip_notifications": False, "tracking_method": "cookie",
              "use_ip_address": False, "duplicate_click_minutes": 0},
        acting_user=None,
        actor="bench/load.py",
    )  # fmt: skip
    program_create(data={"name": "Load program", "priority": 1}, rates=RATES)
    roots = Partner.objects.bulk_create(
        Partner(code=f"r{n:03d}", name=f"Root {n}", email=f"r{n}@partners.example")
        for n in range(args.roots)
    )
    children = Partner.objects.bulk_create(
        Partner(code=f"c{n:03d}-{m:02d}", name=f"Child {n}.{m}",
                email=f"c{n}.{m}@partners.example", parent=root)
        for n, root in enumerate(roots)
        for m in range(args.fanout)
    )  # fmt: skip
    _, raw_key = api_key_create(name="bench load")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return [p.code for p in [*roots, *children]], raw_key


def broker_reset() -> None:
    import redis

    redis.Redis.from_url(BROKER).delete(BUFFER_KEY, QUEUE)


@dataclass
class Tally:
    """What one kind of request got: latencies from the scheduled start, in seconds."""

    sent: int = 0
    good: int = 0
    bad: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


class LoadClient:
    """An open-loop HTTP/1.1 client on asyncio: each request is sent at its scheduled time
    on a new connection (as a browser or a shop's server would, and as gunicorn's sync
    workers expect: they close every connection), whatever the answers to earlier ones, so
    a slow server shows as latency instead of a lower sending rate (no coordinated
    omission). Latency runs from the scheduled time to the last byte of the answer."""

    def __init__(self, *, port: int, codes: list[str], raw_key: str, prefix: str, seed: int):
        self.port = port
        self.codes = codes
        self.raw_key = raw_key
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.tallies = {kind.name: Tally() for kind in KINDS}

    def request(self, kind: str, n: int) -> bytes:
        rng = self.rng
        headers = [f"Host: 127.0.0.1:{self.port}", f"User-Agent: {BROWSER}", "Connection: close"]
        if kind == "clicks":
            visitor = ".".join(str(rng.randint(1, 223 if i == 0 else 254)) for i in range(4))
            code = rng.choice(self.codes)
            lines = [f"GET /go/{code}/ HTTP/1.1", *headers, f"X-Forwarded-For: {visitor}"]
            return ("\r\n".join(lines) + "\r\n\r\n").encode()
        event_id = f"{self.prefix}-{kind[0]}{n}"
        body: dict = {"event_id": event_id, "contact": {"email": f"{event_id}@load.example"}}
        if kind == "forms":
            path = "/api/v1/events/web-forms/"
            body["lead_partner"] = rng.choice(self.codes)
        else:
            path = "/api/v1/events/orders/"
            body["items"] = [
                {"sku": f"SKU-{i}", "quantity": rng.randint(1, 4),
                 "unit_price": f"{rng.randint(1, 250)}.{rng.randint(0, 99):02d}"}
                for i in range(rng.randint(1, 3))
            ]  # fmt: skip
            body |= {
                "discount": f"{rng.randint(0, 5)}.{rng.randint(0, 99):02d}",
                "shipping": "4.95",
                "tax": "1.10",
                "lead_partner": rng.choice(self.codes),
                "sale_partner": rng.choice(self.codes),
            }
        data = json.dumps(body).encode()
        lines = [
            f"POST {path} HTTP/1.1", *headers, "Content-Type: application/json",
            f"Authorization: Bearer {self.raw_key}", f"Content-Length: {len(data)}",
        ]  # fmt: skip
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    async def send(self, kind: str, raw: bytes, scheduled: float) -> None:
        tally = self.tallies[kind]
        tally.sent += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(raw)
                await writer.drain()
                answer = await reader.read()  # until the server closes
                writer.close()
        except (OSError, TimeoutError):
            tally.errors += 1
            return
        tally.latencies.append(time.perf_counter() - scheduled)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
        if status == (302 if kind == "clicks" else 201):
            tally.good += 1
        else:
            tally.bad += 1

    async def run(self, *, rate: float, seconds: float) -> None:
        """Requests at `rate` per second for `seconds`, each kind its share, in a random
        order; the gaps between them are even (a steady rate, not bursts)."""
        kinds = [kind.name for kind in KINDS]
        weights = [kind.share for kind in KINDS]
        counts: Counter = Counter()
        tasks = set()
        start = time.perf_counter() + 0.1
        for n in range(int(rate * seconds)):
            scheduled = start + n / rate
            kind = self.rng.choices(kinds, weights)[0]
            counts[kind] += 1
            raw = self.request(kind, counts[kind])
            if (wait := scheduled - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(self.send(kind, raw, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


def run_mixed(
    port: int, *, args: argparse.Namespace, codes: list[str], raw_key: str, prefix: str, seed: int
) -> dict[str, Tally]:
    client = LoadClient(port=port, codes=codes, raw_key=raw_key, prefix=prefix, seed=seed)
    asyncio.run(client.run(rate=args.rate, seconds=args.seconds))
    return client.tallies


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def settle(*, seconds: float) -> float:
    """Wait until the click buffer is empty and no email is queued or unsent; the seconds
    it took."""
    import redis

    from commissions.models import Notification, NotificationStatus
    from partners.models import Click

    client = redis.Redis.from_url(BROKER)
    started = time.monotonic()
    last = None
    while time.monotonic() - started < seconds:
        state = (
            client.llen(BUFFER_KEY),
            client.llen(QUEUE),
            Notification.objects.filter(status=NotificationStatus.QUEUED).count(),
            Click.objects.count(),
        )
        if state[:3] == (0, 0, 0) and state == last:
            break
        last = state
        time.sleep(1)
    return time.monotonic() - started


def money(value: Decimal) -> Decimal:
    """This bench's own rounding: half-up to the cent (SPEC §5.2)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def expected_earnings(payloads: list[dict], parents: dict[str, str | None]) -> Counter:
    """Each partner's commissions from the order payloads, by this file's arithmetic."""
    rates = {r["level"]: {k: Decimal(v) for k, v in r.items() if k != "level"} for r in RATES}
    earned: Counter = Counter()
    for payload in payloads:
        items = sum(Decimal(i["quantity"]) * Decimal(i["unit_price"]) for i in payload["items"])
        base = max(items - Decimal(payload.get("discount") or "0"), Decimal("0"))
        for kind, partner in (("lead", payload["lead_partner"]), ("sale", payload["sale_partner"])):
            for level in (1, 2):
                if partner is None:
                    break
                rate = rates[level]
                amount = rate.get(f"{kind}_amount", Decimal("0"))
                amount += base * rate.get(f"{kind}_percent", Decimal("0")) / 100
                if (line := money(amount)) != 0:
                    earned[partner] += line
                partner = parents[partner]
    return earned


def check(tallies: dict[str, Tally]) -> list[tuple[bool, str]]:
    """What must hold after the run, each with its sentence for the report."""
    from commissions.ledger import ledger_totals
    from commissions.models import Event, EventKind, Notification, NotificationStatus, Order
    from partners.models import Click, Partner

    checks = []
    for kind in KINDS:
        t = tallies[kind.name]
        checks.append(
            (
                t.bad == 0 and t.errors == 0,
                f"{kind.name}: {t.sent:,} sent, {t.good:,} answered as expected, "
                f"{t.bad} other answers, {t.errors} connection errors or time-outs",
            )
        )
    clicks = Click.objects.count()
    checks.append(
        (
            clicks == tallies["clicks"].good,
            f"clicks stored {clicks:,} for {tallies['clicks'].good:,} redirects answered",
        )
    )
    for kind, event_kind in (("forms", EventKind.WEB_FORM), ("orders", EventKind.ORDER)):
        stored = Event.objects.filter(kind=event_kind).count()
        answered = tallies[kind].good
        checks.append(
            (stored == answered, f"{kind}: {stored:,} events stored for {answered:,} answered 201")
        )
    payloads = list(Event.objects.filter(kind=EventKind.ORDER).values_list("payload", flat=True))
    orders = Order.objects.count()
    checks.append((orders == len(payloads), f"{orders:,} orders for {len(payloads):,} events"))
    parents = {code: parent for code, parent in Partner.objects.values_list("code", "parent__code")}
    ids = dict(Partner.objects.values_list("id", "code"))
    expected = expected_earnings(payloads, parents)
    totals = ledger_totals(list(ids), start=None, end=None)
    ledger = Counter({ids[pid]: summary.earned for (pid, _), summary in totals.items()})
    differ = sorted(code for code in set(expected) | set(ledger) if expected[code] != ledger[code])
    checks.append(
        (
            not differ,
            f"ledger earned, all partners: {sum(ledger.values()):,} computed independently "
            f"{sum(expected.values()):,}; partners that differ: {len(differ)}"
            + (f" (e.g. {differ[:3]})" if differ else ""),
        )
    )
    statuses = Counter(Notification.objects.values_list("status", flat=True))
    checks.append(
        (
            statuses.get(NotificationStatus.QUEUED, 0) == 0,
            f"notifications: {dict(sorted(statuses.items()))}",
        )
    )
    return checks


def markdown_report(
    tallies: dict[str, Tally],
    checks: list[tuple[bool, str]],
    *,
    args: argparse.Namespace,
    seed: int,
    elapsed: float,
    settled: float,
    web_cpu: float,
    worker_cpu: float,
    load: tuple[float, float],
) -> str:
    command = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_load .venv/bin/python "
    command += f"bench/load.py --seconds {args.seconds} --rate {args.rate}"
    table = [
        "| kind | sent | answered per s | p50 | p99 | errors |",
        "|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        t = tallies[kind.name]
        table.append(
            f"| {kind.label} ({kind.share:.0%}) | {t.sent:,} | {t.good / elapsed:,.1f} "
            f"| {percentile(t.latencies, 0.5) * 1000:.1f} ms "
            f"| {percentile(t.latencies, 0.99) * 1000:.1f} ms | {t.bad + t.errors} |"
        )
    sent = sum(t.sent for t in tallies.values())
    good = sum(t.good for t in tallies.values())
    table.append(f"| all | {sent:,} | {good / elapsed:,.1f} | | | |")
    return "\n".join(
        [
            *report_head(command),
            f"Set-up: gunicorn, {WORKERS} sync workers, CONN_MAX_AGE={CONN_MAX_AGE}, "
            f"`bench.settings`, DEBUG off; the click buffer and Celery on Redis "
            f"(`{BROKER}`); one Celery worker (solo pool, with beat) draining clicks and "
            "sending the partners' emails to files; all on the same 2 cores, with the "
            f"client. {args.roots} top partners with {args.fanout} children each, lead and "
            "sale payouts on 2 levels, every email switch on. An open-loop client sends "
            f"{args.rate} requests per second, evenly spaced, for {args.seconds} s, each "
            "on a new connection at its scheduled time: "
            + ", ".join(f"{k.name} {k.share:.0%}" for k in KINDS)
            + f", in a random order (seed {seed}); latency runs from the scheduled time to "
            f"the answer's last byte. Taken {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
            "",
            *table,
            "",
            f"CPU over the run: the web workers {web_cpu:,.0f} s "
            f"({web_cpu / elapsed:.2f} cores), the Celery worker {worker_cpu:,.0f} s "
            f"(with the drain after the run). The buffer and the email queue were empty "
            f"{settled:.0f} s after the last answer. Load average (1 min) {load[0]:.2f} "
            f"before, {load[1]:.2f} after.",
            "",
            "Checked afterwards:",
            "",
            *(f"- {'ok' if ok else 'FAILED'}: {text}" for ok, text in checks),
        ]
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted; gunicorn and the worker stopped.", file=sys.stderr)
        sys.exit(130)
