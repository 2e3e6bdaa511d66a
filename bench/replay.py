"""Benchmark of the what-if replay against a read of the same events (issue 19, SPEC §13).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_replay \\
        .venv/bin/python bench/replay.py --reuse --write-docs

The data is bench/import.py's (unless --reuse finds it already stored): the database is
migrated and emptied (its name must contain "bench"), the data of bench/events.py made (the
defaults at 3 levels, lead and sale payouts, amount and percent; a program with rates on
every level; 10 x 10 x 10 partners; a click of a level-3 partner for each of 200 tracking
tokens), and --orders orders (100,000) written to a JSON Lines file by bench/import.py's
generator and stored by `manage.py import_events`, each a new contact with two items, a
level-3 `lead_partner` and a `sale_partner` or (every other one) a `tracking_token`, so each
pays 3 lead and 3 sale lines. The set-up is not timed.

Then, --rounds times, in turn, each in a fresh process (multiprocessing spawn, so its peak
RSS is the measured part's and Django's, not the set-up's), over the stored events' range:

    baseline  a server-side cursor (psycopg2 named cursor, --chunk rows a fetch) over the
              events of the range in id order, each payload selected as text and decoded
              by json.loads: reading the events and nothing else
    replay    `commissions.replay.simulation_run` with the settings unchanged; its answer
              must equal what is recorded (total_now == total_proposed == the sum of the
              stored commission lines, no order changing partner, no partner's change)
    other     `simulation_run` with defaults={"partner_selection": <the other one>}

It reports the median of each (wall time, the process's CPU time, its PostgreSQL backend's
CPU time, peak RSS) and the bars of issue 19: replay <= 4 x the baseline, under 30 s, peak
RSS under 500 MB. The bars are reported as met or not (the exit code is 1 only when a check
of the answers fails). --profile N: cProfile of one more unchanged replay in a fresh
process, its top N functions by own and by cumulative time. With --write-docs the figures
replace the "What-if replay" section of docs/performance.md.
"""

import argparse
import cProfile
import importlib
import io
import json
import os
import pstats
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    bench_django,
    load_average,
    process_cpu_seconds,
    report_end,
    report_head,
    seeded,
    setup_django,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_replay"
HEADING = "## What-if replay (issue 19)"
# The bars of issue 19.
TARGET_RATIO = 4
TARGET_SECONDS = 30
TARGET_RSS_MB = 500
# bench/import.py's partner tree and tokens (its defaults).
ROOTS, FANOUT, TOKENS = 10, 10, 200
LINES_PER_ORDER = 6  # 3 lead + 3 sale
OTHER_SELECTION = {"last": "first", "first": "last"}


def main() -> int:
    args = parse_args()
    if not bench_django(DEFAULT_DATABASE_URL):
        return 2
    from django.conf import settings
    from django.core.management import call_command

    database = settings.DATABASES["default"]["NAME"]
    call_command("migrate", interactive=False, verbosity=0)
    problems: list[str] = []
    stored = stored_seed(args.orders)
    if args.reuse and stored is not None and args.seed in (None, stored):
        seed, setup = stored, None
        print(f"Reusing the {args.orders:,} orders in {database} (seed {seed})")
    else:
        if args.reuse:
            print(f"--reuse: {database} does not hold the orders asked for; storing them")
        seed, _ = seeded(args.seed)
        setup = data_store(orders=args.orders, seed=seed, database=database)
        problems += setup.pop("problems")
    data = data_figures()
    print(
        f"{data['events']:,} events from {data['start']:%H:%M:%S} to {data['end']:%H:%M:%S} "
        f"UTC, {data['commissions']:,} commission lines totalling {data['total']}"
    )
    current = data["partner_selection"]
    other = OTHER_SELECTION[current]
    parts: dict[str, tuple[Callable, dict]] = {
        "baseline": (baseline_part, {"chunk": args.chunk}),
        "replay": (replay_part, {"defaults": None}),
        "other": (replay_part, {"defaults": {"partner_selection": other}}),
    }
    runs: dict[str, list[dict]] = {name: [] for name in parts}
    if (load := load_average()) > 0.5:
        print(f"Warning: load average {load:.2f} before the runs: other work skews the figures")
    load_before = load_average()
    for round_number in range(1, args.rounds + 1):
        for name, (part, options) in parts.items():
            run = in_child(part, start=data["start"], end=data["end"], **options)
            runs[name].append(run)
            print(
                f"round {round_number} {name:8}: {run['seconds']:6.2f} s, CPU "
                f"{run['cpu_seconds']:.2f} s, PostgreSQL backend {run['backend_cpu_seconds']:.2f} "
                f"s, peak RSS {run['rss_mb']:.0f} MB ({run['rss_before_mb']:.0f} MB before)"
            )
    load_after = load_average()
    problems += answer_checks(runs, data=data, other=other)
    profile = (
        in_child(profile_part, start=data["start"], end=data["end"], top=args.profile)
        if args.profile
        else None
    )
    if profile:
        print(profile["text"])
    stages = in_child(stages_part, start=data["start"], end=data["end"]) if args.stages else None
    if stages:
        print("\n".join(f"{label}: {seconds:.2f} s" for label, seconds in stages["stages"]))
    report = markdown_report(
        args=args, database=database, seed=seed, setup=setup, data=data, runs=runs,
        other=other, load=(load_before, load_after), profile=profile, stages=stages,
    )  # fmt: skip
    return report_end(report, problems, heading=HEADING, write_docs=args.write_docs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders stored (100,000)")
    parser.add_argument("--seed", type=int, help="seed of the data")
    parser.add_argument("--reuse", action="store_true", help="keep the stored orders if they match")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three parts (3)")
    parser.add_argument("--chunk", type=int, default=2000, help="baseline rows a fetch (2,000)")
    parser.add_argument("--profile", type=int, default=0, help="cProfile: top N functions")
    parser.add_argument("--stages", action="store_true", help="CPU time of each stage")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if min(args.orders, args.rounds, args.chunk) < 1:
        parser.error("--orders, --rounds, --chunk >= 1")
    return args


# --- The data: bench/import.py's, stored once ---------------------------------------------------


def stored_seed(orders: int) -> int | None:
    """The seed of the orders stored, if the database holds exactly `orders` order events of
    this set-up (event ids `b<seed>-<n>`), nothing else, each with its order and its 3 lead and
    3 sale lines; else None."""
    from commissions.models import Commission, Event, Order

    first = Event.objects.order_by("id").values_list("event_id", flat=True).first()
    found = re.fullmatch(r"b(\d+)-\d+", first or "")
    if not found:
        return None
    counts = (
        Event.objects.count(),
        Event.objects.filter(kind="order", event_id__startswith=f"b{found[1]}-").count(),
        Order.objects.count(),
        Commission.objects.count(),
    )
    return int(found[1]) if counts == (orders, orders, orders, orders * LINES_PER_ORDER) else None


def data_store(*, orders: int, seed: int, database: str) -> dict:
    """Empty the database, make bench/events.py's data and store `orders` orders with
    bench/import.py's generator and `manage.py import_events`; checks what it wrote."""
    from bench.events import prepare_data

    importer = importlib.import_module("bench.import")  # `import` is a keyword
    rng = seeded(seed)[1]
    print(f"Preparing {database}: migrate, reset, partner tree, program, tokens (seed {seed})")
    data = prepare_data(
        args=SimpleNamespace(roots=ROOTS, fanout=FANOUT, tokens=TOKENS, notify="off"), rng=rng
    )
    with tempfile.TemporaryDirectory(prefix="rp-bench-replay-") as tmp:
        path = Path(tmp) / "orders.jsonl"
        importer.write_file(path, data, rng, orders=orders, prefix=f"b{seed}-")
        print(f"Importing {orders:,} orders ({path.stat().st_size / 1e6:.1f} MB)")
        run = importer.import_run(path, batch_size=None)
    print(f"Stored in {run['seconds']:.1f} s")
    problems = importer.expect(run, f"{orders} lines: {orders} recorded, 0 already")
    problems += importer.check_rows(orders)["problems"]
    importer.analyze()
    return {"seconds": run["seconds"], "problems": problems}


def data_figures() -> dict:
    """The range of the stored events (to the last one's time plus a second, so that an end
    taken as inclusive or exclusive holds the same events), what is recorded, the defaults."""
    from django.db.models import Max, Min, Sum

    from commissions.models import Commission, Event
    from partners.selectors import defaults_get

    events = Event.objects.aggregate(start=Min("occurred_at"), end=Max("occurred_at"))
    lines = Commission.objects.aggregate(total=Sum("amount"))
    return {
        "start": events["start"],
        "end": events["end"] + timedelta(seconds=1),
        "events": Event.objects.count(),
        "commissions": Commission.objects.count(),
        "total": lines["total"],
        "partner_selection": defaults_get().partner_selection,
    }


# --- The measured parts, each in a fresh process ------------------------------------------------


def in_child(part: Callable, **kwargs) -> dict:
    """`part(**kwargs)` in a fresh process (spawned: nothing of this one's memory), its
    answer (exceptions are raised here)."""
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(part, **kwargs).result()


class _Measure:
    """Wall time, the process's CPU time, its PostgreSQL backend's CPU time and peak RSS of
    what runs between its start and `end`."""

    def __init__(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend = cursor.fetchone()[0]
        self.rss_before_mb = _peak_rss_mb()
        self.backend_cpu = process_cpu_seconds(self.backend)
        self.cpu = time.process_time()
        self.started = time.perf_counter()

    def end(self, **figures) -> dict:
        seconds = time.perf_counter() - self.started
        cpu = time.process_time() - self.cpu
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "backend_cpu_seconds": process_cpu_seconds(self.backend) - self.backend_cpu,
            "rss_mb": _peak_rss_mb(),
            "rss_before_mb": self.rss_before_mb,
            **figures,
        }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _child_setup() -> None:
    setup_django(DEFAULT_DATABASE_URL)
    from django.db import connection

    connection.ensure_connection()


def baseline_part(*, start: datetime, end: datetime, chunk: int) -> dict:
    """Read the events of the range in id order by a server-side cursor, decoding each
    payload's JSON: the least a replay must do."""
    _child_setup()
    from django.db import connection, transaction

    from commissions.models import Event

    measure = _Measure()
    count = 0
    # A named cursor needs a transaction (outside one, WITH HOLD would make PostgreSQL
    # materialise the whole result first).
    with transaction.atomic(), connection.connection.cursor(name="replay_bench") as cursor:
        cursor.itersize = chunk
        cursor.execute(
            f"SELECT id, kind, event_id, occurred_at, payload::text FROM {Event._meta.db_table} "
            "WHERE occurred_at >= %s AND occurred_at < %s ORDER BY id",
            [start, end],
        )
        for row in cursor:
            json.loads(row[4])
            count += 1
    return measure.end(events=count)


def replay_part(*, start: datetime, end: datetime, defaults: dict | None) -> dict:
    """`simulation_run` over the range; its answer's figures (the partners' changes summed)."""
    _child_setup()
    from commissions.replay import simulation_run

    measure = _Measure()
    answer = simulation_run(
        start=start, end=end, defaults=defaults, programs=[], detail=False, progress=None
    )
    return measure.end(answer=answer_summary(answer))


def answer_summary(answer: dict) -> dict:
    partners = answer["partners"]
    return {
        **{key: value for key, value in answer.items() if key != "partners"},
        "partners": len(partners),
        "partners_changed": sum(1 for row in partners if Decimal(str(row["change"])) != 0),
        "change": sum((Decimal(str(row["change"])) for row in partners), Decimal(0)),
    }


def profile_part(*, start: datetime, end: datetime, top: int) -> dict:
    """cProfile of an unchanged replay: the top functions by own and by cumulative time."""
    _child_setup()
    from commissions.replay import simulation_run

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    simulation_run(start=start, end=end, defaults=None, programs=[], detail=False, progress=None)
    profiler.disable()
    seconds = time.perf_counter() - started
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    # The share of the replay's own cumulative time (the sum of every function's own time,
    # `total_tt`, also counts the profiler's bookkeeping between calls).
    whole = max(cumulative for _, _, _, cumulative, _ in stats.stats.values()) or 1
    rows = {}
    for order in ("tottime", "cumulative"):
        ranked = sorted(
            stats.stats.items(), key=lambda item: item[1][2 if order == "tottime" else 3]
        )[::-1][:top]
        rows[order] = [
            (_function_name(key), calls, own / whole, cumulative / whole)
            for key, (_, calls, own, cumulative, _) in ranked
        ]
    return {"seconds": seconds, "profiled": stats.total_tt, "text": text.getvalue(), **rows}


# Where the replay's CPU time goes: (label, module, attribute) of the functions timed, each
# inclusive of what it calls (so the "of which" rows are inside the one above them).
STAGES = (
    ("the proposal's terms and every partner's chain (`proposed_terms`)", "commissions.replay",
     "proposed_terms"),
    ("reading the events (the server-side cursor; the payloads' JSON decoded by Django)",
     "commissions.replay", "_stored_events"),
    ("validating each payload again by the API's rules (`_lines`)", "commissions.replay",
     "_lines"),
    ("batch set-up (`Batch.__init__`: tokens decoded, events)", "commissions.importing",
     "Batch.__init__"),
    ("reads (`Batch._read`: contacts, history, referrals)", "commissions.importing",
     "Batch._read"),
    ("attribution (`Batch._attribute`)", "commissions.importing", "Batch._attribute"),
    ("plans (`Batch._plans`)", "commissions.importing", "Batch._plans"),
    ("of which `order_plan`", "commissions.importing", "order_plan"),
    ("of which the commission rows with their traces (`order_commission_rows`)",
     "commissions.intake.plan", "order_commission_rows"),
    ("of which the lines' amounts (`calculation.program_lines`)", "commissions.intake.plan",
     "program_lines"),
    ("the replay's sums (`Replay._order`)", "commissions.replay", "Replay._order"),
    ("what is recorded (`recorded_sums`)", "commissions.replay", "recorded_sums"),
    ("the answer (`_answer`, with `settings_changed`)", "commissions.replay", "_answer"),
)  # fmt: skip


def stages_part(*, start: datetime, end: datetime) -> dict:
    """An unchanged replay with a CPU timer (this thread's) around each function of STAGES
    and on the cycle collector; no profiler."""
    _child_setup()
    import gc
    from collections import defaultdict

    from commissions.replay import simulation_run

    spent: dict[str, float] = defaultdict(float)
    for label, module_name, path in STAGES:
        owner = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        function = getattr(owner, name)
        timed = _timed_iterator if name == "_stored_events" else _timed
        setattr(owner, name, timed(function, label, spent))
    collector = "the cycle collector (`gc`, inside the stages above)"
    clock = [0.0]

    def collecting(phase: str, info: dict) -> None:
        if phase == "start":
            clock[0] = time.thread_time()
        else:
            spent[collector] += time.thread_time() - clock[0]

    gc.callbacks.append(collecting)
    measure = _Measure()
    simulation_run(start=start, end=end, defaults=None, programs=[], detail=False, progress=None)
    figures = measure.end()
    gc.callbacks.remove(collecting)
    whole = "the whole replay (`simulation_run`)"
    stages = [(whole, figures["cpu_seconds"])]
    stages += [(label, spent[label]) for label, _, _ in STAGES]
    stages.append((collector, spent[collector]))
    return {**figures, "stages": stages}


def _timed(function: Callable, label: str, spent: dict[str, float]) -> Callable:
    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    return timed


def _timed_iterator(function: Callable, label: str, spent: dict[str, float]) -> Callable:
    def timed(*args, **kwargs):
        started = time.thread_time()
        rows = iter(function(*args, **kwargs))
        spent[label] += time.thread_time() - started
        while True:
            started = time.thread_time()
            row = next(rows, None)
            spent[label] += time.thread_time() - started
            if row is None:
                return
            yield row

    return timed


def _function_name(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return f"`{re.sub(r' at 0x[0-9a-f]+', '', function)}`"
    base = str(Path(__file__).resolve().parent.parent) + os.sep
    if "/site-packages/" in filename or not filename.startswith(base):
        filename = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", filename)
    else:
        filename = filename[len(base) :]
    return f"{filename}:{line} `{function}`"


# --- Checks and report ----------------------------------------------------------------------------


def answer_checks(runs: dict[str, list[dict]], *, data: dict, other: str) -> list[str]:
    """Every replay answered for every stored order; the unchanged one equals what is
    recorded; the baseline read every event."""
    problems = []
    for run in runs["baseline"]:
        if run["events"] != data["events"]:
            problems.append(f"the baseline read {run['events']:,} events of {data['events']:,}")
    for name in ("replay", "other"):
        for run in runs[name]:
            answer = run["answer"]
            if answer.get("orders") != data["events"]:
                problems.append(f"{name}: {answer.get('orders')} orders replayed")
    for run in runs["replay"]:
        answer = run["answer"]
        recorded = data["total"]
        if not (
            Decimal(str(answer["total_now"])) == Decimal(str(answer["total_proposed"])) == recorded
        ):
            problems.append(
                f"unchanged replay: total_now {answer['total_now']}, total_proposed "
                f"{answer['total_proposed']}, recorded {recorded}"
            )
        if answer["orders_changing_partner"] or answer["partners_changed"]:
            problems.append(
                f"unchanged replay: {answer['orders_changing_partner']} orders changing partner, "
                f"{answer['partners_changed']} partners' totals changing"
            )
    return problems


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def markdown_report(
    *, args, database, seed, setup, data, runs, other, load, profile, stages
) -> str:
    baseline = _median(runs["baseline"], "seconds")
    replay = _median(runs["replay"], "seconds")
    proposed = _median(runs["other"], "seconds")
    rss = max(run["rss_mb"] for name in ("replay", "other") for run in runs[name])
    worst = max(replay, proposed)
    ratio = worst / baseline
    # CPU time, this process and its PostgreSQL backend: what other load disturbs least.
    cpu = {
        name: _median(runs[name], "cpu_seconds") + _median(runs[name], "backend_cpu_seconds")
        for name in runs
    }

    def verdict(met: bool) -> str:
        return "met" if met else "**not met**"

    command = (
        f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/{database} .venv/bin/python "
        f"bench/replay.py --orders {args.orders} --seed {seed} --reuse --rounds {args.rounds}"
        + (f" --profile {args.profile}" if args.profile else "")
        + (" --stages" if args.stages else "")
    )
    stored = (
        f"stored by `manage.py import_events` in {setup['seconds']:.0f} s (not timed)"
        if setup
        else "stored by an earlier run (`--reuse`)"
    )
    other_answer = runs["other"][-1]["answer"]
    replay_answer = runs["replay"][-1]["answer"]

    def row(label: str, name: str) -> str:
        these = runs[name]
        return (
            f"| {label} | **{_median(these, 'seconds'):.2f} s** | "
            f"{', '.join(f'{run["seconds"]:.2f}' for run in these)} | "
            f"{_median(these, 'cpu_seconds'):.2f} s | "
            f"{_median(these, 'backend_cpu_seconds'):.2f} s | "
            f"{max(run['rss_mb'] for run in these):.0f} MB |"
        )

    lines = [
        *report_head(command),
        f"Data: bench/import.py's, in database `{database}`: the defaults at 3 levels, lead "
        f"and sale, amount and percent, `partner_selection` {data['partner_selection']}; "
        f"{ROOTS} x {FANOUT} x {FANOUT} partners; {args.orders:,} orders (seed {seed}), each "
        "a new contact with two items, a level-3 `lead_partner`, and a `sale_partner` or (every "
        "other one) a `tracking_token` of one click, so each pays 3 lead and 3 sale lines "
        f"({data['commissions']:,} lines, {data['total']} in all), {stored}. Each part runs "
        "in a fresh process (multiprocessing spawn: Django set up and connected before the "
        "clock starts; the peak RSS includes Django's own), the three in turn, "
        f"{args.rounds} round(s); taken {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
        f"(1 min) {load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        f"| over the {data['events']:,} events of the range | median | rounds | CPU, this "
        "process | CPU, its PostgreSQL backend | peak RSS |",
        "|---|---|---|---|---|---|",
        row(
            f"baseline: a server-side cursor ({args.chunk:,} rows a fetch) in id order, "
            "`payload::text` decoded by `json.loads`",
            "baseline",
        ),
        row("`simulation_run`, the settings unchanged", "replay"),
        row(f"`simulation_run` with `partner_selection` {other}", "other"),
        "",
        f"**Replay / baseline: {replay / baseline:.2f} (unchanged), {proposed / baseline:.2f} "
        f"({other})**: the bar of {TARGET_RATIO} is {verdict(ratio <= TARGET_RATIO)}; the "
        f"slower replay takes {worst:.1f} s, the bar of {TARGET_SECONDS} s is "
        f"{verdict(worst < TARGET_SECONDS)}; peak RSS {rss:.0f} MB, the bar of "
        f"{TARGET_RSS_MB} MB is {verdict(rss < TARGET_RSS_MB)}. By CPU time (the process's "
        "and its PostgreSQL backend's, which other load on the machine disturbs less): "
        f"{cpu['replay']:.1f} s and {cpu['other']:.1f} s against {cpu['baseline']:.2f} s, "
        f"**{cpu['replay'] / cpu['baseline']:.1f} and {cpu['other'] / cpu['baseline']:.1f} x "
        "the baseline**.",
        "",
        f"Checked: the unchanged replay answers {replay_answer['orders']:,} orders, "
        f"total_now {replay_answer['total_now']} = total_proposed "
        f"{replay_answer['total_proposed']} = the sum of the stored lines, "
        f"{replay_answer['orders_changing_partner']} orders changing partner, "
        f"{replay_answer['partners_changed']} of {replay_answer['partners']} partners' totals "
        f"changing. With `{other}`: {other_answer['orders_changing_partner']:,} orders "
        f"changing partner, total_proposed {other_answer['total_proposed']} "
        f"({other_answer['partners_changed']} partners' totals change; every token carries "
        "one click, so first and last are the same partner).",
    ]
    if stages:
        whole = stages["stages"][0][1]
        lines += [
            "",
            "Where the unchanged replay's CPU time goes (one more replay in a fresh process, "
            f"{stages['seconds']:.1f} s, {stages['cpu_seconds']:.1f} s of CPU; this thread's "
            "CPU time around each function, no profiler; inclusive, so the rows overlap):",
            "",
            "| stage | CPU | share |",
            "|---|---|---|",
            *(
                f"| {label} | {seconds:.2f} s | {seconds / whole:.0%} |"
                for label, seconds in stages["stages"]
            ),
        ]
    if profile:
        lines += [
            "",
            f"Where the unchanged replay's time goes (cProfile in a fresh process: "
            f"{profile['seconds']:.1f} s under the profiler; share of the profiled time; the "
            "profiler inflates call-heavy code). By own time:",
            "",
            "| function | calls | own | cumulative |",
            "|---|---|---|---|",
            *(
                f"| {name} | {calls:,} | {own:.0%} | {cumulative:.0%} |"
                for name, calls, own, cumulative in profile["tottime"]
            ),
            "",
            "By cumulative time:",
            "",
            "| function | calls | own | cumulative |",
            "|---|---|---|---|",
            *(
                f"| {name} | {calls:,} | {own:.0%} | {cumulative:.0%} |"
                for name, calls, own, cumulative in profile["cumulative"]
            ),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
