"""Benchmark of order events through the API against a one-insert baseline (issue 4).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_events \\
        .venv/bin/python bench/events.py --write-docs

Migrates the database and empties it of partners, programs, clicks, API keys and everything
the commissions engine wrote (so its name must contain "bench"), then sets the defaults to 3
levels, lead and sale payouts, amount and percent; makes a program with rates on every level,
a partner tree of 3 levels (--roots x --fanout x --fanout), a click of a level-3 partner for
each of --tokens tracking tokens (`partners.tokens.encode_token`), and an API key
(`partners.services.api_keys.api_key_create`). It starts gunicorn (2 sync workers, bench.settings,
CONN_MAX_AGE=60, 127.0.0.1 on a free port) and runs wrk against two views of that server,
interleaved round by round:

    baseline  POST /bench/events/orders/  the same authentication and a DRF serializer for a
                                          payload of the same shape, then ONE insert
    orders    POST /api/v1/events/orders/ the events API (attribution, 6 commission lines)

Each request is a new order with a unique event_id (a counter and a random number) and a new
contact; it names a level-3 lead_partner, and its sale partner is named as `sale_partner` in
every other request and comes from a `tracking_token` (a click of a level-3 partner) in the
others, so every order pays 3 lead and 3 sale lines. Afterwards it checks that the orders of
each run match its 201 answers (plus the requests still in flight when wrk stopped) and that
every order has exactly 3 lead and 3 sale commission lines.

It then measures in-process, with Django's test client (no gunicorn): the SQL statements of
one request of each view, and over --breakdown requests of each the wall time, the CPU time
and the time spent in SQL statements; with --profile N, cProfile of N orders. With
--write-docs the figures replace the "Order events" section of docs/performance.md (with
--notify eager or broker, a section of their own). Traffic goes to 127.0.0.1 only; needs
wrk. Every order also checks 6 notifications (skipped, sent or queued, by --notify).
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    bench_django,
    free_port,
    gunicorn,
    load_average,
    postgres_cpu_seconds,
    postgres_cpu_spent,
    query_timer,
    report_end,
    report_head,
    seeded,
    wait_until_ready,
    workers_cpu_seconds,
    wrk_run,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_events"
SECTION_HEADINGS = {
    "off": "## Order events (bench/events.py)",
    "eager": "## Order events, emails sent in the request (bench/events.py --notify eager)",
    "broker": "## Order events, email tasks through Redis (bench/events.py --notify broker)",
}
WORKERS = 2
THREADS = 2
CONN_MAX_AGE = 60
WARMUP_SECONDS = 2
LEVELS = 3
D = Decimal
# Every level pays a lead and a sale commission, amount + percent, none of them zero.
RATES = [
    {"level": 1, "lead_amount": D("2.00"), "lead_percent": D("5"),
     "sale_amount": D("10.00"), "sale_percent": D("10")},
    {"level": 2, "lead_amount": D("1.00"), "lead_percent": D("2"),
     "sale_amount": D("5.00"), "sale_percent": D("5")},
    {"level": 3, "lead_amount": D("0.50"), "lead_percent": D("1"),
     "sale_amount": D("2.50"), "sale_percent": D("2")},
]  # fmt: skip
LINES_PER_ORDER = {"lead": LEVELS, "sale": LEVELS}
NOTIFY_MODES = ("off", "eager", "broker")
BROKER_URL = "redis://127.0.0.1:6379/15"
BROKER_QUEUE = "rp-bench-events"


@dataclass(frozen=True)
class View:
    name: str
    path: str
    label: str


VIEWS = {
    "baseline": View(
        "baseline",
        "/bench/events/orders/",
        "baseline: DRF serializer + one INSERT, `/bench/events/orders/`",
    ),
    "orders": View("orders", "/api/v1/events/orders/", "order events, `/api/v1/events/orders/`"),
}


@dataclass(frozen=True)
class Run:
    view: str
    round: int
    prefix: str
    requests: int
    seconds: float
    created: int  # 201 answers
    other: int  # any other answer
    socket_errors: int
    p50_ms: float
    p99_ms: float
    rows: int  # orders (or baseline events) written with the run's prefix
    worker_cpu_seconds: float
    postgres_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.worker_cpu_seconds / max(self.requests, 1) * 1e6

    @property
    def postgres_us(self) -> float:
        return self.postgres_cpu_seconds / max(self.requests, 1) * 1e6


LUA = """\
-- Written by bench/events.py: POST a new order event per request.
local leaves = {%(leaves)s}
local tokens = {%(tokens)s}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("thread_number", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

-- args: the path, the run's event_id prefix, a seed.
function init(args)
  path = args[1]
  prefix = args[2]
  math.randomseed(tonumber(args[3]) + 7919 * thread_number)
  sent = 0
  created = 0
  other = 0
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"

function request()
  sent = sent + 1
  local id = string.format("%%s-%%d-%%d-%%d", prefix, thread_number, sent,
    math.random(0, 2147483646))
  local sale
  if sent %% 2 == 0 then
    sale = '"sale_partner": "' .. leaves[math.random(#leaves)] .. '"'
  else
    sale = '"tracking_token": "' .. tokens[math.random(#tokens)] .. '"'
  end
  local body = string.format(
    '{"event_id": "%%s", "contact": {"email": "%%s@buyers.example", "first_name": "Ada"}, '
    .. '"currency": "USD", "items": [{"sku": "SKU-%%d", "quantity": %%d, '
    .. '"unit_price": "%%d.%%02d"}, {"sku": "GIFT-WRAP", "quantity": 1, "unit_price": "4.99"}], '
    .. '"lead_partner": "%%s", %%s}',
    id, id, math.random(1, 500), math.random(1, 3), math.random(10, 199),
    math.random(0, 99), leaves[math.random(#leaves)], sale)
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local created_all, other_all = 0, 0
  for _, thread in ipairs(threads) do
    created_all = created_all + thread:get("created")
    other_all = other_all + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "created": %%d, "other": %%d, '
    .. '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, created_all, other_all,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class BenchData:
    leaves: list[str]
    tokens: list[str]
    raw_key: str
    partners: int


def main() -> int:
    args = parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)", file=sys.stderr)
        return 2
    if args.notify == "broker":  # read by the settings, here and in gunicorn
        os.environ["CELERY_BROKER_URL"] = BROKER_URL
        os.environ["CELERY_QUEUE"] = BROKER_QUEUE
    if not bench_django(DEFAULT_DATABASE_URL):
        return 2
    from django.conf import settings
    from django.db import connection

    database = settings.DATABASES["default"]["NAME"]
    seed, rng = seeded(args.seed)
    print(f"Preparing {database}: migrate, reset, partner tree, program, tokens (seed {seed})")
    if args.notify == "broker":
        broker_queue_delete()
    data = prepare_data(args=args, rng=rng)
    if (load := load_average()) > 0.5:
        print(f"Warning: load average {load:.2f} before the runs: other work skews the figures")

    load_before = load_average()
    views = list(VIEWS.values())
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="rp-bench-events-") as tmp:
        lua = Path(tmp) / "orders.lua"
        lua.write_text(lua_script(data))
        port = free_port()
        # The servers get no broker unless told (bench_env): --notify broker gives it.
        broker = (
            {"CELERY_BROKER_URL": BROKER_URL, "CELERY_QUEUE": BROKER_QUEUE}
            if args.notify == "broker"
            else None
        )
        with gunicorn(
            port=port, conn_max_age=CONN_MAX_AGE, log=Path(tmp), env=broker
        ) as arbiter_pid:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(port)
            print(f"gunicorn on {base_url}, CONN_MAX_AGE={CONN_MAX_AGE}; warm-up")
            for round_number in range(args.rounds + 1):  # round 0: the warm-up
                for view in views:
                    run = run_view(
                        wrk, lua, base_url, view, arbiter_pid,
                        seconds=args.seconds if round_number else WARMUP_SECONDS,
                        round_number=round_number, seed=seed, connections=args.connections,
                    )  # fmt: skip
                    if round_number:
                        runs.append(run)
                    elif view is views[-1]:
                        statistics_refresh()
                    print(
                        f"  round {round_number} {view.name:8} {run.rps:7.0f} req/s  "
                        f"p50 {run.p50_ms:.1f} ms  p99 {run.p99_ms:.1f} ms  "
                        f"{run.cpu_us:,.0f} us worker CPU/request  "
                        f"{run.postgres_us:,.0f} us PostgreSQL CPU/request  {run.created} x 201, "
                        f"{run.other} other, {run.rows} rows"
                    )
        connection.close()
    load_after = load_average()

    problems = verify(runs, connections=args.connections)
    checks = commission_checks([run for run in runs if run.view == "orders"], notify=args.notify)
    problems += checks.pop("problems")
    breakdown = in_process_breakdown(data, requests=args.breakdown, rng=rng)
    profile = profile_orders(data, count=args.profile, rng=rng) if args.profile else []
    report = markdown_report(
        runs, views, args=args, database=database, data=data, checks=checks,
        breakdown=breakdown, profile=profile, load=(load_before, load_after),
    )  # fmt: skip
    if args.notify == "broker":
        broker_queue_delete()
    heading = SECTION_HEADINGS[args.notify]
    return report_end(report, problems, heading=heading, write_docs=args.write_docs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="length of each run (15)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per view, interleaved (3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--roots", type=int, default=10, help="partners at the top (10)")
    parser.add_argument("--fanout", type=int, default=10, help="children per partner (10)")
    parser.add_argument("--tokens", type=int, default=200, help="tracking tokens (200)")
    parser.add_argument(
        "--notify",
        choices=NOTIFY_MODES,
        default="off",
        help="off: the partners' email switches are off, each notification is logged as "
        "skipped (default); eager: they are on and no broker is set, so the emails are sent "
        "in-process after the commit; broker: they are on and each order's emails are one "
        f"Celery task published to Redis ({BROKER_URL}, queue {BROKER_QUEUE}, emptied afterwards)",
    )
    parser.add_argument(
        "--breakdown", type=int, default=200, help="in-process requests per view (200)"
    )
    parser.add_argument("--profile", type=int, default=0, help="cProfile N in-process orders")
    parser.add_argument("--seed", type=int, help="seed of the data and of wrk")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if min(args.seconds, args.rounds, args.connections, args.roots, args.fanout, args.tokens) < 1:
        parser.error("--seconds, --rounds, --connections, --roots, --fanout, --tokens >= 1")
    return args


# --- Data ----------------------------------------------------------------------------------


def prepare_data(*, args: argparse.Namespace, rng: random.Random) -> BenchData:
    """Fresh bench data through the services where there is one (defaults, program, API key);
    partners and clicks in bulk, as bench/redirect.py makes them."""
    from django.core.management import call_command
    from django.db import connection

    from commissions import models as engine
    from partners.models import ApiKey, Click, Partner, Program
    from partners.services.api_keys import api_key_create
    from partners.services.defaults import defaults_ensure, defaults_update
    from partners.services.programs import program_create
    from partners.tokens import TokenClick, encode_token, new_click_id

    call_command("migrate", interactive=False, verbosity=0)
    models = (
        Click, Partner, Program, ApiKey, engine.Event, engine.Contact, engine.Referral,
        engine.Lead, engine.Order, engine.Refund, engine.Commission, engine.Notification,
        engine.Payment, engine.PayoutBatch,
    )  # fmt: skip
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    defaults_ensure()  # the cascade takes the defaults row (it names a sign-up partner)
    defaults_update(
        data={"levels": LEVELS, "payout_on_lead": True, "payout_on_sale": True,
              "payout_amount": True, "payout_percent": True, "pay_if_unused": False,
              "skip_notifications": False, "tracking_method": "cookie",
              "use_ip_address": False},
        acting_user=None,
        actor="bench/events.py",
    )  # fmt: skip
    program_create(data={"name": "Bench program", "priority": 1}, rates=RATES)

    wanted = args.notify != "off"
    notify = {"notify_lead": wanted, "notify_sale": wanted}
    level: list[Partner] = [None]  # the level above the roots: nobody
    count = 0
    for depth, per_parent in enumerate((args.roots, args.fanout, args.fanout), start=1):
        rows = [
            Partner(code=f"p{depth}-{count + n:05d}", name=f"Bench partner {count + n}",
                    email=f"p{count + n}@partners.example", parent=parent, **notify)
            for n, parent in enumerate(
                parent for parent in level for _ in range(per_parent)
            )
        ]  # fmt: skip
        count += len(rows)
        level = Partner.objects.bulk_create(rows)
    leaves = [partner.code for partner in level]
    leaf_ids = [partner.pk for partner in level]

    clicked_at = datetime.now(UTC) - timedelta(hours=1)
    clicks = [
        Click(id=new_click_id(clicked_at), partner_id=rng.choice(leaf_ids), ip="192.0.2.1",
              user_agent="bench", at=clicked_at)
        for _ in range(args.tokens)
    ]  # fmt: skip
    Click.objects.bulk_create(clicks)
    tokens = [
        encode_token([TokenClick(click_id=c.id, partner_id=c.partner_id, at=c.at)]) for c in clicks
    ]
    _, raw_key = api_key_create(name="bench events")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return BenchData(leaves=leaves, tokens=tokens, raw_key=raw_key, partners=count)


def statistics_refresh() -> None:
    """ANALYZE after the warm-up. The tables were emptied, and PostgreSQL keeps the plans it
    made while they were: among them each connection's foreign-key checks, which find the
    order, event and contact rows an order refers to. Made on an empty table they scan it
    whole, and keep doing so as it grows, until autovacuum's ANALYZE of it makes them plan
    again: the intake's cost then climbs round after round and drops back (a database in
    use has its statistics already). ANALYZE makes every connection plan them again."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def lua_script(data: BenchData) -> str:
    def quoted(values: list[str]) -> str:
        return ", ".join(f'"{value}"' for value in values)

    return LUA % {"leaves": quoted(data.leaves), "tokens": quoted(data.tokens), "key": data.raw_key}


# --- Runs ------------------------------------------------------------------------------------


def rows_written(view: View, prefix: str) -> int:
    from bench.event_views import BENCH_KIND
    from commissions.models import Event, Order

    if view.name == "baseline":
        return Event.objects.filter(kind=BENCH_KIND, event_id__startswith=prefix).count()
    return Order.objects.filter(order_id__startswith=prefix).count()


def settled_rows(view: View, prefix: str) -> int:
    """The rows once requests still in flight when wrk stopped have finished (<= 10 s)."""
    count = rows_written(view, prefix)
    for _ in range(33):
        time.sleep(0.3)
        again = rows_written(view, prefix)
        if again == count:
            break
        count = again
    return count


def run_view(
    wrk: str,
    lua: Path,
    base_url: str,
    view: View,
    arbiter_pid: int,
    *,
    seconds: int,
    round_number: int,
    seed: int,
    connections: int,
) -> Run:
    prefix = f"b{seed}r{round_number}{view.name[0]}"
    cpu_before, postgres_before = workers_cpu_seconds(arbiter_pid), postgres_cpu_seconds()
    figures = wrk_run(
        wrk, lua, base_url + view.path, seconds=seconds, threads=THREADS,
        connections=connections,
        script_args=[view.path, prefix, str(random.Random(prefix).randrange(1 << 30))],
    )  # fmt: skip
    cpu = workers_cpu_seconds(arbiter_pid) - cpu_before
    postgres = postgres_cpu_spent(postgres_before, postgres_cpu_seconds())
    return Run(
        view=view.name,
        round=round_number,
        prefix=prefix,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        created=figures["created"],
        other=figures["other"],
        socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        rows=settled_rows(view, prefix),
        worker_cpu_seconds=cpu,
        postgres_cpu_seconds=postgres,
    )


def verify(runs: list[Run], *, connections: int) -> list[str]:
    """Every answer a 201, and one row per 201 (plus at most one request per connection that
    was in flight when wrk stopped: the server finished it, wrk did not count it)."""
    problems = []
    for run in runs:
        name = f"round {run.round} {run.view}"
        if run.other or run.socket_errors or run.created != run.requests:
            problems.append(
                f"{name}: {run.requests} answers, {run.created} x 201, {run.other} other, "
                f"{run.socket_errors} socket errors"
            )
        if not 0 <= run.rows - run.created <= connections:
            problems.append(f"{name}: {run.created} x 201 but {run.rows} rows")
    return problems


def commission_checks(runs: list[Run], *, notify: str) -> dict:
    """Every order of the runs has 3 lead and 3 sale lines and 6 notifications in the state
    the --notify mode gives them; how the sale partners were found."""
    from django.db.models import Count, Q

    from commissions.models import Commission, Notification, Order

    problems = []
    orders = Order.objects.none()
    for run in runs:
        orders = orders | Order.objects.filter(order_id__startswith=run.prefix)
    counted = orders.annotate(
        lead=Count("commissions", filter=Q(commissions__kind="lead")),
        sale=Count("commissions", filter=Q(commissions__kind="sale")),
    )
    wrong = counted.exclude(lead=LINES_PER_ORDER["lead"], sale=LINES_PER_ORDER["sale"])
    total_orders = orders.count()
    if bad := wrong.count():
        problems.append(f"{bad} of {total_orders} orders lack their 3 lead + 3 sale lines")
    lines = Commission.objects.filter(order__in=orders).count()
    if lines != total_orders * sum(LINES_PER_ORDER.values()):
        problems.append(f"{total_orders} orders but {lines} commission lines")
    sources = Counter(orders.values_list("sale_trace__source", flat=True))
    expected = {"off": "skipped", "eager": "sent", "broker": "queued"}[notify]
    notifications = Counter(
        Notification.objects.filter(event__order__in=orders).values_list("status", flat=True)
    )
    if notifications != {expected: total_orders * sum(LINES_PER_ORDER.values())}:
        problems.append(
            f"{total_orders} orders but notifications {dict(notifications)}, not 6 {expected} each"
        )
    published = None
    if notify == "broker":
        published = broker_queue_length()  # one task per order for its emails
        queued = Notification.objects.filter(status="queued")
        events = queued.values("event").distinct().count()
        if published != events:
            problems.append(f"{events} orders with emails but {published} tasks in Redis")
        emails = queued.count()
    return {
        "problems": problems,
        "orders": total_orders,
        "lines": lines,
        "sources": dict(sources),
        "notifications": dict(notifications),
        "published": published,
        "emails": emails if notify == "broker" else None,
    }


def broker_queue_length() -> int:
    import redis

    return redis.Redis.from_url(BROKER_URL).llen(BROKER_QUEUE)


def broker_queue_delete() -> None:
    import redis

    redis.Redis.from_url(BROKER_URL).delete(BROKER_QUEUE)


# --- In process --------------------------------------------------------------------------------


def order_body(data: BenchData, rng: random.Random, event_id: str, *, token: bool) -> dict:
    body = {
        "event_id": event_id,
        "contact": {"email": f"{event_id}@buyers.example", "first_name": "Ada"},
        "currency": "USD",
        "items": [
            {"sku": f"SKU-{rng.randint(1, 500)}", "quantity": rng.randint(1, 3),
             "unit_price": f"{rng.randint(10, 199)}.{rng.randint(0, 99):02d}"},
            {"sku": "GIFT-WRAP", "quantity": 1, "unit_price": "4.99"},
        ],
        "lead_partner": rng.choice(data.leaves),
    }  # fmt: skip
    if token:
        body["tracking_token"] = rng.choice(data.tokens)
    else:
        body["sale_partner"] = rng.choice(data.leaves)
    return body


def api_client(data: BenchData):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data.raw_key}")
    return client


def in_process_breakdown(data: BenchData, *, requests: int, rng: random.Random) -> dict:
    """Per view, in this process (Django's test client, no gunicorn): over `requests`
    requests the median wall time, CPU time of this process, and time spent in SQL statements
    (driver call to return: PostgreSQL's work, the round trip and the driver), and the
    statements of one order with a tracking token."""
    client = api_client(data)
    result = {}
    tag = random.Random().randrange(1 << 30)
    for view in VIEWS.values():
        samples = []
        for n in range(requests + 1):
            body = order_body(data, rng, f"ip{tag}{view.name[0]}-{n}", token=bool(n % 2))
            with query_timer() as timed:
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.post(view.path, body, format="json")
                wall = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
            if response.status_code != 201:
                raise RuntimeError(f"{view.path} answered {response.status_code}: {response.data}")
            samples.append((wall, cpu, sum(seconds for _, seconds in timed), len(timed)))
            if n == 1:  # a token order (n odd): the longer path
                result.setdefault("queries", {})[view.name] = timed
        samples = samples[1:]  # the first request warms caches up
        result[view.name] = {
            "wall_ms": statistics.median(s[0] for s in samples) * 1000,
            "cpu_ms": statistics.median(s[1] for s in samples) * 1000,
            "database_ms": statistics.median(s[2] for s in samples) * 1000,
            "queries_max": max(s[3] for s in samples),
            "queries_min": min(s[3] for s in samples),
        }
    for view, timed in result["queries"].items():
        print(f"\nStatements of one {view} request ({len(timed)}):")
        for statement, seconds in timed:
            print(f"  {seconds * 1000:6.2f} ms  {statement[:150]}")
    return result


# Where the time of an order goes: (label, file suffix, function name, tottime instead of
# cumtime). Cumulative times include what the function calls, so the rows overlap.
PROFILED = (
    ("the whole view (DRF dispatch)", "rest_framework/views.py", "dispatch", False),
    ("API key authentication", "partners/api_auth.py", "authenticate", False),
    ("serializer `is_valid` (with the partner code lookups)", "rest_framework/serializers.py",
     "is_valid", False),
    ("`order_record` (the transaction)", "commissions/services/events.py", "event_record",
     False),
    ("of which `_commission_rows` (lead and sale)", "commissions/intake/plan.py",
     "_commission_rows", False),
    ("of which `engine_with_chains` (defaults, chains, programs, rates: one query)",
     "commissions/selectors.py", "engine_with_chains", False),
    ("of which `_event_insert`", "commissions/services/events.py", "_event_insert", False),
    ("of which `contact_write`", "commissions/services/contacts.py", "contact_write", False),
    ("of which `notification_rows`", "commissions/services/notifications.py",
     "notification_rows", False),
    ("of which `track` (token, history)", "commissions/intake/track.py", "track", False),
    ("SQL compilation (the compilers' `as_sql`, all statements)",
     "django/db/models/sql/compiler.py", "as_sql", False),
    ("psycopg2 `execute` (the driver, all statements)", "~", "<method 'execute' of "
     "'psycopg2.extensions.cursor' objects>", True),
    ("model instances (`Model.__init__`)", "django/db/models/base.py", "__init__", False),
)  # fmt: skip


def profile_orders(data: BenchData, *, count: int, rng: random.Random) -> list[tuple[str, float]]:
    """cProfile (wall clock) of `count` orders: the share of the view's time spent in each
    of the PROFILED functions (the profiler's own cost inflates the times, so only shares
    are reported). Prints the top of the profile."""
    client = api_client(data)
    tag = random.Random().randrange(1 << 30)
    bodies = [order_body(data, rng, f"pr{tag}-{n}", token=bool(n % 2)) for n in range(count + 1)]
    client.post(VIEWS["orders"].path, bodies[0], format="json")
    profiler = cProfile.Profile()
    profiler.enable()
    for body in bodies[1:]:
        client.post(VIEWS["orders"].path, body, format="json")
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(30)
        print(f"\ncProfile of {count} orders, by {order}:\n{out.getvalue()}")
    stats = pstats.Stats(profiler).stats
    rows = []
    for label, suffix, name, own in PROFILED:
        total = sum(
            tottime if own else cumtime
            for (filename, _, function), (_, _, tottime, cumtime, _) in stats.items()
            if function == name and filename.endswith(suffix)
        )
        rows.append((label, total))
    whole = rows[0][1]
    return [(label, total / whole) for label, total in rows]


# --- Report ---------------------------------------------------------------------------------


def median_of(runs: list[Run], view: str, attribute: str) -> float:
    return statistics.median(getattr(run, attribute) for run in runs if run.view == view)


def markdown_report(
    runs: list[Run],
    views: list[View],
    *,
    args: argparse.Namespace,
    database: str,
    data: BenchData,
    checks: dict,
    breakdown: dict,
    profile: list[tuple[str, float]],
    load: tuple[float, float],
) -> str:
    command = (
        f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/{database} .venv/bin/python "
        f"bench/events.py --seconds {args.seconds}"
    )
    if args.rounds != 3:
        command += f" --rounds {args.rounds}"
    if args.connections != 16:
        command += f" --connections {args.connections}"
    if args.notify != "off":
        command += f" --notify {args.notify}"
    if args.profile:
        command += f" --profile {args.profile}"
    rps = {view.name: median_of(runs, view.name, "rps") for view in views}
    cpu = {view.name: median_of(runs, view.name, "cpu_us") for view in views}
    postgres = {view.name: median_of(runs, view.name, "postgres_us") for view in views}
    per_round = [
        orders.rps / baseline.rps
        for orders, baseline in zip(
            (r for r in runs if r.view == "orders"),
            (r for r in runs if r.view == "baseline"),
            strict=True,
        )
    ]
    ratio = rps["orders"] / rps["baseline"]
    table = [
        "| view | req/s | p50 | p99 | worker CPU per request | PostgreSQL CPU per request "
        "| vs baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for view in views:
        table.append(
            f"| {view.label} | {rps[view.name]:,.0f} "
            f"({', '.join(f'{r.rps:,.0f}' for r in runs if r.view == view.name)}) "
            f"| {median_of(runs, view.name, 'p50_ms'):.1f} ms "
            f"| {median_of(runs, view.name, 'p99_ms'):.1f} ms "
            f"| {cpu[view.name]:,.0f} µs | {postgres[view.name]:,.0f} µs "
            f"| {rps[view.name] / rps['baseline']:.2f} |"
        )
    order_runs = [r for r in runs if r.view == "orders"]
    created = sum(r.created for r in order_runs)
    verdict = "meets" if round(ratio, 2) >= 0.5 else "is below"
    notifications = {
        "off": "the partners' email switches are off, so each order logs its 6 notifications "
        "as skipped (the same rows, no email, no task)",
        "eager": "the partners want emails and no broker is set, so each order's 6 emails are "
        "sent in-process right after the commit, inside the request (console mailer, to "
        "gunicorn's log)",
        "broker": "the partners want emails and each order publishes one task for its 6 "
        f"emails to Redis (`CELERY_BROKER_URL={BROKER_URL}`, a queue of its own, which nobody "
        "consumes during the run and which is deleted afterwards)",
    }[args.notify]
    sources = ", ".join(f"{n:,} {source}" for source, n in sorted(checks["sources"].items()))
    notified = ", ".join(f"{n:,} {status}" for status, n in checks["notifications"].items())
    if checks["published"] is not None:
        notified += (
            f"; with the warm-up's orders, {checks['emails']:,} notifications were queued "
            f"and {checks['published']:,} tasks waited in Redis, one per order"
        )
    lines = [
        *report_head(command),
        f"Set-up: gunicorn, {WORKERS} sync workers, `bench.settings`, DEBUG off, no access log, "
        f"CONN_MAX_AGE={CONN_MAX_AGE}; database `{database}`. Defaults: 3 levels, lead and "
        "sale payouts, amount and percent; one program (the default) with a lead and a sale "
        f"rate on every level; a partner tree of 3 levels ({args.roots} x {args.fanout} x "
        f"{args.fanout} = {data.partners:,} partners). Each request is a new order with a "
        "unique event_id (a counter and a random number), a new contact, two items, and a "
        "level-3 `lead_partner`; every other request names a level-3 `sale_partner`, the "
        f"others carry a `tracking_token` (one of {args.tokens} made with "
        "`partners.tokens.encode_token` for a click of a level-3 partner), so each order pays "
        f"3 lead and 3 sale lines; {notifications}. Authenticated by an API key "
        "(`partners.services.api_keys.api_key_create`). The baseline "
        "(`bench/event_views.py`) has the same authentication and body, validates it with a "
        "DRF serializer (contact email, "
        "items with decimal prices, currency) and inserts one `Event` row. wrk "
        f"`-t{THREADS} -c{args.connections} -d{args.seconds}s --latency` on 127.0.0.1 with a "
        "Lua script making each body; after a "
        f"{WARMUP_SECONDS} s warm-up of each, {args.rounds} rounds of baseline, orders, "
        "interleaved; medians of the rounds (each round's req/s in brackets). Taken "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        *table,
        "",
        f"**Orders / baseline: {ratio:.2f}** (per round "
        f"{', '.join(f'{r:.2f}' for r in per_round)}); it {verdict} the issue's target of 0.5. "
        f"By the workers' CPU time per request the order intake costs "
        f"{cpu['orders'] / cpu['baseline']:.2f} times the baseline, and by PostgreSQL's "
        "(every PostgreSQL process on the machine: the backends, the WAL writer) "
        f"{postgres['orders'] / postgres['baseline']:.2f} times. Load average (1 min) "
        f"{load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        f"Checked: every answer was a 201; the order runs answered {created:,} and wrote "
        f"{checks['orders']:,} orders (the {checks['orders'] - created} more were in flight "
        "when wrk stopped, and the server finished them), with "
        f"{checks['lines']:,} commission lines: 3 lead and 3 sale lines on every order, and "
        f"6 notifications each ({notified}). Sale partners by source: {sources}.",
    ]
    lines += ["", *breakdown_report(breakdown, profile, args=args)]
    return "\n".join(lines)


def breakdown_report(
    breakdown: dict, profile: list[tuple[str, float]], *, args: argparse.Namespace
) -> list[str]:
    rows = [
        "| view, in process | wall time | CPU time | in SQL statements | statements |",
        "|---|---|---|---|---|",
    ]
    for name, view in VIEWS.items():
        figures = breakdown[name]
        spread = (
            f"{figures['queries_min']}"
            if figures["queries_min"] == figures["queries_max"]
            else f"{figures['queries_min']} to {figures['queries_max']}"
        )
        rows.append(
            f"| {view.name} | {figures['wall_ms']:.2f} ms | {figures['cpu_ms']:.2f} ms "
            f"| {figures['database_ms']:.2f} ms | {spread} |"
        )
    lines = [
        f"Where the time goes, measured in one process with Django's test client over "
        f"{args.breakdown} requests of each view (medians; the same database, no gunicorn, "
        "no HTTP; CPU time is this process's; the time in SQL statements runs from the "
        "driver call to its return, so it holds PostgreSQL's work and the round trip; "
        "the commit is not a statement and is not in it):",
        "",
        *rows,
        "",
        "The statements of one order with a tracking token, in order, with their times:",
        "",
        "```",
        *(f"{seconds * 1000:5.2f} ms  {_short_sql(sql)}"
          for sql, seconds in breakdown["queries"]["orders"]),
        "```",
    ]  # fmt: skip
    if profile:
        lines += [
            "",
            f"Share of an order's time by function (cProfile, wall clock, {args.profile} "
            "orders in process; cumulative, so the rows overlap; the profiler's own cost "
            "inflates calls-heavy code, so read these as proportions):",
            "",
            "| function | share of the view's time |",
            "|---|---|",
            *(f"| {label} | {share:.0%} |" for label, share in profile),
        ]
    return lines


def _short_sql(sql: str) -> str:
    """A query on one line, cut after its table and first condition."""
    text = " ".join(sql.split())
    return text if len(text) <= 150 else text[:147] + "..."


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted; gunicorn stopped.", file=sys.stderr)
        sys.exit(130)
