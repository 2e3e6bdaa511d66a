"""Benchmark of the ledger pages over a million commission rows (issue 5).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_ledger \\
        .venv/bin/python bench/ledger.py --reuse --write-docs

Builds (unless --reuse finds it already built) a ledger of --commissions commission and
clawback rows over --partners partners, with the orders, order and refund events, refunds
and contacts they need, spread over the 12 months from 2025-11-01 to 2026-10-31; then pays
every month but the last with `commissions.payouts.payout_batch_create` (so the entries are
tied to payments as the product ties them). The rows are written with COPY (psycopg2
`copy_expert`); the defaults, programs, payouts, logins and API key through their services.

Then it starts gunicorn (2 sync workers, bench.settings, CONN_MAX_AGE=60, 127.0.0.1 on a free
port) and times --samples GET requests per view, one at a time (a Python loop,
`time.perf_counter` around each request on a new connection), the views interleaved request
by request:

    baseline  /bench/hello/                     a fixed small page for a logged-in user
    partner   /partner/ledger/                  the Partner Center ledger, all time, page 1,
                                                as the partner whose ledger has ~100 entries
    api       /api/v1/partners/<code>/ledger/   the same partner's ledger for one month, with
                                                an API key
    staff     /staff/reports/ledger/            the staff ledger report for one month, page 1
    staff_cached                                the same page with its grand totals cached
              /bench/staff-ledger-report-cached-totals/   (a change under test)
    dashboard /staff/?start=&end=               the staff dashboard for the month (issue 20),
                                                its figures kept up to DASHBOARD_CACHE_SECONDS
    dashboard_fresh  /staff/?start=&end=&fresh=1   the same, worked out on every view

Sessions are made with django.contrib.sessions (SessionStore plus the auth session keys), as
a login would make them, and sent as the session cookie. It reports the median and p95 of
each view, and the ratios to the baseline. Targets: partner ledger p95 < 100 ms, staff report
< 300 ms, staff dashboard < 100 ms. With --explain (and whenever a target is missed) it
prints the SQL queries of the slow views, slowest first, with EXPLAIN (ANALYZE, BUFFERS) of
the slowest. With --variant
NAME[,NAME] it also measures with candidate changes (see CANDIDATES: an index, a database
setting) made for the measurement and undone afterwards, and reports both. With
--write-docs the figures replace the "Ledger pages" section of docs/performance.md.
Traffic goes to 127.0.0.1 only.
"""

import argparse
import http.client
import io
import itertools
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    bench_django,
    free_port,
    gunicorn,
    load_average,
    query_timer,
    report_end,
    report_head,
    wait_until_ready,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_ledger"
SECTION_HEADING = "## Ledger pages (bench/ledger.py)"
WORKERS = 2
CONN_MAX_AGE = 60
START = date(2025, 11, 1)
MONTHS = 12
MONTH = (date(2026, 10, 1), date(2026, 10, 31))  # the month measured: the last one
TARGET_ENTRIES = 100
# Where a change would change the figures (for the "Code:" line).
MEASURED_CODE = ("partners", "commissions", "referral_program", "templates", "bench")
STAFF_USERNAME = "bench-staff"
TARGETS_MS = {"partner": 100.0, "staff": 300.0, "dashboard": 100.0}
# Orders per COPY chunk.
CHUNK_ORDERS = 20_000


@dataclass(frozen=True)
class Candidate:
    """A change to try (--variant NAME): made for one measurement, undone afterwards."""

    description: str
    setup: tuple[str, ...]
    teardown: tuple[str, ...]


CANDIDATES = {
    "covering": Candidate(
        "the index `commissions_commission (partner_id, occurred_at) INCLUDE (amount, entry, "
        "currency)`",
        (
            "DROP INDEX IF EXISTS bench_commission_partner_cover",
            "CREATE INDEX bench_commission_partner_cover ON commissions_commission "
            "(partner_id, occurred_at) INCLUDE (amount, entry, currency)",
            "VACUUM ANALYZE commissions_commission",
        ),
        ("DROP INDEX IF EXISTS bench_commission_partner_cover",),
    ),
    "jit-off": Candidate(
        "PostgreSQL's JIT compilation off (`jit = off` for the database)",
        ("ALTER DATABASE {database} SET jit = off",),
        ("ALTER DATABASE {database} RESET jit",),
    ),
}

# Program rates in cents and hundredths of a percent: (lead amount, lead %, sale amount,
# sale %) per level.
PROGRAM_RATES = {
    "Standard": {1: (200, 500, 1000, 1000), 2: (100, 200, 500, 500), 3: (50, 100, 250, 200)},
    "Gold": {1: (300, 700, 1500, 1500), 2: (150, 300, 700, 700), 3: (75, 150, 300, 300)},
    "Flat": {1: (500, 0, 2000, 0), 2: (250, 0, 1000, 0), 3: (100, 0, 500, 0)},
}


@dataclass(frozen=True)
class View:
    name: str
    label: str
    marker: str


VIEWS = {
    "baseline": View("baseline", "a fixed small page for a logged-in user, `/bench/hello/`",
                     "Hello,"),
    "partner": View("partner", "Partner Center ledger, all time, page 1, `/partner/ledger/`",
                    'data-figure="ending_balance"'),
    "api": View("api", "API ledger, one month, `/api/v1/partners/<code>/ledger/`",
                '"ending_balance"'),
    "staff": View("staff", "staff ledger report, one month, page 1, `/staff/reports/ledger/`",
                  'id="ledger-report"'),
    "staff_cached": View("staff_cached", "for comparison: the same with its grand totals "
                         "kept in a cache (`bench/event_views.py`)", 'id="ledger-report"'),
    "dashboard": View("dashboard", "staff dashboard, one month against the one before, "
                      "`/staff/?start=&end=` (figures kept up to 60 s)", 'id="figures"'),
    "dashboard_fresh": View("dashboard_fresh", "for comparison: the same, figures worked out "
                            "on every view (`&fresh=1`)", 'id="figures"'),
}  # fmt: skip


@dataclass
class Measurement:
    label: str
    samples: dict[str, list[float]] = field(default_factory=dict)  # seconds
    load: tuple[float, float] = (0.0, 0.0)
    # The staff report's grand totals query and alternatives: (label, median ms).
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    def median_ms(self, view: str) -> float:
        return statistics.median(self.samples[view]) * 1000

    def p95_ms(self, view: str) -> float:
        return statistics.quantiles(self.samples[view], n=20, method="inclusive")[18] * 1000


def main() -> int:
    args = parse_args()
    if not bench_django(DEFAULT_DATABASE_URL):
        return 2
    from django.conf import settings

    database = settings.DATABASES["default"]["NAME"]
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    built = data_matches(args)
    if args.reuse and built:
        print(f"Reusing the ledger in {database}: {built}")
    else:
        if args.reuse:
            print(f"--reuse: {database} does not hold the ledger asked for; building it")
        build_seconds = build(args)
        print(f"Built in {build_seconds:.0f} s")
    figures = data_figures()
    partner = pick_partner()
    print(
        f"Partner {partner.code}: {figures['entries_of'](partner.pk)} entries; "
        f"{figures['commissions']:,} commission rows, {figures['partners']:,} partners"
    )
    paths = view_paths(partner)
    queries = view_queries(paths, partner)
    if (load := load_average()) > 0.5:
        print(f"Warning: load average {load:.2f} before the runs: other work skews the figures")

    measurements = [measure("as built", paths, args=args)]
    measurements[0].alternatives = grand_totals_alternatives(queries)
    missed = missed_targets(measurements[0])
    plans = {}
    if args.explain or missed:
        plans = explain_slowest(
            queries, views=missed or ["partner", "staff", "dashboard"], count=args.plans
        )
    for variant in args.variant:
        candidates = [CANDIDATES[name] for name in variant.split(",")]
        statements = [sql for candidate in candidates for sql in candidate.teardown]
        try:
            run_sql([sql for candidate in candidates for sql in candidate.setup], database)
            label = "with " + " and ".join(candidate.description for candidate in candidates)
            measurements.append(measure(label, paths, args=args))
            measurements[-1].alternatives = grand_totals_alternatives(queries)
            plans.update(
                {
                    f"{key}, {variant}": plan
                    for key, plan in explain_slowest(queries, views=["staff"], count=1).items()
                }
            )
        finally:
            run_sql(statements, database)
    delete_sessions(paths)

    report = markdown_report(
        measurements, args=args, database=database, figures=figures, partner=partner,
        queries=queries, plans=plans,
    )  # fmt: skip
    return report_end(report, [], heading=SECTION_HEADING, write_docs=args.write_docs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commissions", type=int, default=1_000_000, help="rows (1,000,000)")
    parser.add_argument("--partners", type=int, default=10_000, help="partners (10,000)")
    parser.add_argument("--reuse", action="store_true", help="keep the data if it matches")
    parser.add_argument("--samples", type=int, default=200, help="requests per view (200)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up requests per view (10)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest queries")
    parser.add_argument("--plans", type=int, default=2, help="plans per slow view (2)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="also measure with these candidate changes, comma-separated (repeatable): "
        + ", ".join(CANDIDATES),
    )
    parser.add_argument("--seed", type=int, default=20261124, help="seed of the data")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if args.commissions < 1000 or args.partners < 100 or args.samples < 20:
        parser.error("--commissions >= 1000, --partners >= 100, --samples >= 20")
    for variant in args.variant:
        if unknown := set(variant.split(",")) - set(CANDIDATES):
            parser.error(f"unknown --variant {', '.join(sorted(unknown))}")
    return args


# --- The data ------------------------------------------------------------------------------


def data_matches(args: argparse.Namespace) -> str:
    """A description of the data if it is the one asked for, else ''."""
    from commissions.models import Commission, PayoutBatch
    from partners.models import Partner

    partners = Partner.objects.count()
    commissions = Commission.objects.count()
    batches = PayoutBatch.objects.count()
    # A build stops at the first order that reaches the count: up to 12 lines more.
    if partners == args.partners and 0 <= commissions - args.commissions <= 12 and batches:
        return f"{partners:,} partners, {commissions:,} commission rows, {batches} payout batches"
    return ""


def month_starts() -> list[date]:
    starts, day = [], START
    for _ in range(MONTHS + 1):
        starts.append(day)
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts


def build(args: argparse.Namespace) -> float:
    """Empty the engine's tables and build the ledger again. Returns the seconds it took."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from commissions import models as engine
    from partners.models import ApiKey, Click, Partner, Program
    from partners.services.defaults import defaults_ensure

    started = time.perf_counter()
    rng = random.Random(args.seed)
    get_user_model().objects.filter(partner__isnull=False).delete()
    models = (
        Click, Partner, Program, ApiKey, engine.Event, engine.Contact, engine.Referral,
        engine.Lead, engine.Order, engine.Refund, engine.Commission, engine.Notification,
        engine.Payment, engine.PayoutBatch,
    )  # fmt: skip
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    defaults_ensure()  # the cascade takes the defaults row (it names a sign-up partner)
    programs = make_programs()
    partners = make_partners(args.partners, programs, rng)
    print(f"  {len(partners):,} partners in a tree of 3 levels")
    contacts = max(1000, args.commissions // 7)
    copy_rows("commissions_contact", ("id", "email", "first_name", "last_name", "lead_trace",
              "created_at"), (
        f"{n}\tc{n}@buyers.example\tBuyer\t{n}\t{{}}\t{START.isoformat()} 00:00:00+00"
        for n in range(1, contacts + 1)
    ))  # fmt: skip
    print(f"  {contacts:,} contacts")
    written = write_orders(args=args, partners=partners, programs=programs, contacts=contacts,
                           rng=rng)  # fmt: skip
    print(
        f"  {written['orders']:,} orders, {written['refunds']:,} refunds, "
        f"{written['commissions']:,} commission rows ({time.perf_counter() - started:.0f} s)"
    )
    with connection.cursor() as cursor:
        for table in ("commissions_contact", "commissions_event", "commissions_order",
                      "commissions_refund", "commissions_commission"):  # fmt: skip
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("ANALYZE")
    pay_months()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def make_programs() -> dict[int, dict]:
    """The defaults (3 levels, lead and sale, amount and percent) and three programs."""
    from decimal import Decimal

    from partners.services.defaults import defaults_update
    from partners.services.programs import program_create

    defaults_update(
        data={"levels": 3, "payout_on_lead": True, "payout_on_sale": True,
              "payout_amount": True, "payout_percent": True, "pay_if_unused": False},
        acting_user=None,
        actor="bench/ledger.py",
    )  # fmt: skip
    programs = {}
    for priority, (name, rates) in enumerate(PROGRAM_RATES.items(), start=1):
        program = program_create(
            data={"name": name, "priority": priority},
            rates=[
                {"level": level,
                 "lead_amount": Decimal(la) / 100, "lead_percent": Decimal(lp) / 100,
                 "sale_amount": Decimal(sa) / 100, "sale_percent": Decimal(sp) / 100}
                for level, (la, lp, sa, sp) in rates.items()
            ],
        )  # fmt: skip
        programs[program.pk] = {"name": name, "rates": rates}
    return programs


@dataclass(frozen=True)
class BenchPartner:
    id: int
    code: str
    chain: tuple[int, ...]  # itself, its parent, its grandparent
    program_id: int  # its own, or the default (lowest priority)


def make_partners(count: int, programs: dict[int, dict], rng: random.Random) -> list[BenchPartner]:
    """A tree: 1 % at the top, 9 % below them, 90 % at level 3; most on the default program."""
    from partners.models import Partner

    program_ids = sorted(programs)
    # Codes are not in tree order (as codes made from names are not): any page of a report
    # sorted by code holds partners of every level.
    numbers = rng.sample(range(1, count + 1), count)
    sizes = [max(1, count // 100), max(1, count * 9 // 100)]
    sizes.append(count - sum(sizes))
    made: list[BenchPartner] = []
    above: list[BenchPartner | None] = [None]
    number = 0
    for size in sizes:
        rows, parents = [], []
        for _ in range(size):
            parent = rng.choice(above)
            program = rng.choices([None, *program_ids[1:]], weights=[80, 12, 8])[0]
            code_number = numbers[number]
            number += 1
            rows.append(
                Partner(code=f"bp{code_number:05d}", name=f"Bench Partner {code_number}",
                        email=f"bp{code_number}@partners.example",
                        parent_id=parent.id if parent else None, program_id=program)
            )  # fmt: skip
            parents.append(parent)
        level = []
        for partner, parent in zip(Partner.objects.bulk_create(rows, batch_size=2000), parents,
                                   strict=True):  # fmt: skip
            chain = (partner.pk, *(parent.chain[:2] if parent else ()))
            level.append(BenchPartner(partner.pk, partner.code, chain,
                                      partner.program_id or program_ids[0]))  # fmt: skip
        made += level
        above = level
    return made


def copy_rows(table: str, columns: tuple[str, ...], rows) -> int:
    """COPY text rows (tab-separated, \\N for NULL) into `table`; returns how many."""
    from django.db import connection

    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write(row)
        buffer.write("\n")
        count += 1
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
    return count


def cents(value: int) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100}.{value % 100:02d}"


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))


def ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S+00")


EVENT_COLUMNS = ("id", "kind", "event_id", "payload", "received_at", "occurred_at", "result")
ORDER_COLUMNS = (
    "id", "event_id", "order_id", "contact_id", "currency", "items", "discount", "shipping",
    "tax", "base", "total", "refunded", "ip", "lead_partner_id", "sale_partner_id",
    "lead_trace", "sale_trace", "occurred_at",
)  # fmt: skip
REFUND_COLUMNS = ("id", "event_id", "order_id", "amount", "occurred_at")
COMMISSION_COLUMNS = (
    "id", "partner_id", "order_id", "refund_id", "clawback_of_id", "level", "kind", "entry",
    "base", "amount", "currency", "program_id", "trace", "occurred_at", "payment_id",
    "payable_at",  # payable when credited (hold days 0): the occurred_at before it
)  # fmt: skip
NULL = "\\N"
POLICY = (
    '"policy": {"partner_selection": "last", "tracking_method": "cookie", "use_ip_address": false}'
)


def write_orders(
    *,
    args: argparse.Namespace,
    partners: list[BenchPartner],
    programs: dict[int, dict],
    contacts: int,
    rng: random.Random,
) -> dict[str, int]:
    """Orders (and their events, refunds and commission lines) until --commissions rows.

    Each partner sells with a weight drawn from a log-normal distribution, so a few sell a
    lot and most a little; 60 % of orders also name a lead partner. Each order pays 3 levels
    of the sale partner's chain, and of the lead partner's; 5 % are refunded 1 to 20 days
    later (a third of those by half), with the clawbacks of §5.4.
    """
    weights = [rng.lognormvariate(0, 1.2) for _ in partners]
    cumulative = []
    total = 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    start = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(month_starts()[-1], datetime.min.time(), tzinfo=UTC)
    counts = {"orders": 0, "refunds": 0, "commissions": 0}
    event_id = order_id = refund_id = commission_id = 0
    while counts["commissions"] < args.commissions:
        events, orders, refunds, lines = [], [], [], []
        for _ in range(CHUNK_ORDERS):
            if counts["commissions"] >= args.commissions:
                break
            order_id += 1
            event_id += 1
            at = moment(rng, start, end)
            sale = rng.choices(partners, cum_weights=cumulative)[0]
            lead = rng.choices(partners, cum_weights=cumulative)[0] if rng.random() < 0.6 else None
            items = [
                (rng.randint(1, 3), rng.randint(1000, 30000)) for _ in range(rng.randint(1, 3))
            ]
            base = sum(quantity * price for quantity, price in items)
            shipping = rng.choice((0, 499, 999))
            total_cents = base + shipping
            name = f"o{order_id:07d}"
            items_json = ", ".join(
                f'{{"sku": "SKU-{price % 97}", "quantity": {quantity}, '
                f'"unit_price": "{cents(price)}"}}'
                for quantity, price in items
            )
            contact = rng.randint(1, contacts)
            payload = (
                f'{{"event_id": "{name}", "contact": {{"email": "c{contact}@buyers.example"}}, '
                f'"items": [{items_json}], "sale_partner": "{sale.code}"}}'
            )
            events.append(
                f"{event_id}\torder\t{name}\t{payload}\t{ts(at)}\t{ts(at)}\t"
                f'{{"event_id": "{name}", "order_id": "{name}"}}'
            )
            explicit = '{"source": "explicit", "rule": null, "ref": null, "ref_at": null}'
            cookie = (
                f'{{"source": "cookie", "rule": "last", "ref": "{secrets.token_hex(16)}", '
                f'"ref_at": "{(at - timedelta(days=rng.randint(0, 20))).isoformat()}"}}'
            )
            sale_trace = cookie if order_id % 2 else explicit
            refunded = 0
            refund = None
            if rng.random() < 0.05:
                refund_at = at + timedelta(days=rng.randint(1, 20), seconds=rng.randrange(86400))
                if refund_at < end:
                    refunded = total_cents if rng.random() < 2 / 3 else total_cents // 2
                    refund = (refund_at, refunded)
            orders.append(
                f"{order_id}\t{event_id}\t{name}\t{contact}\tUSD\t[{items_json}]\t0.00\t"
                f"{cents(shipping)}\t0.00\t{cents(base)}\t{cents(total_cents)}\t"
                f"{cents(refunded)}\t\\N\t{lead.id if lead else NULL}\t{sale.id}\t"
                f"{explicit if lead else '{}'}\t{sale_trace}\t{ts(at)}"
            )
            order_lines = []
            for kind, credited, trace in (("lead", lead, explicit), ("sale", sale, sale_trace)):
                if credited is None:
                    continue
                program = programs[credited.program_id]
                for level, partner_id in enumerate(credited.chain, start=1):
                    lead_amount, lead_percent, sale_amount, sale_percent = program["rates"][level]
                    amount, percent = (
                        (lead_amount, lead_percent)
                        if kind == "lead"
                        else (sale_amount, sale_percent)
                    )
                    value = amount + half_up(base * percent, 10000)
                    commission_id += 1
                    order_lines.append(
                        (commission_id, partner_id, level, kind, value, credited.program_id)
                    )
                    lines.append(
                        f"{commission_id}\t{partner_id}\t{order_id}\t\\N\t\\N\t{level}\t{kind}\t"
                        f"commission\t{cents(base)}\t{cents(value)}\tUSD\t{credited.program_id}\t"
                        f'{{"attribution": {trace}, "credited_partner_id": {credited.id}, '
                        f'"program": {{"id": {credited.program_id}, "name": "{program["name"]}", '
                        f'"levels": 3}}, "rates": {{"rate": "level {level}", '
                        f'"amount": "{cents(amount)}", "percent": "{percent / 100:.4f}"}}, '
                        f'"base": "{cents(base)}", {POLICY}}}\t{ts(at)}\t\\N'
                    )
            if refund is not None:
                refund_at, amount = refund
                refund_id += 1
                event_id += 1
                refund_name = f"r{refund_id:07d}"
                events.append(
                    f"{event_id}\trefund\t{refund_name}\t"
                    f'{{"event_id": "{refund_name}", "order_id": "{name}", '
                    f'"amount": "{cents(amount)}"}}\t{ts(refund_at)}\t{ts(refund_at)}\t'
                    f'{{"event_id": "{refund_name}", "order_id": "{name}"}}'
                )
                refunds.append(f"{refund_id}\t{event_id}\t{order_id}\t{cents(amount)}\t"
                               f"{ts(refund_at)}")  # fmt: skip
                completes = amount == total_cents
                for line_id, partner_id, level, kind, value, program_id in order_lines:
                    share = value if completes else half_up(value * amount, total_cents)
                    if not share:
                        continue  # as refund_record: a zero clawback is not recorded
                    commission_id += 1
                    lines.append(
                        f"{commission_id}\t{partner_id}\t{order_id}\t{refund_id}\t{line_id}\t"
                        f"{level}\t{kind}\tclawback\t{cents(base)}\t{cents(-share)}\tUSD\t"
                        f"{program_id}\t"
                        f'{{"refund": "{refund_name}", "refunded": "{cents(amount)}", '
                        f'"order_total": "{cents(total_cents)}", "clawback_of": {line_id}, '
                        f'"completes_refund": {"true" if completes else "false"}}}\t'
                        f"{ts(refund_at)}\t\\N"
                    )
                counts["refunds"] += 1
            counts["orders"] += 1
            counts["commissions"] = commission_id
        copy_rows("commissions_event", EVENT_COLUMNS, events)
        copy_rows("commissions_order", ORDER_COLUMNS, orders)
        copy_rows("commissions_refund", REFUND_COLUMNS, refunds)
        lines = [f"{line}\t{line.split(chr(9))[-2]}" for line in lines]
        copy_rows("commissions_commission", COMMISSION_COLUMNS, lines)
        print(f"    {counts['commissions']:,} commission rows", end="\r", flush=True)
    print()
    return counts


def pay_months() -> None:
    """A payout batch per month but the last, on the 3rd of the next month, as staff run it."""
    from commissions.payouts import payout_batch_create

    starts = month_starts()
    for first, following in itertools.pairwise(starts[:-1]):
        began = time.perf_counter()
        batch = payout_batch_create(
            start=first, end=following - timedelta(days=1), method="earned_in_range",
            created_by="bench/ledger.py",
            at=datetime.combine(following.replace(day=3), datetime.min.time(), tzinfo=UTC)
            + timedelta(hours=9),
        )  # fmt: skip
        print(
            f"  payout batch {first:%Y-%m}: {batch.payments.count():,} payments, total "
            f"{batch.total} ({time.perf_counter() - began:.1f} s)"
        )


def data_figures() -> dict:
    from django.db.models import Count

    from commissions.models import Commission, Order, Payment, PayoutBatch
    from partners.models import Partner

    entries = dict(
        Commission.objects.values("partner_id")
        .annotate(n=Count("id"))
        .values_list("partner_id", "n")
    )
    payments = dict(
        Payment.objects.values("partner_id").annotate(n=Count("id")).values_list("partner_id", "n")
    )
    counts = sorted(entries.get(pk, 0) + payments.get(pk, 0)
                    for pk in Partner.objects.values_list("pk", flat=True))  # fmt: skip
    return {
        "partners": len(counts),
        "commissions": Commission.objects.count(),
        "clawbacks": Commission.objects.filter(entry="clawback").count(),
        "paid": Commission.objects.filter(payment__isnull=False).count(),
        "orders": Order.objects.count(),
        "payments": Payment.objects.count(),
        "batches": PayoutBatch.objects.count(),
        "entries_median": statistics.median(counts),
        "entries_max": counts[-1],
        "entries_of": lambda pk: entries.get(pk, 0) + payments.get(pk, 0),
    }


def pick_partner():
    """The partner whose ledger (all time) has the number of entries closest to 100."""
    from django.db.models import Count

    from commissions.models import Commission, Payment
    from partners.models import Partner

    entries = dict(
        Commission.objects.values("partner_id")
        .annotate(n=Count("id"))
        .values_list("partner_id", "n")
    )
    payments = dict(
        Payment.objects.values("partner_id").annotate(n=Count("id")).values_list("partner_id", "n")
    )
    best = min(
        entries, key=lambda pk: (abs(entries[pk] + payments.get(pk, 0) - TARGET_ENTRIES), pk)
    )
    return Partner.objects.get(pk=best)


# --- Logins ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    code: str
    partner_cookie: str
    staff_cookie: str
    api_key: str
    urls: dict[str, str]
    headers: dict[str, dict[str, str]]


def session_for(user, backend: str) -> str:
    """A session as `django.contrib.auth.login` makes it; returns its key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def view_paths(partner) -> Paths:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from partners.services.api_keys import api_key_create
    from partners.services.partners import partner_login_set_password

    user = partner.user or partner_login_set_password(
        partner=partner, password=secrets.token_urlsafe(16)
    )
    users = get_user_model().objects
    staff = users.filter(username=STAFF_USERNAME).first() or users.create_user(
        username=STAFF_USERNAME, email="staff@bench.example", password=None, is_staff=True
    )
    partner_cookie = session_for(user, "partners.auth.PartnerCodeOrEmailBackend")
    staff_cookie = session_for(staff, "django.contrib.auth.backends.ModelBackend")
    _, key = api_key_create(name="bench ledger")
    start, end = MONTH
    month = f"start={start.isoformat()}&end={end.isoformat()}"
    cookie = settings.SESSION_COOKIE_NAME
    return Paths(
        code=partner.code,
        partner_cookie=partner_cookie,
        staff_cookie=staff_cookie,
        api_key=key,
        urls={
            "baseline": "/bench/hello/",
            "partner": "/partner/ledger/",
            "api": f"/api/v1/partners/{partner.code}/ledger/?{month}",
            "staff": f"/staff/reports/ledger/?{month}",
            "staff_cached": f"/bench/staff-ledger-report-cached-totals/?{month}",
            "dashboard": f"/staff/?{month}",
            "dashboard_fresh": f"/staff/?{month}&fresh=1",
        },
        headers={
            "baseline": {"Cookie": f"{cookie}={partner_cookie}"},
            "partner": {"Cookie": f"{cookie}={partner_cookie}"},
            "api": {"Authorization": f"Bearer {key}"},
            "staff": {"Cookie": f"{cookie}={staff_cookie}"},
            "staff_cached": {"Cookie": f"{cookie}={staff_cookie}"},
            "dashboard": {"Cookie": f"{cookie}={staff_cookie}"},
            "dashboard_fresh": {"Cookie": f"{cookie}={staff_cookie}"},
        },
    )


def delete_sessions(paths: Paths) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key__in=[paths.partner_cookie, paths.staff_cookie]).delete()


# --- Timing ----------------------------------------------------------------------------------


def get(port: int, path: str, headers: dict[str, str]) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, response.status, body


def measure(label: str, paths: Paths, *, args: argparse.Namespace) -> Measurement:
    """Against a fresh gunicorn: a warm-up, then --samples requests per view, one at a time,
    the views taking turns request by request."""
    result = Measurement(label, {name: [] for name in VIEWS})
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="rp-bench-ledger-") as tmp:
        port = free_port()
        with gunicorn(port=port, conn_max_age=CONN_MAX_AGE, log=Path(tmp)):
            wait_until_ready(port)
            for name, view in VIEWS.items():
                _, status, body = get(port, paths.urls[name], paths.headers[name])
                if status != 200 or view.marker.encode() not in body:
                    raise RuntimeError(
                        f"{paths.urls[name]} answered {status}, without {view.marker!r}:\n"
                        f"{body[:2000].decode(errors='replace')}"
                    )
            print(f"{label}: gunicorn on 127.0.0.1:{port}, CONN_MAX_AGE={CONN_MAX_AGE}")
            for number in range(args.warmup + args.samples):
                for name in VIEWS:
                    elapsed, status, _ = get(port, paths.urls[name], paths.headers[name])
                    if status != 200:
                        raise RuntimeError(f"{paths.urls[name]} answered {status}")
                    if number >= args.warmup:
                        result.samples[name].append(elapsed)
    result.load = (load_before, load_average())
    for name in VIEWS:
        print(
            f"  {name:8} median {result.median_ms(name):7.1f} ms  p95 {result.p95_ms(name):7.1f} ms"
        )
    return result


GRAND_TOTALS_SEMI_JOIN = re.compile(
    r' WHERE "commissions_commission"\."partner_id" IN \(SELECT "U0"\."id" AS "pk" '
    r'FROM "partners_partner" "U0"\)'
)
MONTHLY_SUMS = (
    "CREATE TEMPORARY TABLE bench_monthly_sums AS SELECT partner_id, currency, entry, "
    "date_trunc('month', occurred_at) AS month, sum(amount) AS amount "
    "FROM commissions_commission GROUP BY 1, 2, 3, 4"
)
MONTHLY_TOTALS = (
    "SELECT currency, COALESCE(SUM(amount) FILTER (WHERE month < %(start)s), 0), "
    "COALESCE(SUM(amount) FILTER (WHERE month >= %(start)s AND month < %(after)s "
    "AND entry = 'commission'), 0), "
    "COALESCE(SUM(amount) FILTER (WHERE month >= %(start)s AND month < %(after)s "
    "AND entry = 'clawback'), 0) FROM bench_monthly_sums GROUP BY 1"
)


def grand_totals_alternatives(
    queries: dict[str, list[tuple[float, str]]], runs: int = 5
) -> list[tuple[str, float]]:
    """The staff report's grand totals query as it runs, without the partner semi-join
    (what an unfiltered report needs), and over monthly sums (a summary table, here a
    temporary one): the median execution time of `runs` runs of each, checked to give the
    same figures."""
    from django.db import connection

    sql = next((sql for _, sql in queries["staff"] if GRAND_TOTALS_SEMI_JOIN.search(sql)), None)
    if sql is None:  # the unfiltered report no longer joins the partners
        return []
    start, end = MONTH
    params = {
        "start": datetime.combine(start, datetime.min.time(), tzinfo=UTC),
        "after": datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
    }
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_monthly_sums")
        cursor.execute(MONTHLY_SUMS)
        cursor.execute("ANALYZE bench_monthly_sums")
        monthly = cursor.mogrify(MONTHLY_TOTALS, params).decode()
        candidates = [
            ("the grand totals query as the report runs it", sql),
            ("the same without the partner semi-join", GRAND_TOTALS_SEMI_JOIN.sub("", sql)),
            ("the same figures from monthly sums per partner (a summary table)", monthly),
        ]
        figures = set()
        result = []
        for label, statement in candidates:
            cursor.execute(statement)
            figures.add(tuple(tuple(row) for row in cursor.fetchall()))
            times = []
            for _ in range(runs):
                cursor.execute(f"EXPLAIN (ANALYZE) {statement}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
                times.append(float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1)))
            result.append((label, statistics.median(times)))
            print(f"  {label}: {result[-1][1]:.1f} ms")
        cursor.execute("DROP TABLE bench_monthly_sums")
    if len(figures) != 1:
        raise RuntimeError(f"the grand totals queries disagree: {figures}")
    return result


def run_sql(statements: list[str], database: str) -> None:
    """Run the statements in autocommit (VACUUM needs it), then reconnect, so the session
    settings a statement changed for the database apply to this process too."""
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql.format(database=database))
    connection.close()


def missed_targets(measurement: Measurement) -> list[str]:
    return [view for view, target in TARGETS_MS.items() if measurement.p95_ms(view) >= target]


# --- Queries and plans ---------------------------------------------------------------------------


def view_queries(paths: Paths, partner) -> dict[str, list[tuple[float, str]]]:
    """The SQL of one request of each view, in this process (Django's test client), with
    each query's time; the request is made twice and the second one kept (warm caches)."""
    from django.conf import settings
    from django.test import Client

    result = {}
    for name in VIEWS:
        client = Client()
        cookie = paths.headers[name].get("Cookie")
        if cookie:
            client.cookies[settings.SESSION_COOKIE_NAME] = cookie.split("=", 1)[1]
        extra = {}
        if name == "api":
            extra["HTTP_AUTHORIZATION"] = paths.headers[name]["Authorization"]
        for _ in range(2):
            with query_timer() as timed:
                response = client.get(paths.urls[name], **extra)
        if response.status_code != 200:
            raise RuntimeError(f"{paths.urls[name]} answered {response.status_code} in process")
        result[name] = [(seconds, sql) for sql, seconds in timed]
    return result


def explain_slowest(
    queries: dict[str, list[tuple[float, str]]], *, views: list[str], count: int
) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the slowest `count` SELECTs of each view, printed."""
    from django.db import connection

    plans = {}
    for view in views:
        selects = [
            (t, sql) for t, sql in queries[view] if sql.lstrip().upper().startswith("SELECT")
        ]
        for rank, (_, sql) in enumerate(sorted(selects, reverse=True)[:count], start=1):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
            key = f"{view} #{rank}"
            plans[key] = f"{sql}\n\n{plan}"
            print(f"\n--- {key}: {sql}\n{plan}")
    return plans


# --- Report ---------------------------------------------------------------------------------------


def markdown_report(
    measurements: list[Measurement],
    *,
    args: argparse.Namespace,
    database: str,
    figures: dict,
    partner,
    queries: dict[str, list[tuple[float, str]]],
    plans: dict[str, str],
) -> str:
    command = (
        f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/{database} .venv/bin/python "
        "bench/ledger.py --reuse"
    )
    if args.samples != 200:
        command += f" --samples {args.samples}"
    for variant in args.variant:
        command += f" --variant {variant}"
    if args.explain:
        command += " --explain"
    start, end = MONTH
    lines = [
        *report_head(command, MEASURED_CODE),
        f"Data (database `{database}`, built once and kept; `--reuse` skips the build): "
        f"{figures['partners']:,} partners in a tree of 3 levels; {figures['orders']:,} orders "
        f"from {START:%Y-%m-%d} to {month_starts()[-1] - timedelta(days=1):%Y-%m-%d}, "
        "each paying 3 levels of its sale partner's chain and, for 60 %, of its lead "
        "partner's (how much each partner sells: a log-normal weight); 5 % refunded; "
        f"{figures['commissions']:,} commission rows, {figures['clawbacks']:,} of them "
        f"clawbacks; {figures['batches']} monthly payout batches "
        "(`payout_batch_create`, earned in range) with "
        f"{figures['payments']:,} payments, tying {figures['paid']:,} rows; the last month "
        f"unpaid. Entries per partner: median {figures['entries_median']:,.0f}, most "
        f"{figures['entries_max']:,}. Written with COPY, then VACUUM ANALYZE.",
        "",
        f"Set-up: gunicorn, {WORKERS} sync workers, `bench.settings`, DEBUG off, "
        f"CONN_MAX_AGE={CONN_MAX_AGE}. The partner `{partner.code}` has "
        f"{figures['entries_of'](partner.pk)} ledger entries (all time); its session and a "
        "staff user's are made with `SessionStore` and the auth session keys and sent as the "
        "session cookie; the API request carries an API key. Timing: a Python loop, one "
        "request at a time on a new connection, `time.perf_counter()` from connecting to the "
        f"last byte; after {args.warmup} warm-up requests each, {args.samples} requests per "
        "view, the views taking turns request by request. The month is "
        f"{start:%Y-%m-%d} to {end:%Y-%m-%d}. Taken {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
    ]
    for measurement in measurements:
        lines += ["", *measurement_table(measurement, queries)]
    lines += ["", *reading(measurements)]
    lines += ["", *slowest_queries(queries)]
    staff_plans = {key: plan for key, plan in plans.items() if key.startswith("staff #1")}
    if staff_plans:
        lines += [
            "",
            "Plans of the staff report's slowest query, its grand totals (EXPLAIN (ANALYZE, "
            "BUFFERS), in process; the other plans are printed by `--explain`):",
        ]
        for key, plan in staff_plans.items():
            lines += ["", f"{key}:", "", "```", plan, "```"]
    return "\n".join(lines)


def reading(measurements: list[Measurement]) -> list[str]:
    """What the figures say about the staff report, in a few sentences."""
    built = measurements[0]
    text = (
        f"Reading: as built, the staff report's median is {built.median_ms('staff'):.0f} ms, "
        f"and the same page with its grand totals cached {built.median_ms('staff_cached'):.0f} "
        "ms: the page's own partners cost little, the grand totals (one UNION ALL statement "
        "over the shorter side of the range, `commissions.filters.ledger_grand_totals`, "
        "computed on every view: nothing is cached) cost the rest."
    )
    if built.alternatives:
        (_, report_ms), (_, no_join_ms), (_, monthly_ms) = built.alternatives[:3]
        text += (
            f" That query alone runs {report_ms:.0f} ms; without the partner semi-join "
            f"{no_join_ms:.0f} ms; from monthly sums per partner {monthly_ms:.0f} ms."
        )
    for measurement in measurements[1:]:
        text += (
            f" {measurement.label[0].upper()}{measurement.label[1:]}: staff report median "
            f"{measurement.median_ms('staff'):.0f} ms, p95 {measurement.p95_ms('staff'):.0f} ms."
        )
    dashboard = (
        f"The staff dashboard (issue 20) for the month against the month before: median "
        f"{built.median_ms('dashboard'):.0f} ms, p95 {built.p95_ms('dashboard'):.0f} ms "
        f"({built.p95_ms('dashboard') / built.p95_ms('baseline'):.1f} times the baseline's "
        "p95), its figures kept for DASHBOARD_CACHE_SECONDS (60) per period, so nearly every "
        "view reads them from the cache; worked out on every view (`&fresh=1`, what one view "
        f"a minute pays): median {built.median_ms('dashboard_fresh'):.0f} ms, p95 "
        f"{built.p95_ms('dashboard_fresh'):.0f} ms. Those read the month and the month before "
        "(orders from their covering index, ledger entries per day), every unpaid entry (here "
        "the last month) for what is owed, and the month's entries again for the top partners."
    )
    return [text, "", dashboard]


def alternatives_table(measurement: Measurement) -> list[str]:
    if not measurement.alternatives:
        return []
    first = measurement.alternatives[0][1]
    rows = [
        "",
        "The grand totals alone (EXPLAIN ANALYZE execution time, median of 5, in process; "
        "the three give the same figures):",
        "",
        "| query | time | vs the report's |",
        "|---|---|---|",
    ]
    for label, ms in measurement.alternatives:
        rows.append(f"| {label} | {ms:.0f} ms | {ms / first:.2f} |")
    return rows


def measurement_table(measurement: Measurement, queries: dict) -> list[str]:
    base_median = measurement.median_ms("baseline")
    base_p95 = measurement.p95_ms("baseline")
    rows = [
        f"### {measurement.label}",
        "",
        "| view | SQL queries | median | p95 | median / baseline | p95 / baseline | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, view in VIEWS.items():
        target = TARGETS_MS.get("staff" if name == "staff_cached" else name)
        verdict = ""
        if target:
            met = measurement.p95_ms(name) < target
            verdict = f"p95 < {target:.0f} ms: {'met' if met else '**missed**'}"
        rows.append(
            f"| {view.label} | {len(queries[name])} | {measurement.median_ms(name):.1f} ms "
            f"| {measurement.p95_ms(name):.1f} ms "
            f"| {measurement.median_ms(name) / base_median:.1f} "
            f"| {measurement.p95_ms(name) / base_p95:.1f} | {verdict} |"
        )
    rows += [
        "",
        f"Load average (1 min) {measurement.load[0]:.2f} before, {measurement.load[1]:.2f} after.",
        *alternatives_table(measurement),
    ]
    return rows


def slowest_queries(queries: dict[str, list[tuple[float, str]]]) -> list[str]:
    rows = [
        "The slowest queries of one request of each view (in process, Django's test client):",
        "",
        "| view | query time, all queries | slowest query | its time |",
        "|---|---|---|---|",
    ]
    for name in VIEWS:
        timed = queries[name]
        slowest = max(timed)
        text = " ".join(slowest[1].split())
        text = text if len(text) <= 120 else text[:117] + "..."
        rows.append(
            f"| {name} | {sum(t for t, _ in timed) * 1000:.1f} ms | `{text}` "
            f"| {slowest[0] * 1000:.1f} ms |"
        )
    return rows


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted; gunicorn stopped.", file=sys.stderr)
        sys.exit(130)
