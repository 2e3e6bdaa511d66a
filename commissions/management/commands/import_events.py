"""`python manage.py import_events FILE.jsonl [--dry-run]`: backfill events from a file."""

import os
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from commissions.importing import events_import


def _flat(errors: dict, prefix: str = "") -> list[str]:
    lines = []
    for name, value in errors.items():
        where = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, dict):
            lines += _flat(value, where)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for n, item in enumerate(value):
                lines += _flat(item, f"{where}.{n}") if item else []
        else:
            lines.append(f"{where}: {' '.join(map(str, value))}")
    return lines


class Command(BaseCommand):
    help = (
        "Import web-form, order and refund events from a JSON Lines file (one event per line, "
        'the API\'s JSON, kind named by "kind" or read from the shape). Safe to run again: '
        "events already recorded are skipped. Exits non-zero if any line failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The .jsonl file ('-' for standard input).")
        parser.add_argument("--dry-run", action="store_true", help="Validate only; write nothing.")

    def handle(self, *args, file: str, dry_run: bool, **options):
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
        size = os.fstat(stream.fileno()).st_size if file != "-" else None
        progress = tqdm(
            total=size, unit="B", unit_scale=True, desc="import", disable=not sys.stderr.isatty()
        )

        def lines():
            for raw in stream:
                progress.update(len(raw))
                yield raw.decode("utf-8", errors="replace")

        def on_line(number, outcome, errors):
            if outcome == "failed":
                for message in _flat(errors or {}):
                    progress.write(f"line {number}: {message}", file=self.stderr._out)

        try:
            report = events_import(lines=lines(), dry_run=dry_run, on_line=on_line)
        finally:
            progress.close()
            if stream is not sys.stdin.buffer:
                stream.close()
        done = f"{report.valid} valid" if dry_run else f"{report.recorded} recorded"
        self.stdout.write(
            f"{report.lines} lines: {done}, {report.duplicates} already recorded, "
            f"{len(report.failed)} failed."
        )
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} line(s) failed: "
                + ", ".join(str(n) for n, _ in report.failed[:20])
                + (" ..." if len(report.failed) > 20 else "")
            )
