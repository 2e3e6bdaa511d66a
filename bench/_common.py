"""Helpers shared by bench/events.py and bench/ledger.py.

The server side (gunicorn in its own process group, a free port, the workers' CPU time, the
machine's description) is bench/redirect.py's own and is imported from there; this module
adds what redirect.py has only in a click-specific form: running wrk with any Lua script and
reading the figures its `done()` prints, replacing any one section of docs/performance.md,
the code version of several apps, and Django set-up for another database.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DOCS = BASE_DIR / "docs" / "performance.md"

if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench.redirect import (  # noqa: E402  (needs BASE_DIR on sys.path)
    free_port,
    gunicorn,
    machine,
    wait_until_ready,
    workers_cpu_seconds,
)

__all__ = [
    "BASE_DIR",
    "DOCS",
    "code_version",
    "docs_section_write",
    "free_port",
    "gunicorn",
    "load_average",
    "machine",
    "query_timer",
    "require_bench_database",
    "setup_django",
    "wait_until_ready",
    "workers_cpu_seconds",
    "wrk_run",
]

# What a Lua script's done() prints on one line, for wrk_run to read.
BENCH_JSON = "BENCH_JSON "


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
