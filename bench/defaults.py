"""Benchmark of a Referral Partner Defaults save with many programs (issue 6).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_defaults \
        .venv/bin/python bench/defaults.py --programs 100000 --rounds 5 --write-docs

Makes --programs program records (COPY-fast bulk_create) with their version 1, then times,
interleaved round by round in one process: the save service `defaults_update` (lock, audit
row, one UPDATE of every program, one INSERT of their next versions) against a raw SQL
`UPDATE` of the same structural columns of the same rows (the least the database can do).
Each round flips the structure so both really write. Reports the median of each and the
ratio service / raw (the issue's target: <= 1.5).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    bench_django,
    code_version,
    docs_section_write,
    load_average,
    machine,
)

HEADING = "## Defaults save (bench/defaults.py)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if not bench_django("postgres://postgres@127.0.0.1:5432/rp_bench_defaults"):
        return 2
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from partners.models import DefaultsChange, Program, ProgramVersion
    from partners.services.defaults import defaults_update
    from partners.terms import program_terms

    call_command("migrate", verbosity=0)
    if Program.objects.count() != args.programs or ProgramVersion.objects.count() == 0:
        Program.objects.all().delete()
        programs = Program.objects.bulk_create(
            (Program(name=f"Program {n}", priority=n) for n in range(args.programs)),
            batch_size=10_000,
        )
        # Version 1 of each, as program_create makes it: a save makes their next versions.
        terms = program_terms(program=programs[0], rates=[], product_rates=[])
        now = timezone.now()
        ProgramVersion.objects.bulk_create(
            (
                ProgramVersion(program=p, number=1, terms=terms, created_at=now, actor="bench")
                for p in programs
            ),
            batch_size=10_000,
        )
    table = Program._meta.db_table
    service, raw = [], []
    load_before = load_average()
    for n in range(args.rounds):
        levels = 3 if n % 2 == 0 else 2
        started = time.perf_counter()
        result = defaults_update(
            data={"levels": levels, "payout_percent": n % 2 == 0}, acting_user=None, actor="bench"
        )
        service.append(time.perf_counter() - started)
        assert result.programs_updated == args.programs, result
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET levels = %s, payout_on_lead = %s, payout_on_sale = %s, "
                "payout_amount = %s, payout_percent = %s, pay_if_unused = %s",
                [5 - levels, False, True, True, n % 2 != 0, False],
            )
            assert cursor.rowcount == args.programs
        raw.append(time.perf_counter() - started)
    DefaultsChange.objects.filter(actor="bench").delete()
    median_service, median_raw = statistics.median(service), statistics.median(raw)
    ratio = median_service / median_raw
    body = f"""Command: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_defaults .venv/bin/python bench/defaults.py --programs {args.programs} --rounds {args.rounds} --write-docs`

Machine: {machine()}. Code: {code_version("partners")}. Load average (1 min) {load_before:.2f} before, {load_average():.2f} after.

| operation on {args.programs:,} programs | median of {args.rounds} | rounds |
|---|---|---|
| `defaults_update` (lock, audit row, one `UPDATE` of every program, one `INSERT` of their versions) | {median_service * 1000:,.0f} ms | {", ".join(f"{t * 1000:,.0f}" for t in service)} |
| raw SQL `UPDATE` of the same columns and rows (baseline) | {median_raw * 1000:,.0f} ms | {", ".join(f"{t * 1000:,.0f}" for t in raw)} |

**Service / raw UPDATE: {ratio:.2f}** (target <= 1.5)."""  # noqa: E501
    print(body)
    if args.write_docs:
        docs_section_write(HEADING, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
