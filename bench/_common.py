"""Helpers shared by the benchmarks under bench/.

The server side (gunicorn in its own process group on a free port, a Celery worker, the
workers' CPU time, the machine's description), running wrk with any Lua script and reading
the figures its `done()` prints, replacing one section of docs/performance.md, the code
version of several apps, and Django set-up for a bench database.
"""

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
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DOCS = BASE_DIR / "docs" / "performance.md"

if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

# What the benchmarks send as the User-Agent: a browser's (the tracker skips bots).
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0 Safari/537.36"
)
WORKERS = 2

__all__ = [
    "BASE_DIR",
    "BROWSER",
    "DOCS",
    "MEASURED_APPS",
    "WORKERS",
    "bench_django",
    "bench_env",
    "celery_worker",
    "code_version",
    "docs_section_write",
    "free_port",
    "gunicorn",
    "http_get",
    "load_average",
    "machine",
    "process_cpu_seconds",
    "query_timer",
    "report_end",
    "report_head",
    "require_bench_database",
    "seeded",
    "setup_django",
    "venv_command",
    "wait_until_ready",
    "workers_cpu_seconds",
    "wrk_run",
]

# What a Lua script's done() prints on one line, for wrk_run to read.
BENCH_JSON = "BENCH_JSON "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _process_group(command: list[str], *, env: Mapping[str, str], log_file: Path, name: str):
    """Run `command` in its own process group, stopped on the way out whatever happens.

    Yields the process id. On an error inside the block the end of its log is printed.
    """
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    with log_file.open("w") as out:
        process = subprocess.Popen(
            command, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process.pid
    except Exception:
        print(f"{name}'s log:\n{log_file.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        process.terminate()  # gunicorn's arbiter and Celery's main process stop their children
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        signal.signal(signal.SIGTERM, previous_sigterm)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def bench_env(*, conn_max_age: int, overrides: Mapping[str, str] | None = None) -> dict:
    """The environment of a bench server process: bench.settings, DEBUG off, each request
    another visitor behind one trusted proxy, and by default no broker and no click buffer
    (every write synchronous)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "BENCH_PARTNER_ID": "0",
        "CONN_MAX_AGE": str(conn_max_age),
        "TRUSTED_PROXY_DEPTH": "1",
        "CELERY_BROKER_URL": "",
        "CLICK_BUFFER_URL": "",
        **(overrides or {}),
    }


def venv_command(name: str) -> str:
    """A console script of this Python's environment (gunicorn, celery), else the PATH's."""
    executable = Path(sys.executable).parent / name
    return str(executable if executable.exists() else shutil.which(name) or name)


@contextlib.contextmanager
def gunicorn(
    *, port: int, conn_max_age: int, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[int]:
    """gunicorn (WORKERS sync workers) in its own process group, stopped on the way out.

    Yields the arbiter's pid: its children are the workers. `env` adds to or overrides
    `bench_env`.
    """
    # Not the project's gunicorn.conf.py: its worker recycling would restart workers
    # in the middle of runs. Everything that matters here is on the command line.
    config = log / "gunicorn-bench.conf.py"
    config.write_text("# bench/: everything is on the command line.\n")
    command = [
        venv_command("gunicorn"),
        "referral_program.wsgi",
        "--config", str(config),
        "--chdir", str(BASE_DIR),
        "--workers", str(WORKERS),
        "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
    ]  # fmt: skip
    with _process_group(
        command,
        env=bench_env(conn_max_age=conn_max_age, overrides=env),
        log_file=log / f"gunicorn-{port}.log",
        name="gunicorn",
    ) as pid:
        yield pid


@contextlib.contextmanager
def celery_worker(
    *, queue: str, conn_max_age: int, log: Path, env: Mapping[str, str]
) -> Iterator[int]:
    """One Celery worker process (solo pool) with beat, consuming `queue`; `env` must name
    the broker (CELERY_BROKER_URL). Yields its pid."""
    command = [
        venv_command("celery"), "--app", "referral_program", "worker", "--beat",
        "--pool", "solo", "--queues", queue, "--loglevel", "warning",
        "--schedule", str(log / "celerybeat-schedule"), "--without-heartbeat",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    with _process_group(
        command,
        env={**bench_env(conn_max_age=conn_max_age, overrides=env), "CELERY_QUEUE": queue},
        log_file=log / "celery-worker.log",
        name="celery worker",
    ) as pid:
        yield pid


def process_cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time so far of process `pid`, or of its children."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process is gone
            continue
        # fields[1] is the ppid; utime and stime follow 10 fields later
        if (children and int(fields[1]) == pid) or (not children and stat.parent.name == str(pid)):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> dict[int, float]:
    """User + system CPU time so far of every PostgreSQL process on this machine (the
    backends, the WAL writer, the checkpointer), by process id: the database's share of a
    run is `postgres_cpu_spent` between two of these."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process is gone
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK"
            )
    return found


def postgres_cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """The CPU time PostgreSQL's processes spent between two `postgres_cpu_seconds`: a
    process that started since counts whole; one that ended (an autovacuum worker) is left
    out, with what it spent."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def workers_cpu_seconds(arbiter_pid: int) -> float:
    """User + system CPU time of the arbiter's children (the workers) so far."""
    return process_cpu_seconds(arbiter_pid, children=True)


def http_get(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"User-Agent": BROWSER})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def wait_until_ready(port: int, *, path: str = "/bench/bare/ready/", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http_get(port, path)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {timeout} s") from None
            time.sleep(0.2)


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
    wrk = "wrk not installed"
    with contextlib.suppress(OSError):
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


def setup_django(default_database_url: str) -> None:
    """Django with bench.settings (the project's settings plus the bench URLs), DEBUG off."""
    os.environ.setdefault("DATABASE_URL", default_database_url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DEBUG"] = "false"
    import django

    django.setup()


def require_bench_database() -> str | None:
    """The reason to refuse, unless the database is PostgreSQL and named like a bench one."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or "bench" not in database["NAME"]:
        return (
            f"Refusing to reset {database['NAME']!r}: point DATABASE_URL at a PostgreSQL "
            "database whose name contains 'bench'."
        )
    return None


def bench_django(default_database_url: str) -> bool:
    """`setup_django`, then `require_bench_database`: False, with the reason printed, when
    the database is not one a benchmark may reset (its `main` then returns 2)."""
    setup_django(default_database_url)
    if refusal := require_bench_database():
        print(refusal, file=sys.stderr)
        return False
    return True


MEASURED_APPS = ("partners", "commissions", "referral_program", "bench")


def report_head(command: str, apps: tuple[str, ...] = MEASURED_APPS) -> list[str]:
    """A report's first lines: the command that makes it (with --write-docs), the machine,
    and the version of the code measured (`apps`)."""
    return [
        f"Command: `{command} --write-docs`",
        "",
        f"Machine: {machine()}.",
        "",
        f"Code: {code_version(*apps)}.",
        "",
    ]


def load_average() -> float:
    return os.getloadavg()[0]


def wrk_run(
    wrk: str,
    lua: Path,
    url: str,
    *,
    seconds: int,
    threads: int,
    connections: int,
    script_args: list[str],
) -> dict:
    """Run wrk with `lua` against `url` (127.0.0.1 only) and return the JSON object the
    script's done() printed after BENCH_JSON."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"benchmarks send traffic to 127.0.0.1 only, not {url}")
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(lua), url, "--", *script_args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(rf"^{BENCH_JSON}(.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return json.loads(match.group(1))


def code_version(*apps: str) -> str:
    """The commit measured, and the files of `apps` that differ from it."""

    def git(*arguments: str) -> str:
        result = subprocess.run(
            ["git", *arguments], cwd=BASE_DIR, capture_output=True, text=True, check=False
        )
        return result.stdout if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit:
        return "not a git checkout"
    changed = git("status", "--porcelain", "--", *apps).splitlines()
    if not changed:
        return f"commit {commit}"
    return f"commit {commit} with uncommitted changes to " + ", ".join(
        f"`{line[3:]}`" for line in changed
    )


def seeded(seed: int | None) -> tuple[int, random.Random]:
    """The seed given, or a new one (the report names it, to run the same data again), and
    a generator made from it."""
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 30)
    return seed, random.Random(seed)


def report_end(report: str, problems: list[str], *, heading: str, write_docs: bool) -> int:
    """Print the report and each problem; with `write_docs` and no problem, the report
    replaces the section `heading` of docs/performance.md. The exit code: 1 if a problem."""
    print()
    print(report)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if write_docs and not problems:
        docs_section_write(heading, report)
        print(f"Updated {DOCS.relative_to(BASE_DIR)}")
    return 1 if problems else 0


def docs_section_write(heading: str, body: str) -> None:
    """Replace the section of docs/performance.md that starts with `heading` (a "## " line)
    up to the next "## " heading, or add it at the end. The file is read right before it is
    written, so sections other benchmarks wrote in the meantime are kept."""
    if not heading.startswith("## "):
        raise ValueError("a section heading starts with '## '")
    text = DOCS.read_text()
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = f"{text.rstrip()}\n\n{section}"
    DOCS.write_text(text)


@contextlib.contextmanager
def query_timer() -> Iterator[list[tuple[str, float]]]:
    """Every SQL statement the default connection runs inside the block, with the seconds
    each took from the driver call to its return (to the microsecond, unlike the rounded
    times of CaptureQueriesContext). Commits are not statements and are not counted."""
    from django.db import connection

    timed: list[tuple[str, float]] = []

    def wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            cursor = context["cursor"]
            try:
                text = connection.ops.last_executed_query(cursor, sql, params)
            except Exception:
                text = sql
            timed.append((text, elapsed))

    with connection.execute_wrapper(wrapper):
        yield timed
