"""What the engine's one chain statement costs PostgreSQL, and what each of its parts adds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_events \\
        .venv/bin/python bench/chain_statement.py --runs 400

Reads the data that bench/events.py leaves in its database (run that first: the defaults,
one program, 1,110 partners) and writes nothing. The statement is
`commissions.selectors._engine_sql` for three partners (an order's lead partner, its sale
partner, and one more), prepared as the intake prepares it, and run with PostgreSQL's
generic plan (the one a prepared statement keeps after five runs) under `EXPLAIN
(ANALYZE, TIMING OFF)`: the figure is PostgreSQL's own execution time, without the round
trip or the driver. Beside it, the same statement without the parts SPEC §10 added (the
renewal rate's join, the overrides' join; with `--old-version`, the current version looked
up per row as before `Program.current_version`), each prepared once and run in turn with
the others, round after round, with random level-3 partners. Medians and 25th percentiles
of --runs runs each: the 25th percentile is the steadier on a machine doing other work.
"""

import argparse
import random
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import setup_django


def variants(old_version: bool) -> dict[str, str]:
    """The statement as the engine sends it ($n parameters), and without each part."""
    from commissions.selectors import CHAIN_OVERRIDE, CHAIN_RATE, _engine_sql, _version_sql
    from partners.models import PartnerOverride, RenewalRate
    from referral_program.db import columns

    sql, _ = _engine_sql(3)
    numbers = iter(range(1, 100))
    sql = re.sub("%s", lambda _: f"${next(numbers)}", sql)

    def without(statement: str, select: str, join: str) -> str:
        found = re.search(join, statement)
        assert select in statement and found, (select, join)
        nulls = ", ".join("NULL" for _ in select.split(","))
        return statement.replace(select, nulls).replace(found.group(0), "\n")

    renewal = (columns(RenewalRate, CHAIN_RATE, "rr."), r"LEFT JOIN \S+ rr ON [^\n]*\n")
    overrides = (
        columns(PartnerOverride, CHAIN_OVERRIDE, "o."),
        r"LEFT JOIN \S+ o ON [^\n]*\n[^\n]*\n",
    )
    found = {
        "the statement": sql,
        "without the renewal rate's join": without(sql, *renewal),
        "without the overrides' join": without(sql, *overrides),
        "without both": without(without(sql, *renewal), *overrides),
    }
    if old_version:
        version = _version_sql()
        assert version in sql, version
        found["the version looked up per row (before current_version)"] = sql.replace(
            version,
            '(SELECT pv.id FROM "partners_programversion" pv WHERE pv.program_id = pr.id '
            'ORDER BY pv."number" DESC LIMIT 1)',
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="runs of each variant (400)")
    parser.add_argument("--old-version", action="store_true", help="also the per-row lookup")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup_django("postgres://postgres@127.0.0.1:5432/rp_bench_events")
    from django.db import connection

    from partners.models import Partner, ReferralDefaults

    leaves = list(Partner.objects.filter(code__startswith="p3-").values_list("pk", flat=True))
    if not leaves:
        print("No bench partners: run bench/events.py on this database first.", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    found = variants(args.old_version)
    times: dict[str, list[float]] = {name: [] for name in found}
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        for n, statement in enumerate(found.values()):
            cursor.execute(f"PREPARE bench_chain_{n} AS {statement}")
        for _ in range(args.runs):
            for n, name in enumerate(found):
                ids = rng.sample(leaves, 3)
                cursor.execute(
                    f"EXPLAIN (ANALYZE, TIMING OFF) EXECUTE bench_chain_{n} (%s, %s, %s, %s)",
                    [*ids, ReferralDefaults.SINGLETON_PK],
                )
                [line] = [r[0] for r in cursor.fetchall() if r[0].startswith("Execution Time")]
                times[name].append(float(re.search(r"([\d.]+) ms", line).group(1)) * 1000)
        for n in range(len(found)):
            cursor.execute(f"DEALLOCATE bench_chain_{n}")
    first = statistics.quantiles(times["the statement"], n=4)[0]
    print(f"Execution time of the engine's chain statement, generic plan, {args.runs} runs each:")
    print("| variant | 25th percentile | median | vs the statement (25th) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        quartile = statistics.quantiles(values, n=4)[0]
        print(
            f"| {name} | {quartile:.0f} µs | {statistics.median(values):.0f} µs "
            f"| {quartile / first:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
