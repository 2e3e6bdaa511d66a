"""In-process timing of the /go/ tracker against the issue's baseline (no server, no wrk).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench_inprocess \\
        .venv/bin/python bench/tracker_inprocess.py [--requests 2000] [--partners 2000]

A quick check that needs neither gunicorn nor wrk: one Python process, Django's test
client, the data of bench/redirect.py (it resets the database with its `prepare_data`, so
the database's name must contain "bench"), the tracker writing each click itself
(CLICK_BUFFER_URL empty), the `baseline` view of bench/views.py inserting its click for
BENCH_PARTNER_ID. Three variants, after a warm-up:

    tracker     /go/<code>/: one statement (`click_track`: PREPARE once, then EXECUTE)
    two_trips   /go/<code>/ with `click_track` swapped for its portable form (the lookup,
                then the insert: the tracker before task H1, and still on SQLite)
    baseline    /bench/baseline/<code>/

take turns in blocks of BLOCK requests (the order rotating), each request with a random
partner code and a random visitor address (X-Forwarded-For, TRUSTED_PROXY_DEPTH=1) and
timed on its own. Prints per variant the median and 90th percentile time per request and
the ratio baseline / variant of the medians (how much of the baseline's rate the variant
would reach if only this process's time counted); then the CPU time per request of this
process and of its PostgreSQL backend (from /proc, read per block: its clock ticks are too
coarse for one request), which other load on the machine disturbs less than wall time;
the queries of one request of each tracker variant; and checks one click per request.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0 Safari/537.36"
)
WARMUP = 200
BLOCK = 50
VARIANTS = {"tracker": "/go/", "two_trips": "/go/", "baseline": "/bench/baseline/"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per variant (2000)")
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    os.environ["CLICK_BUFFER_URL"] = ""  # the tracker writes each click itself
    os.environ["TRUSTED_PROXY_DEPTH"] = "1"  # each request another visitor, as in wrk
    from bench._common import bench_django
    from bench.redirect import prepare_data

    if not bench_django("postgres://postgres@127.0.0.1:5432/rp_bench_inprocess"):
        return 2
    rng = random.Random(args.seed)
    codes, baseline_partner_id = prepare_data(partners=args.partners, rng=rng)
    os.environ["BENCH_PARTNER_ID"] = str(baseline_partner_id)  # read when bench.views loads

    from django.db import connection
    from django.test import Client

    import bench.views
    import partners.tracker
    from partners.models import Click
    from partners.services.clicks import _click_track_portable, click_track

    assert baseline_partner_id == bench.views.PARTNER_ID, "bench.views was imported too early"
    client = Client()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
    tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")

    def backend_cpu_ns() -> float:
        fields = backend_stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * tick_ns

    def request(view: str) -> int:
        address = ".".join(str(rng.randint(1, 223 if n == 0 else 254)) for n in range(4))
        path = f"{VARIANTS[view]}{rng.choice(codes)}/"
        portable = view == "two_trips"
        partners.tracker.click_track = _click_track_portable if portable else click_track
        started = time.perf_counter_ns()
        response = client.get(path, headers={"user-agent": BROWSER, "x-forwarded-for": address})
        elapsed = time.perf_counter_ns() - started
        assert response.status_code == 302 and "rp_ref" in response.cookies, path
        return elapsed

    for _ in range(WARMUP):
        for view in VARIANTS:
            request(view)
    queries: dict[str, list[str]] = {}  # not CaptureQueriesContext: a request resets its log
    for view in ("tracker", "two_trips"):

        def count(execute, sql, params, many, context, view=view):
            queries.setdefault(view, []).append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            request(view)

    before = Click.objects.count()
    times: dict[str, list[int]] = {view: [] for view in VARIANTS}
    own_ns = dict.fromkeys(VARIANTS, 0.0)
    backend_ns = dict.fromkeys(VARIANTS, 0.0)
    order = list(VARIANTS)
    for block in range(-(-args.requests // BLOCK)):
        for view in order[block % 3 :] + order[: block % 3]:
            own, backend = time.thread_time_ns(), backend_cpu_ns()
            for _ in range(min(BLOCK, args.requests - block * BLOCK)):
                times[view].append(request(view))
            own_ns[view] += time.thread_time_ns() - own
            backend_ns[view] += backend_cpu_ns() - backend
    written = Click.objects.count() - before

    baseline = statistics.median(times["baseline"])
    baseline_cpu = own_ns["baseline"] + backend_ns["baseline"]
    for view in VARIANTS:
        median = statistics.median(times[view])
        p90 = statistics.quantiles(times[view], n=10)[-1]
        cpu = own_ns[view] + backend_ns[view]
        print(
            f"{view:9}  median {median / 1000:7.1f} µs  p90 {p90 / 1000:7.1f} µs  "
            f"baseline/{view} {baseline / median:.2f}  |  CPU per request: this process "
            f"{own_ns[view] / args.requests / 1000:5.0f} µs + backend "
            f"{backend_ns[view] / args.requests / 1000:4.0f} µs, baseline/{view} "
            f"{baseline_cpu / cpu:.2f}"
        )
    print(f"({args.requests} requests per variant; load average {os.getloadavg()[0]:.2f})")
    for view, sqls in queries.items():
        print(f"queries of one {view} request: {len(sqls)}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements")
        for name, generic, custom in cursor.fetchall():
            print(f"prepared statement {name}: {generic} generic plans, {custom} custom plans")
    expected = len(VARIANTS) * args.requests
    print(f"clicks written: {written} (expected {expected})")
    return 0 if written == expected else 1


if __name__ == "__main__":
    sys.exit(main())
