"""Five slow clients against gunicorn alone, and against gunicorn behind nginx (issue 21).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rp_bench .venv/bin/python bench/slow_clients.py

gunicorn's sync workers read a request's headers themselves: a client that sends them a
byte at a time holds a worker until gunicorn's `timeout` (30 s) kills it. Five such clients
hold the two workers of a small host, and the site stops answering: the outside test of
issue 21 saw `/healthz` time out for about 30 s. docs/deployment.md therefore requires a
buffering proxy (nginx) in front: nginx reads each request whole (and gives up on a slow
one after `client_header_timeout`) before gunicorn sees it.

This starts gunicorn (2 sync workers, bench.settings, a free port) and nginx (a free port,
proxying to that gunicorn with the proxy settings of docs/deployment.md), then for each of
the two doors: 40 requests to `/go/<partner>/` and `/healthz` in turn, one at a time
(5 s timeout each), first alone, then while --slow clients (5) send their headers a few
bytes every --drip seconds (2) for --seconds (35). It prints the latency of each phase and
how many requests got no answer in time. Exit code 1 if a request through nginx failed.

Needs nginx (`apt-get install -y nginx-light`; not needed by the test suite). The database
is migrated and gets one partner, `slowbench`; its name must contain "bench".
"""

import argparse
import contextlib
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BROWSER, bench_django, free_port, gunicorn

# The proxy settings of docs/deployment.md, for one upstream on 127.0.0.1 (no TLS here).
NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream referral_program {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        client_header_timeout 10s;
        client_body_timeout 10s;
        send_timeout 30s;
        keepalive_timeout 15s;
        client_max_body_size 20m;
        location / {{
            proxy_pass http://referral_program;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(*, port: int, upstream: int, folder: Path):
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        sys.exit("nginx is not installed: apt-get install -y nginx-light")
    user = ""
    if os.geteuid() == 0:  # nginx's workers run as www-data: let them use the temp folders
        user = "user www-data;"
        folder.chmod(0o755)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir()
        if user:
            shutil.chown(folder / sub, "www-data")
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port, upstream=upstream, user=user))
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def get(port: int, path: str, timeout: float) -> float | None:
    """Seconds to a complete answer, or None when none came within `timeout`."""
    began = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", path, headers={"User-Agent": BROWSER})
        connection.getresponse().read()
        connection.close()
    except OSError:
        return None
    return time.monotonic() - began


def slow_client(port: int, stop: threading.Event, drip: float) -> None:
    """A request whose headers never end: a few bytes every `drip` seconds."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        n = 0
        while not stop.wait(drip):
            n += 1
            sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())


def measure(port: int, *, count: int, timeout: float) -> dict:
    times = []
    for n in range(count):
        path = "/healthz" if n % 2 else "/go/slowbench/"
        times.append(get(port, path, timeout))
    answered = sorted(t for t in times if t is not None)
    return {
        "requests": count,
        "answered": len(answered),
        "median_ms": statistics.median(answered) * 1000 if answered else None,
        "max_ms": answered[-1] * 1000 if answered else None,
    }


def run_door(name: str, port: int, args) -> list[tuple[str, str, dict]]:
    rows = [(name, "alone", measure(port, count=args.requests, timeout=args.timeout))]
    stop = threading.Event()
    slow = [
        threading.Thread(target=slow_client, args=(port, stop, args.drip), daemon=True)
        for _ in range(args.slow)
    ]
    for thread in slow:
        thread.start()
    time.sleep(1)  # the slow clients are connected and holding whatever they hold
    during = measure(port, count=args.requests, timeout=args.timeout)
    rows.append((name, f"{args.slow} slow clients", during))
    stop.set()
    for thread in slow:
        thread.join(5)
    time.sleep(args.settle)
    return rows


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=5, help="slow clients (5)")
    parser.add_argument("--drip", type=float, default=2.0, help="seconds between their bytes")
    parser.add_argument("--requests", type=int, default=40, help="requests per phase (40)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a request may take")
    parser.add_argument("--settle", type=float, default=35.0, help="wait after the slow ones")
    args = parser.parse_args()

    if not bench_django("postgres://postgres@127.0.0.1:5432/rp_bench"):
        return 2
    from django.core.management import call_command

    from partners.models import Partner

    call_command("migrate", verbosity=0)
    Partner.objects.get_or_create(code="slowbench", defaults={"name": "Slow Bench"})

    rows = []
    with tempfile.TemporaryDirectory(prefix="rp-slow-") as tmp:
        folder = Path(tmp)
        direct, proxied = free_port(), free_port()
        with (
            gunicorn(port=direct, conn_max_age=60, log=folder),
            nginx(port=proxied, upstream=direct, folder=folder),
        ):
            for port in (direct, proxied):
                deadline = time.monotonic() + 30
                while get(port, "/healthz", 1) is None and time.monotonic() < deadline:
                    time.sleep(0.2)
            rows += run_door("gunicorn alone (2 sync workers)", direct, args)
            rows += run_door("nginx in front of gunicorn", proxied, args)

    print(
        f"\n{args.slow} slow clients (headers dripped every {args.drip:g} s); "
        f"{args.requests} requests per phase to /go/slowbench/ and /healthz in turn, "
        f"one at a time, {args.timeout:g} s timeout each\n"
    )
    print("| door | phase | answered | median ms | slowest ms |")
    print("|---|---|---|---|---|")
    for door, phase, got in rows:
        print(
            f"| {door} | {phase} | {got['answered']} of {got['requests']} | "
            f"{cell(got['median_ms'])} | {cell(got['max_ms'])} |"
        )
    proxied_rows = [got for door, _, got in rows if door.startswith("nginx")]
    failed = [got for got in proxied_rows if got["answered"] < got["requests"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
