"""The database layer on the ground floor: the one place where SQL is prepared, executed,
bulk-inserted and copied, for both apps (`partners`, `commissions`). Raw SQL elsewhere
lives only in modules that say why the ORM is not enough, and runs through `execute`, so
the one `PREPARED_STATEMENTS` setting governs every statement (docs/architecture.md).

- `rows`: table and column names from the models, values as the ORM sends them, rows as
  the ORM reads them;
- `statements`: `execute`, prepared once per connection on PostgreSQL;
- `bulk`: one INSERT of many rows, the rows of several tables in one statement, COPY,
  and a bulk writer's plans made again as its tables grow.
"""

from .bulk import (
    CopyData,
    InsertPart,
    Returned,
    copy_data,
    copy_send,
    defaulted,
    ids_reserve,
    insert,
    insert_together,
    plans_renewed,
)
from .rows import columns, converted, converted_rows, db, fields, json_text, prepared, quote, table
from .statements import execute, prepared_lost

__all__ = [
    "CopyData",
    "InsertPart",
    "Returned",
    "columns",
    "converted",
    "converted_rows",
    "copy_data",
    "copy_send",
    "db",
    "defaulted",
    "execute",
    "fields",
    "ids_reserve",
    "insert",
    "insert_together",
    "json_text",
    "plans_renewed",
    "prepared",
    "prepared_lost",
    "quote",
    "table",
]
