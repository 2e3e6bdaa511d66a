"""What tests that start other processes (a Celery worker, gunicorn) hand them."""

from django.db import connection


def database_url() -> str:
    """The test database as a DATABASE_URL, for a process started by a transactional test
    to share it: PostgreSQL's, or the SQLite test file (settings.py gives SQLite tests a file
    of their own, which other processes can open; an in-memory database they could not)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"
