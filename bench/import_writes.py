"""The bulk import's writes, measured apart from its Python work.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_import \
        .venv/bin/python bench/import_writes.py --orders 50000 --seed 7

bench/import.py compares the whole import with a COPY of the rows it wrote. This takes
the import apart, on the same data and file (bench/import.py's `prepare_data` and
`write_file`; the database is reset the same way, so its name must contain `bench`):

1. **the import in this process** (`events_import`, batches of 2,000, one thread working
   the next batch out while another writes the last): its wall time, the time its writing
   thread was busy (`_Work.commit`: the COPYs and the commit, where PostgreSQL checks the
   deferred foreign keys) and the first batch's preparing, which nothing overlaps. The
   COPY texts of every batch are kept;
2. **those COPY texts written again, with no Python work beside them**: into the emptied
   tables (after a CHECKPOINT, as bench/import.py's baseline), a transaction per batch,
   and all in one transaction (--rounds rounds, taking turns);
3. **per table, the import's COPY text against PostgreSQL's own** (`COPY ... TO STDOUT` of
   the same rows) into a copy of the table without foreign keys (--rounds rounds each).

What (2) leaves out of (1) is what the Python work beside the writes costs them; (3) is
what the text's form costs PostgreSQL.
"""

import argparse
import importlib
import io
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_django, seeded

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench_import"


def imported(path: Path) -> tuple[float, float, float, list[list]]:
    """Import the file in this process: wall time, the writer's busy time, the first
    batch's preparing time, and each batch's COPY data (in the order written)."""
    from commissions import importing

    batches, busy, prepared = [], [], []
    write, commit, prepare = importing.Batch.write, importing._Work.commit, importing.batch_prepare

    def kept_write(batch):
        batches.append([data for data in batch.copies if data is not None])
        write(batch)

    def timed_commit(work):
        started = time.perf_counter()
        commit(work)
        busy.append(time.perf_counter() - started)

    def timed_prepare(*args, **kwargs):
        started = time.perf_counter()
        work = prepare(*args, **kwargs)
        prepared.append(time.perf_counter() - started)
        return work

    importing.Batch.write, importing._Work.commit = kept_write, timed_commit
    importing.batch_prepare = timed_prepare
    try:
        started = time.perf_counter()
        with path.open("rb") as lines:
            report = importing.events_import(lines=lines)
        wall = time.perf_counter() - started
    finally:
        importing.Batch.write, importing._Work.commit = write, commit
        importing.batch_prepare = prepare
    assert report.recorded == report.lines, report
    return wall, sum(busy), prepared[0], batches


def written_again(batches: list[list], *, one_transaction: bool) -> float:
    """The COPY data into the emptied tables: seconds."""
    from django.db import connection, transaction

    from commissions.models import Commission, Contact, Event, Notification, Order, Referral
    from referral_program.db import copy_send

    models = (Event, Contact, Order, Commission, Notification, Referral)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(m._meta.db_table for m in models)} CASCADE")
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    if one_transaction:
        with transaction.atomic():
            for batch in batches:
                for data in batch:
                    copy_send(data)
    else:
        for batch in batches:
            with transaction.atomic():
                for data in batch:
                    copy_send(data)
    return time.perf_counter() - started


def texts_compared(batches: list[list], *, rounds: int) -> list[tuple[str, int, float, float]]:
    """Per COPY statement: its table, rows, and the median seconds of the import's text
    and of PostgreSQL's own text of the same rows, into a table without foreign keys."""
    from django.db import connection

    texts = defaultdict(list)
    for batch in batches:
        for data in batch:
            texts[data.sql].append(data.text)
    result = []
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for sql, parts in texts.items():
            table = sql.split()[1]
            columns = sql[sql.index("(") : sql.index(")") + 1]
            raw.execute("DROP TABLE IF EXISTS bench_copy_text")
            raw.execute(f"CREATE TABLE bench_copy_text (LIKE {table} INCLUDING ALL)")
            ours = "".join(parts).encode()
            raw.copy_expert(f"COPY bench_copy_text {columns} FROM STDIN", io.BytesIO(ours))
            out = io.BytesIO()
            raw.copy_expert(f"COPY bench_copy_text {columns} TO STDOUT", out)
            times: dict[str, list[float]] = {"ours": [], "theirs": []}
            for _ in range(rounds):
                for name, text in (("ours", ours), ("theirs", out.getvalue())):
                    raw.execute("TRUNCATE bench_copy_text")
                    started = time.perf_counter()
                    raw.copy_expert(
                        f"COPY bench_copy_text {columns} FROM STDIN", io.BytesIO(text), size=1 << 20
                    )
                    times[name].append(time.perf_counter() - started)
            median = {name: statistics.median(seconds) for name, seconds in times.items()}
            result.append((table, ours.count(b"\n"), median["ours"], median["theirs"]))
        raw.execute("DROP TABLE bench_copy_text")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="orders in the file")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (2) and (3)")
    parser.add_argument("--seed", type=int, help="seed of the data")
    args = parser.parse_args()
    if not bench_django(DEFAULT_DATABASE_URL):
        return 2
    from django.db import connection

    from bench.events import prepare_data

    import_bench = importlib.import_module("bench.import")
    seed, rng = seeded(args.seed)
    data = prepare_data(
        args=SimpleNamespace(roots=10, fanout=10, tokens=200, notify="off"), rng=rng
    )
    with tempfile.TemporaryDirectory(prefix="rp-bench-import-writes-") as tmp:
        path = Path(tmp) / "orders.jsonl"
        import_bench.write_file(path, data, rng, orders=args.orders, prefix=f"w{seed}-")
        import_bench.analyze()
        connection.close()  # the import's reads start on a connection of their own
        wall, busy, first, batches = imported(path)
    print(f"{args.orders:,} orders (seed {seed}), {len(batches)} batches")
    print(
        f"1. the import in process: {wall:.2f} s; its writer busy {busy:.2f} s; "
        f"the first batch's preparing {first:.2f} s"
    )
    again: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for one in (False, True) if round_ % 2 == 0 else (True, False):
            again[one].append(written_again(batches, one_transaction=one))
    print(
        "2. its COPY texts written again, alone: a transaction per batch "
        f"{statistics.median(again[False]):.2f} s, one transaction "
        f"{statistics.median(again[True]):.2f} s (medians of {args.rounds})"
    )
    print("3. per table, into a copy without foreign keys: the import's text / PostgreSQL's")
    for table, rows, ours, theirs in texts_compared(batches, rounds=args.rounds):
        print(f"   {table:28s} {rows:8,} rows: {ours:.2f} s / {theirs:.2f} s ({ours / theirs:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
