"""A thread working while another sends a COPY: the COPY text as bytes, against a str.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_import \
        .venv/bin/python bench/copy_threads.py --rows 600000 --rounds 3

The bulk import works the next batch out in one thread while another writes the last one
by COPY (`commissions.importing`). This measures what the writing thread takes from the
working one: a thread sends --rows rows (four columns: integer, text, numeric, time) into a
table of its own while this thread counts in a loop; the loop's rate is compared with its
rate alone, with the interpreter's switch interval the import sets while it writes
(`WRITER_SWITCH_INTERVAL`). Two ways to hand the text to psycopg2's `copy_expert`, in 1 MB
reads, taking turns in each round:

- `bytes`: `referral_program.db.copy_send` as it is (UTF-8 bytes in a `BytesIO`);
- `str`: the same text as a `str` in a `StringIO`, as `copy_send` sent it until cefd3c2.

It prints, per way, the medians of --rounds rounds: the COPY's time and the counting
thread's rate during it as a share of its rate alone. Writes nothing but its own table
(dropped at the end; the database name must still contain `bench`).
"""

import argparse
import io
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_django

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_import"
TABLE = "bench_copy_threads"


def count_for(seconds: float) -> int:
    """Loops of plain Python for `seconds`: the working thread's progress."""
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        count += 1
    return count


def as_str(data) -> None:
    """The COPY as `copy_send` sent it until cefd3c2: the text as a str."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(data.sql, io.StringIO(data.text), size=1 << 20)


def while_copying(send, data) -> tuple[float, float]:
    """The COPY's seconds, and this thread's loops per second meanwhile."""
    from django.db import connection

    took = []

    def copy() -> None:  # on the thread's own connection, as the import's writer
        started = time.perf_counter()
        send(data)
        took.append(time.perf_counter() - started)
        connection.close()

    writer = threading.Thread(target=copy)
    started, loops = time.perf_counter(), 0
    writer.start()
    while writer.is_alive():
        loops += count_for(0.02)
    rate = loops / (time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
    return took[0], rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=600_000, help="rows per COPY (600,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    args = parser.parse_args()
    if not bench_django(DEFAULT_DATABASE_URL):
        return 2
    from django.db import connection

    from commissions.importing import WRITER_SWITCH_INTERVAL
    from referral_program.db import copy_send
    from referral_program.db.bulk import CopyData

    sys.setswitchinterval(WRITER_SWITCH_INTERVAL)  # as the import sets it while it writes

    text = "".join(
        f"{n}\tsome text {n}\t{n}.25\t2026-01-01T00:00:00+00:00\n" for n in range(args.rows)
    )
    data = CopyData(f"COPY {TABLE} FROM STDIN", text, args.rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (a integer, b text, c numeric, d timestamptz)"
        )
        ways = {"bytes": copy_send, "str": as_str}
        alone = count_for(1.0)
        results: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
        for round_ in range(args.rounds):
            order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
            for way in order:
                results[way].append(while_copying(ways[way], data))
        cursor.execute(f"DROP TABLE {TABLE}")
    print(f"{args.rows:,} rows ({len(text) / 1e6:.0f} MB), medians of {args.rounds} rounds:")
    for way, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        share = statistics.median(r for _, r in runs) / alone
        print(f"  {way:5s}: COPY {seconds:.3f} s; the other thread at {share:.2f} of its speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
