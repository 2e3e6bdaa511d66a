"""`python manage.py import_events FILE.jsonl [--dry-run] [--batch-size N]`: backfill events
from a file (commissions.importing)."""

import sys
import time

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from commissions.importing import (
    DEFAULT_BATCH_SIZE,
    FAILED,
    MAX_BATCH_SIZE,
    events_import,
)

KIND_NAMES = {
    "web_form": "web forms",
    "order": "orders",
    "refund": "refunds",
    "payment": "customer payments",
}


def error_lines(errors: object, prefix: str = "") -> list[str]:
    """`field.sub.0.name: message` for every message of a (nested) errors dict."""
    if isinstance(errors, dict):
        lines = []
        for name, value in errors.items():
            lines += error_lines(value, f"{prefix}.{name}" if prefix else str(name))
        return lines
    if isinstance(errors, list) and any(isinstance(item, dict | list) for item in errors):
        return [line for item in errors for line in error_lines(item, prefix)]
    messages = errors if isinstance(errors, list) else [errors]
    return [f"{prefix or 'line'}: {' '.join(map(str, messages))}"]


def _count_lines(path: str) -> int:
    with open(path, "rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))


class Command(BaseCommand):
    help = (
        "Import web-form, order, refund and payment events from a JSON Lines file (one event "
        "per line, "
        "the API's JSON, kind named by \"kind\" or read from the shape) through the API's "
        "rules, in batches. Safe to run again: events already recorded are skipped. Each bad "
        "line is reported with its number; exits non-zero if any line failed."
    )
    # The checks of the models it writes; not those of the pages and URLs (importing every
    # view to check the URLs took a tenth of a second's start of each run).
    requires_system_checks = [Tags.models]

    def add_arguments(self, parser):
        parser.add_argument("file", help="The .jsonl file ('-' for standard input).")
        parser.add_argument("--dry-run", action="store_true", help="Validate only; write nothing.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Lines per batch (one transaction each), 1 to {MAX_BATCH_SIZE:,} "
            f"(default {DEFAULT_BATCH_SIZE:,}).",
        )

    def handle(self, *args, file: str, dry_run: bool, batch_size: int, **options):
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be 1 to {MAX_BATCH_SIZE:,}.")
        from_stdin = file == "-"
        try:
            stream = sys.stdin.buffer if from_stdin else open(file, "rb")  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        # The bar (rate and ETA) goes to whichever of stderr and stdout is a terminal.
        terminal = next((s for s in (sys.stderr, sys.stdout) if s.isatty()), None)
        progress = tqdm(
            total=None if from_stdin or terminal is None else _count_lines(file),
            unit=" lines",
            unit_scale=True,
            desc="dry run" if dry_run else "import",
            file=terminal,
            disable=terminal is None,
            smoothing=0.1,
        )

        def on_line(number, outcome, errors):
            if outcome == FAILED:
                for message in error_lines(errors or {}):
                    progress.write(f"line {number}: {message}", file=self.stderr._out)

        started = time.monotonic()
        try:
            report = events_import(
                lines=stream,
                dry_run=dry_run,
                batch_size=batch_size,
                on_line=on_line,
                on_batch=lambda batch: progress.update(batch[-1].number - progress.n),
            )
        finally:
            progress.close()
            if not from_stdin:
                stream.close()
        seconds = time.monotonic() - started
        done = f"{report.valid} valid" if dry_run else f"{report.recorded} recorded"
        self.stdout.write(
            f"{report.lines} lines: {done}, {report.duplicates} already recorded, "
            f"{len(report.failed)} failed."
        )
        kinds = ", ".join(
            f"{KIND_NAMES.get(kind, kind)} {n:,}"
            for kind, n in sorted(report.recorded_by_kind.items())
        )
        self.stdout.write(
            f"{seconds:.1f} s, {report.lines / max(seconds, 1e-9):,.0f} lines/s"
            + (f"; recorded: {kinds}" if kinds else "")
            + "."
        )
        if not dry_run:
            self.stdout.write(
                f"{report.emails_skipped:,} email(s) skipped: imported events email nobody "
                "and log no notification."
            )
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} line(s) failed: "
                + ", ".join(str(n) for n, _ in report.failed[:20])
                + (" ..." if len(report.failed) > 20 else "")
            )
