"""Every table of the project as a fingerprint: for tests that prove a door wrote nothing."""

import hashlib

from django.apps import apps
from django.db import connection


def table_snapshot() -> dict[str, tuple[int, str]]:
    """Each managed table's row count and a digest of its rows. PostgreSQL works it out in
    one query; SQLite (no string_agg over whole rows) row by row here."""
    tables = sorted({m._meta.db_table for m in apps.get_models() if m._meta.managed})
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = ", ".join(
                f"(SELECT count(*) FROM {quote(t)}), "
                f"(SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
                f"FROM {quote(t)} r)"
                for t in tables
            )
            cursor.execute(f"SELECT {columns}")
            row = cursor.fetchone()
            return {t: (row[2 * n], row[2 * n + 1]) for n, t in enumerate(tables)}
        snapshot = {}
        for table in tables:
            cursor.execute(f"SELECT * FROM {quote(table)}")
            rows = sorted(repr(r) for r in cursor.fetchall())
            snapshot[table] = (len(rows), hashlib.md5("|".join(rows).encode()).hexdigest())
        return snapshot
