"""CSV downloads: streamed, safe to open in a spreadsheet, and checked before they start.

Cells people typed go through `csv_text` (referral_program/csv_cells.py). A streamed
answer sends its `200` and headers before the rows are read; a query that fails
then breaks the download off half-way (issue 21, finding 4). So `csv_response` reads the
first rows (and with them runs the first query) before it answers, and a failure there is an
ordinary error answer; the rest follows CSV_CHUNK rows at a time.
"""

import csv
from collections.abc import Iterable, Iterator, Sequence
from itertools import batched, chain, islice
from typing import Any

from django.http import StreamingHttpResponse

from referral_program.csv_cells import csv_text

__all__ = ["CSV_CHUNK", "csv_response", "csv_text"]

CSV_CHUNK = 500


class _Echo:
    """A file whose write() hands back what it was given, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    """A CSV download that is written while it is sent: `rows` is read lazily (its first
    CSV_CHUNK rows before answering), and the text goes out CSV_CHUNK rows at a time."""
    writer = csv.writer(_Echo())
    rows = iter(rows)
    first = list(islice(rows, CSV_CHUNK))

    def lines() -> Iterator[str]:
        if header:  # PayPal's payout file has no header row
            yield writer.writerow(header)
        for chunk in batched(chain(first, rows), CSV_CHUNK):
            yield "".join(writer.writerow(row) for row in chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
