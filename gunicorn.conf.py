"""gunicorn settings for production (see docs/deployment.md). Every value can be
overridden by its GUNICORN_* environment variable or on the command line."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (leaks in any library stay bounded), staggered.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 20000))
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "referral_program.wsgi:application"


def worker_exit(server, worker):
    """Push the clicks this worker still holds before it goes (graceful restarts)."""
    from partners.services.clicks import click_buffer

    buffer = click_buffer()
    if buffer is not None:
        buffer.flush()
