"""Benchmark of the /go/ click tracker against its baselines (issue 3).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench .venv/bin/python bench/redirect.py

Migrates the database and resets its partners, tracking links and clicks, creates
--partners partners with random codes and a default tracking link, starts gunicorn
(2 sync workers, bench.settings, 127.0.0.1 on a free port, no access log, DEBUG off), then
runs wrk against three views of that one server, interleaved round by round:

    bare      /bench/bare/<code>/      redirect + signed cookie, no database
    baseline  /bench/baseline/<code>/  redirect + signed cookie + one INSERT (the issue's)
    tracker   /go/<code>/              the tracker

each with a random partner code and a random visitor IP address (X-Forwarded-For behind
one trusted proxy, so no click is a repeat) per request. The tracker writes each click
itself (CLICK_BUFFER_URL empty). It reports the median req/s and latency of each view,
the ratio tracker/baseline (the issue's target: >= 0.8), and checks that every request a
run completed wrote exactly one click (the bare view none). With --write-docs, the
figures replace the "Click redirect" section of docs/performance.md.

The database is emptied of partners (and what cascades from them), so its name must
contain "bench". Traffic goes to 127.0.0.1 only; needs wrk (apt-get install -y wrk).
"""

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rp_bench"
DOCS = BASE_DIR / "docs" / "performance.md"
SECTION_HEADING = "## Click redirect (bench/redirect.py)"
DOCS_INTRO = """# Performance

Each benchmark lives under `bench/` and measures a view or an operation as a **ratio
against a baseline run in the same process or session**, on the same machine, interleaved
with it: absolute figures drift by 10-15 % from run to run and from machine to machine,
ratios much less. Every section gives the command that produced it, the machine, the
figures and the ratio; rerun the command to refresh them. Tests never time anything.
"""

BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0 Safari/537.36"
)
DESTINATION = "https://shop.example/"  # the default tracking link, as in bench/views.py
WORKERS = 2
THREADS = 2
CONNECTIONS = 16
WARMUP_SECONDS = 2
BASELINE_PARTNER_CODE = "bench-baseline"


@dataclass(frozen=True)
class View:
    name: str
    prefix: str
    label: str
    writes: bool


VIEWS = {
    "bare": View("bare", "/bench/bare/", "redirect + signed cookie, no database (bare)", False),
    "baseline": View(
        "baseline", "/bench/baseline/", "bare + one INSERT of a click (baseline)", True
    ),
    "tracker": View("tracker", "/go/", "the tracker, `/go/<code>/`", True),
}


@dataclass(frozen=True)
class Run:
    view: str
    round: int
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    rows: int
    worker_cpu_seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """CPU time the gunicorn workers spent per answered request, in microseconds."""
        return self.worker_cpu_seconds / self.requests * 1e6


LUA = """\
-- Written by bench/redirect.py: GET <prefix><random partner code>/ as a browser would.
local codes = {%(codes)s}
local counter = 0
local paths = {}

function setup(thread)
  thread:set("thread_number", counter)
  counter = counter + 1
end

-- args: the path prefix, and this run's seed (each run draws other codes and addresses).
function init(args)
  math.randomseed(tonumber(args[2]) + 7919 * thread_number)
  for i, code in ipairs(codes) do
    paths[i] = args[1] .. code .. "/"
  end
end

wrk.headers["User-Agent"] = "%(user_agent)s"

-- Every request comes from another visitor, through one trusted proxy.
function request()
  wrk.headers["X-Forwarded-For"] = string.format("%%d.%%d.%%d.%%d", math.random(1, 223),
    math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "status_errors": %%d, '
    .. '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def main() -> int:
    args = parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)", file=sys.stderr)
        return 2
    setup_django()

    from django.conf import settings
    from django.db import connection

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or "bench" not in database["NAME"]:
        print(
            f"Refusing to reset {database['NAME']!r}: point DATABASE_URL at a PostgreSQL "
            "database whose name contains 'bench' (e.g. rp_bench).",
            file=sys.stderr,
        )
        return 2

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    print(f"Preparing {database['NAME']}: migrate, {args.partners} partners (seed {seed})")
    codes, baseline_partner_id = prepare_data(partners=args.partners, rng=rng)
    views = [VIEWS[name] for name in (["baseline", "tracker"] if args.no_bare else VIEWS)]
    if (load := os.getloadavg()[0]) > 0.5:
        print(f"Warning: load average {load:.2f} before the runs: other work skews the figures")

    results = []
    with tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp:
        lua = Path(tmp) / "random_codes.lua"
        lua.write_text(lua_script(codes))
        for conn_max_age in args.conn_max_age:
            results.append(
                measure(
                    wrk, lua, views, codes=codes, conn_max_age=conn_max_age, args=args,
                    seed=seed, baseline_partner_id=baseline_partner_id, log=Path(tmp),
                )
            )  # fmt: skip
            connection.close()

    problems = [problem for result in results for problem in verify(result, views)]
    report = markdown_report(results, views, args=args, database=database["NAME"])
    print()
    print(report)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if args.write_docs and not problems:
        write_docs(report)
        print(f"Updated {DOCS.relative_to(BASE_DIR)}")
    return 1 if problems else 0


@dataclass(frozen=True)
class Result:
    conn_max_age: int
    runs: list[Run]
    load_before: float
    load_after: float


def measure(
    wrk: str,
    lua: Path,
    views: list[View],
    *,
    codes: list[str],
    conn_max_age: int,
    args: argparse.Namespace,
    seed: int,
    baseline_partner_id: int,
    log: Path,
) -> Result:
    """Warm-up, then the interleaved rounds, against one gunicorn."""
    load_before = os.getloadavg()[0]
    port = free_port()
    with gunicorn(
        port=port,
        baseline_partner_id=baseline_partner_id,
        conn_max_age=conn_max_age,
        log=log,
    ) as arbiter_pid:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(port, code=codes[0])
        for view in views:
            check_response(port, view=view, code=codes[0])
        print(
            f"gunicorn on {base_url}, CONN_MAX_AGE={conn_max_age}; "
            f"warm-up {WARMUP_SECONDS} s per view"
        )
        runs = []
        for round_number in range(args.rounds + 1):  # round 0: the warm-up
            for view in views:
                run = run_wrk(
                    wrk, lua, base_url, view, arbiter_pid,
                    seconds=args.seconds if round_number else WARMUP_SECONDS,
                    round=round_number,
                    # A run repeating another's visitors would only make repeat clicks.
                    seed=random.Random(f"{seed} {conn_max_age} {round_number} {view.name}")
                    .randrange(1 << 30),
                )  # fmt: skip
                if not round_number:
                    continue
                runs.append(run)
                print(
                    f"  round {round_number} {view.name:8} {run.rps:8.0f} req/s  "
                    f"p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms  "
                    f"{run.cpu_us:.0f} us worker CPU/request  "
                    f"{run.requests} responses, {run.rows} clicks written"
                )
    return Result(conn_max_age, runs, load_before, os.getloadavg()[0])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="length of each run (15)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per view, interleaved (3)")
    parser.add_argument("--partners", type=int, default=2000, help="partners to create (2000)")
    parser.add_argument("--seed", type=int, help="seed of the partner codes and of wrk")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare view")
    parser.add_argument(
        "--conn-max-age",
        type=conn_max_ages,
        default=conn_max_ages(os.environ.get("CONN_MAX_AGE") or "0"),
        help="CONN_MAX_AGE of the server, or several (e.g. 0,60) measured one after the "
        "other (default: $CONN_MAX_AGE, else 0 as in the settings)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="update the section in docs/performance.md"
    )
    args = parser.parse_args()
    if args.seconds < 1 or args.rounds < 1 or args.partners < 1:
        parser.error("--seconds, --rounds and --partners must be at least 1")
    return args


def conn_max_ages(text: str) -> list[int]:
    try:
        values = [int(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not whole seconds: {text!r}") from None
    if any(value < 0 for value in values):
        raise argparse.ArgumentTypeError("CONN_MAX_AGE must be 0 or more here")
    return values


def setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DEBUG"] = "false"
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def prepare_data(*, partners: int, rng: random.Random) -> tuple[list[str], int]:
    """Fresh bench data: the random partner codes, and the baseline's own partner."""
    from django.core.management import call_command
    from django.db import connection

    from partners.models import Click, Partner, TrackingLink
    from partners.services import tracking_link_save

    call_command("migrate", interactive=False, verbosity=0)
    tables = ", ".join(
        connection.ops.quote_name(model._meta.db_table) for model in (Click, Partner, TrackingLink)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    tracking_link_save(
        link=TrackingLink(code="home", name="Home", destination=DESTINATION, is_default=True)
    )
    codes: set[str] = set()
    while len(codes) < partners:
        codes.add(
            rng.choice(string.ascii_lowercase)
            + "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(5, 11)))
        )
    ordered = sorted(codes)
    Partner.objects.bulk_create(
        Partner(code=code, name=f"Bench {code}", email=f"{code}@bench.example")
        for code in [*ordered, BASELINE_PARTNER_CODE]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    baseline_partner_id = Partner.objects.get(code=BASELINE_PARTNER_CODE).id
    return ordered, baseline_partner_id


def lua_script(codes: list[str]) -> str:
    return LUA % {"codes": ", ".join(f'"{code}"' for code in codes), "user_agent": BROWSER}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(*, port: int, baseline_partner_id: int, conn_max_age: int, log: Path):
    """gunicorn in its own process group, stopped on the way out whatever happens.

    Yields the arbiter's pid: its children are the workers.
    """
    executable = Path(sys.executable).parent / "gunicorn"
    # Not the project's gunicorn.conf.py: its worker recycling would restart workers
    # in the middle of runs. Everything that matters here is on the command line.
    config = log / "gunicorn-bench.conf.py"
    config.write_text("# bench/redirect.py: everything is on the command line.\n")
    command = [
        str(executable if executable.exists() else shutil.which("gunicorn") or "gunicorn"),
        "referral_program.wsgi",
        "--config", str(config),
        "--chdir", str(BASE_DIR),
        "--workers", str(WORKERS),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
    ]  # fmt: skip
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "BENCH_PARTNER_ID": str(baseline_partner_id),
        "CONN_MAX_AGE": str(conn_max_age),
        # Each request is another visitor (random X-Forwarded-For), so no click is a repeat.
        "TRUSTED_PROXY_DEPTH": "1",
        # The tracker writes each click itself (no Redis click buffer).
        "CLICK_BUFFER_URL": "",
    }
    log_file = log / f"gunicorn-{port}.log"
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    with log_file.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process.pid
    except Exception:
        print(f"gunicorn's log:\n{log_file.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        process.terminate()  # the arbiter stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        signal.signal(signal.SIGTERM, previous_sigterm)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def http_get(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"User-Agent": BROWSER})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def wait_until_ready(port: int, *, code: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http_get(port, f"/bench/bare/{code}/")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {timeout} s") from None
            time.sleep(0.2)


def check_response(port: int, *, view: View, code: str) -> None:
    """One request by hand: a 302 to the shop with the signed rp_ref cookie."""
    from partners.tokens import decode_token

    response = http_get(port, f"{view.prefix}{code}/")
    cookie = re.search(r"rp_ref=([^;]+)", response.getheader("Set-Cookie") or "")
    if not (
        response.status == 302
        and (response.getheader("Location") or "").startswith(DESTINATION)
        and cookie
        and decode_token(cookie.group(1))
    ):
        raise RuntimeError(
            f"{view.prefix}{code}/ answered {response.status} "
            f"{response.getheader('Location')!r}, not a redirect with a valid rp_ref cookie"
        )


def click_count() -> int:
    from partners.models import Click

    return Click.objects.count()


def settled_click_count() -> int:
    """The click count once requests still in flight when wrk stopped have finished.

    Gives up waiting after 10 s (someone else writing clicks): the check then fails.
    """
    count = click_count()
    for _ in range(33):
        time.sleep(0.3)
        again = click_count()
        if again == count:
            break
        count = again
    return count


def workers_cpu_seconds(arbiter_pid: int) -> float:
    """User + system CPU time of the arbiter's children (the workers) so far."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process is gone
            continue
        if int(fields[1]) == arbiter_pid:  # ppid; utime and stime follow 10 fields later
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str,
    lua: Path,
    base_url: str,
    view: View,
    arbiter_pid: int,
    *,
    seconds: int,
    round: int,
    seed: int,
) -> Run:
    before = settled_click_count()
    cpu_before = workers_cpu_seconds(arbiter_pid)
    command = [
        wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", str(lua), base_url, "--", view.prefix, str(seed),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^BENCH_JSON (.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    cpu = workers_cpu_seconds(arbiter_pid) - cpu_before
    figures = json.loads(match.group(1))
    return Run(
        view=view.name,
        round=round,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        status_errors=figures["status_errors"],
        socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        rows=settled_click_count() - before,
        worker_cpu_seconds=cpu,
    )


def verify(result: Result, views: list[View]) -> list[str]:
    """Every response a 2xx/3xx, and one click per completed request of a writing view.

    wrk stops with up to one request per connection in flight: the server may finish
    those (and write their clicks) without wrk counting them, so a run may write up to
    CONNECTIONS more clicks than it counted responses, never fewer.
    """
    problems = []
    writes = {view.name: view.writes for view in views}
    for run in result.runs:
        name = f"CONN_MAX_AGE={result.conn_max_age} round {run.round} {run.view}"
        if run.status_errors or run.socket_errors:
            problems.append(
                f"{name}: {run.status_errors} non-2xx/3xx responses, "
                f"{run.socket_errors} socket errors"
            )
        extra = run.rows - (run.requests if writes[run.view] else 0)
        if not 0 <= extra <= (CONNECTIONS if writes[run.view] else 0):
            problems.append(f"{name}: {run.requests} responses but {run.rows} clicks written")
    return problems


def median_of(runs: list[Run], view: str, attribute: str) -> float:
    return statistics.median(getattr(run, attribute) for run in runs if run.view == view)


def markdown_report(
    results: list[Result], views: list[View], *, args: argparse.Namespace, database: str
) -> str:
    command = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench .venv/bin/python "
    command += f"bench/redirect.py --seconds {args.seconds}"
    if args.rounds != 3:
        command += f" --rounds {args.rounds}"
    if args.partners != 2000:
        command += f" --partners {args.partners}"
    if args.no_bare:
        command += " --no-bare"
    command += f" --conn-max-age {','.join(str(r.conn_max_age) for r in results)}"
    lines = [
        f"Command: `{command} --write-docs`",
        "",
        f"Machine: {machine()}.",
        "",
        f"Code: {code_version()}.",
        "",
        f"Set-up: gunicorn, {WORKERS} sync workers, no access log, not the project's "
        "`gunicorn.conf.py` (no worker recycling); `bench.settings` (the project's settings "
        "plus the baseline URLs), DEBUG off; database "
        f"`{database}` with {args.partners:,} active partners and a default tracking link. "
        f"wrk `-t{THREADS} -c{CONNECTIONS} -d{args.seconds}s --latency` on 127.0.0.1, a "
        "random partner code and a random visitor IP address (X-Forwarded-For, "
        "TRUSTED_PROXY_DEPTH=1) per request, a browser's User-Agent, no cookie; the "
        "tracker writes each click itself (CLICK_BUFFER_URL empty). After a "
        f"{WARMUP_SECONDS} s warm-up of each view, {args.rounds} rounds of "
        f"{', '.join(view.name for view in views)}, interleaved. The figures are medians "
        "of the rounds (each round's req/s in brackets); a ratio is the median of the "
        "rounds' ratios, each run against the run of its round. "
        f"Taken {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
    ]
    for result in results:
        lines += ["", *result_report(result, views)]
    return "\n".join(lines)


def per_round_ratio(runs: list[Run], view: str, against: str, attribute: str = "rps") -> float:
    """The median over rounds of view/against, each run against the one of its own round."""
    by_round = {(run.view, run.round): getattr(run, attribute) for run in runs}
    rounds = sorted({run.round for run in runs})
    return statistics.median(by_round[view, r] / by_round[against, r] for r in rounds)


def result_report(result: Result, views: list[View]) -> list[str]:
    runs = result.runs
    rps = {view.name: median_of(runs, view.name, "rps") for view in views}
    ratio = per_round_ratio(runs, "tracker", "baseline")
    per_round = [
        tracker.rps / baseline.rps
        for tracker, baseline in zip(
            (r for r in runs if r.view == "tracker"),
            (r for r in runs if r.view == "baseline"),
            strict=True,
        )
    ]
    cpu_ratio = per_round_ratio(runs, "baseline", "tracker", "cpu_us")
    header = "| view | req/s | p50 | p99 | worker CPU per request | vs baseline |"
    header += " vs bare |" if "bare" in rps else ""
    table = [header, "|---" * header.count(" |") + "|"]
    for view in views:
        row = (
            f"| {view.label} | {rps[view.name]:,.0f} "
            f"({', '.join(f'{r.rps:,.0f}' for r in runs if r.view == view.name)}) "
            f"| {median_of(runs, view.name, 'p50_ms'):.1f} ms "
            f"| {median_of(runs, view.name, 'p99_ms'):.1f} ms "
            f"| {median_of(runs, view.name, 'cpu_us'):,.0f} µs "
            f"| {per_round_ratio(runs, view.name, 'baseline'):.2f} |"
        )
        if "bare" in rps:
            row += f" {per_round_ratio(runs, view.name, 'bare'):.2f} |"
        table.append(row)
    tracker_runs = [r for r in runs if r.view == "tracker"]
    responses = sum(r.requests for r in tracker_runs)
    rows = sum(r.rows for r in tracker_runs)
    connections = (
        "a new PostgreSQL connection per request, the settings' default"
        if result.conn_max_age == 0
        else "persistent PostgreSQL connections"
    )
    verdict = "meets" if round(ratio, 2) >= 0.8 else "is below"
    return [
        f"### CONN_MAX_AGE={result.conn_max_age} ({connections})",
        "",
        *table,
        "",
        f"**Tracker / baseline: {ratio:.2f}** (per round "
        f"{', '.join(f'{r:.2f}' for r in per_round)}); it {verdict} the issue's target of "
        "0.8. By the workers' CPU time per request, which other load on the machine "
        f"disturbs less: {cpu_ratio:.2f} (baseline CPU / tracker CPU). Load average "
        f"(1 min) {result.load_before:.2f} before, {result.load_after:.2f} after.",
        "",
        f"Clicks: the tracker runs answered {responses:,} requests, none with an error, "
        f"and wrote {rows:,} clicks: one per answered request, plus {rows - responses} "
        "requests in flight when wrk stopped, which the server finished.",
    ]


def machine() -> str:
    from django.db import connection

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = found.group(1).strip() if found else cpu
    debian = ""
    with contextlib.suppress(OSError):
        debian = f"Debian {Path('/etc/debian_version').read_text().strip()}, "
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("django", "gunicorn", "psycopg2-binary")
    )
    return (
        f"{os.cpu_count()} x {cpu}, {debian}PostgreSQL {postgres} (local, default "
        f"settings), Python {platform.python_version()}, {versions}, "
        f"{wrk.split(' [')[0].strip() or 'wrk'}"
    )


def code_version() -> str:
    """The commit measured, and the files of the measured apps that differ from it."""

    def git(*arguments: str) -> str:
        result = subprocess.run(
            ["git", *arguments], cwd=BASE_DIR, capture_output=True, text=True, check=False
        )
        return result.stdout if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit:
        return "not a git checkout"
    changed = git("status", "--porcelain", "--", "partners", "referral_program").splitlines()
    if not changed:
        return f"commit {commit}"
    return f"commit {commit} with uncommitted changes to " + ", ".join(
        f"`{line[3:]}`" for line in changed
    )


def write_docs(report: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else DOCS_INTRO
    section = f"{SECTION_HEADING}\n\n{report}\n"
    pattern = re.compile(rf"^{re.escape(SECTION_HEADING)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = f"{text.rstrip()}\n\n{section}"
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(text)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("Interrupted; gunicorn stopped.", file=sys.stderr)
        sys.exit(130)
