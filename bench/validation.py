"""Micro-benchmark of the events' field rules (`commissions.validation`) on stored orders.

    .venv/bin/python bench/validation.py --before 9636150 --write-docs

The what-if replay and the bulk importer validate every order again with
`RULES["order"].validate(payload, partners)`. This times that call alone, in one process
and without a database: --orders orders (20,000) made by bench/import.py's generator
(`write_file`: bench/events.py's order body, a new contact, two items, a level-3
`lead_partner`, and a `sale_partner` or, every other one, a `tracking_token`; `occurred_at`
in the last half hour), written to a temporary JSON Lines file and read back. The partners
are unsaved `Partner` rows (active, codes like bench/events.py's), the tokens made by
`encode_token` as bench/events.py makes them.

Each round times, in turn (each round starting with another): the baseline, `json.loads`
of every line (what the replay does with each payload anyway), then the rules over the
decoded payloads; with --before REV also the rules of `commissions/validation.py` as
commit REV has it (`git show`, loaded as a module of its own), whose answers must equal the
current ones. It reports the medians of --rounds rounds in microseconds per order (wall
time, and the process's CPU time), and the ratios to the baseline. --profile N: cProfile
of N validations, the top functions by own time. With --write-docs the figures replace the
"Validation of events" section of docs/performance.md.
"""

import argparse
import cProfile
import gc
import importlib
import io
import json
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BASE_DIR, code_version, load_average, report_end, seeded, setup_django

# Never connected to: the rules read no database (setup_django needs a URL).
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_validation"
HEADING = "## Validation of events (validation fast paths)"
# bench/import.py's partner tree and tokens (its defaults): the leaves are level 3.
ROOTS, FANOUT, TOKENS = 10, 10, 200


def main() -> int:
    args = parse_args()
    setup_django(DEFAULT_DATABASE_URL)
    from commissions import validation

    seed, rng = seeded(args.seed)
    data, partners = bench_data(rng)
    with tempfile.TemporaryDirectory(prefix="rp-bench-validation-") as tmp:
        path = Path(tmp) / "orders.jsonl"
        importlib.import_module("bench.import").write_file(  # `import` is a keyword
            path, data, rng, orders=args.orders, prefix=f"v{seed}-"
        )
        lines = path.read_text().splitlines()
    payloads = [json.loads(line) for line in lines]
    rules: dict[str, Callable] = {"current": validation.ORDER.validate}
    if args.before:
        rules["before"] = module_at(args.before).ORDER.validate
    problems = answer_checks(rules, payloads, partners)
    runs: dict[str, list[tuple[float, float]]] = {"baseline": [], **{n: [] for n in rules}}
    gc.collect()
    load_before = load_average()
    parts: dict[str, tuple[Callable[[], object], list]] = {
        "baseline": (lambda: each(json.loads, lines), lines),
        **{
            name: (lambda v=validate: each(lambda p: v(p, partners), payloads), payloads)
            for name, validate in rules.items()
        },
    }
    for round_number in range(1, args.rounds + 1):
        # Each round starts with another part: none is always the first or the last.
        names = list(parts)
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(per_order(*parts[name]))
        print(
            f"round {round_number}: "
            + ", ".join(
                f"{name} {timed[-1][0] * 1e6:.1f} µs (CPU {timed[-1][1] * 1e6:.1f})"
                for name, timed in runs.items()
            )
        )
    load_after = load_average()
    profile = profile_text(validation.ORDER.validate, payloads, partners, args.profile)
    if profile:
        print(profile)
    report = markdown_report(args=args, seed=seed, runs=runs, load=(load_before, load_after))
    return report_end(report, problems, heading=HEADING, write_docs=args.write_docs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000, help="orders (20,000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, the median kept (7)")
    parser.add_argument("--before", help="a commit whose commissions/validation.py to time too")
    parser.add_argument("--profile", type=int, default=0, help="cProfile N validations")
    parser.add_argument("--seed", type=int, help="seed of the data")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if min(args.orders, args.rounds) < 1:
        parser.error("--orders, --rounds >= 1")
    return args


def bench_data(rng) -> tuple[SimpleNamespace, dict]:
    """bench/events.py's leaves and tokens, without a database: what `write_file` needs,
    and the partners the rules look the codes up in (`partners_named`'s mapping)."""
    from partners.choices import PartnerStatus
    from partners.models import Partner
    from partners.tokens import TokenClick, encode_token, new_click_id

    first_leaf = ROOTS + ROOTS * FANOUT
    leaves = [f"p3-{first_leaf + n:05d}" for n in range(ROOTS * FANOUT * FANOUT)]
    clicked_at = datetime.now(UTC) - timedelta(hours=1)
    tokens = [
        encode_token(
            [TokenClick(click_id=new_click_id(clicked_at), partner_id=rng.randrange(1000),
                        at=clicked_at)]
        )
        for _ in range(TOKENS)
    ]  # fmt: skip
    partners = {
        code.lower(): Partner(id=n, code=code, status=PartnerStatus.ACTIVE)
        for n, code in enumerate(leaves, start=1)
    }
    return SimpleNamespace(leaves=leaves, tokens=tokens), partners


def module_at(commit: str) -> ModuleType:
    """commissions/validation.py as `commit` has it, as a module of its own inside the
    `commissions` package (its relative imports work)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:commissions/validation.py"],
        cwd=BASE_DIR, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = ModuleType("commissions._validation_before")
    module.__package__ = "commissions"
    exec(compile(source, f"{commit}:commissions/validation.py", "exec"), module.__dict__)
    return module


def answer_checks(rules: dict[str, Callable], payloads: list, partners: dict) -> list[str]:
    """Every order valid, and every version's answers the same (values and their types)."""
    answers = {name: [validate(p, partners) for p in payloads] for name, validate in rules.items()}

    def typed(value):
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        return (type(value), str(value))

    current = [typed(answer) for answer in answers.pop("current")]
    return [
        f"{name}'s answers differ from the current rules'"
        for name, given in answers.items()
        if [typed(answer) for answer in given] != current
    ]


def each(function: Callable, items: list) -> None:
    """`function` of every item, the answers dropped (none kept for the collector to scan)."""
    for item in items:
        function(item)


def per_order(work: Callable[[], object], items: list) -> tuple[float, float]:
    """Seconds per item of one run of `work` over `items`: wall time and this process's CPU
    time (which other work on the machine disturbs less)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    work()
    return (
        (time.perf_counter() - started) / len(items),
        (time.process_time() - cpu_started) / len(items),
    )


def profile_text(validate: Callable, payloads: list, partners: dict, count: int) -> str:
    if not count:
        return ""
    chosen = (payloads * (count // len(payloads) + 1))[:count]
    profiler = cProfile.Profile()
    profiler.enable()
    for payload in chosen:
        validate(payload, partners)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return f"cProfile of {count:,} validations, by own time:\n{out.getvalue()}"


def markdown_report(*, args, seed: int, runs: dict[str, list[tuple[float, float]]], load) -> str:
    medians = {name: statistics.median(t[0] for t in timed) * 1e6 for name, timed in runs.items()}
    cpu = {name: statistics.median(t[1] for t in timed) * 1e6 for name, timed in runs.items()}
    command = f".venv/bin/python bench/validation.py --orders {args.orders} --rounds {args.rounds}"
    if args.before:
        command += f" --before {args.before}"
    labels = {
        "baseline": "baseline: `json.loads` of the line",
        "current": "`ORDER.validate` (this code)",
        "before": f"`ORDER.validate` as of {args.before} (before)",
    }
    lines = [
        f"Command: `{command} --write-docs`",
        "",
        f"Machine: Python {platform.python_version()} on {platform.machine()}; load average "
        f"(1 min) {load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        f"Code: {code_version('commissions', 'bench')}.",
        "",
        f"Set-up: {args.orders:,} orders of bench/import.py's generator (seed {seed}), in one "
        "process, no database; median of "
        f"{args.rounds} rounds, taken {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| | µs per order | x the baseline | CPU µs per order |",
        "|---|---|---|---|",
        *(
            f"| {labels[name]} | {median:.1f} | {median / medians['baseline']:.2f} "
            f"| {cpu[name]:.1f} |"
            for name, median in medians.items()
        ),
    ]
    if "before" in medians:
        lines += [
            "",
            f"**{medians['before']:.1f} → {medians['current']:.1f} µs per order** "
            f"({medians['before'] / medians['current']:.2f} x as fast; CPU {cpu['before']:.1f} → "
            f"{cpu['current']:.1f} µs), the same answers "
            "(checked on every order, values and types).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
