"""Backfills: events from a JSON Lines file, through the same rules as the API (issue 6).

Every line is one event, the JSON the API takes, with its kind named by `"kind"`
(`web_form`, `order`, `refund`) or, when left out, read from its shape (`items`: an order;
`order_id` without `contact`: a refund; otherwise a web form). Lines are validated by the
API's serializers and recorded by the same services, so re-running a file records
nothing twice (event ids). Imported events email nobody: their notifications are logged
as skipped.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from rest_framework import serializers

from .models import EventKind
from .serializers import OrderEventSerializer, RefundEventSerializer, WebFormEventSerializer
from .services import UnknownOrder, event_result, order_record, refund_record, web_form_record

KINDS: dict[str, tuple[type[serializers.Serializer], Callable]] = {
    EventKind.WEB_FORM: (WebFormEventSerializer, web_form_record),
    EventKind.ORDER: (OrderEventSerializer, order_record),
    EventKind.REFUND: (RefundEventSerializer, refund_record),
}


@dataclass
class ImportReport:
    lines: int = 0
    recorded: int = 0
    duplicates: int = 0
    valid: int = 0  # dry runs: lines that would be recorded
    failed: list[tuple[int, dict]] = field(default_factory=list)


def event_kind(payload: dict) -> str:
    kind = payload.get("kind") or payload.get("type")
    if kind:
        return str(kind).replace("-", "_")
    if "items" in payload:
        return EventKind.ORDER
    if "order_id" in payload and "contact" not in payload:
        return EventKind.REFUND
    return EventKind.WEB_FORM


def _errors(error: Exception) -> dict:
    if isinstance(error, ValidationError):
        return error.message_dict if hasattr(error, "error_dict") else {"event": error.messages}
    if isinstance(error, UnknownOrder):
        return {"order_id": [f"No order {error.args[0]!r} was recorded."]}
    return {"event": [str(error)]}


def event_import_line(text: str, *, dry_run: bool) -> tuple[str, dict | None]:
    """Record one line; ("recorded" | "duplicate" | "valid" | "failed", errors)."""
    try:
        payload = json.loads(text)
    except ValueError as error:
        return "failed", {"line": [f"Not JSON: {error}"]}
    if not isinstance(payload, dict):
        return "failed", {"line": ["Each line must be one JSON object."]}
    kind = event_kind(payload)
    if kind not in KINDS:
        return "failed", {"kind": [f"Unknown kind {kind!r}: use {', '.join(KINDS)}."]}
    event = {k: v for k, v in payload.items() if k not in ("kind", "type")}
    serializer_class, record = KINDS[kind]
    if isinstance(event.get("event_id"), str) and event_result(
        kind=kind, event_id=event["event_id"]
    ):
        return "duplicate", None
    serializer = serializer_class(data=event)
    if not serializer.is_valid():
        return "failed", serializer.errors
    if dry_run:
        return "valid", None
    options = {} if kind == EventKind.REFUND else {"notify": False}
    try:
        intake = record(data=serializer.validated_data, payload=event, **options)
    except (ValidationError, UnknownOrder) as error:
        return "failed", _errors(error)
    return ("duplicate" if intake.duplicate else "recorded"), None


def events_import(
    *,
    lines: Iterable[str],
    dry_run: bool = False,
    on_line: Callable[[int, str, dict | None], None] | None = None,
) -> ImportReport:
    """Import every line, going on after a bad one; `on_line(number, outcome, errors)`."""
    report = ImportReport()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        report.lines += 1
        outcome, errors = event_import_line(text, dry_run=dry_run)
        if outcome == "failed":
            report.failed.append((number, errors))
        elif outcome == "duplicate":
            report.duplicates += 1
        elif outcome == "valid":
            report.valid += 1
        else:
            report.recorded += 1
        if on_line is not None:
            on_line(number, outcome, errors)
    return report
