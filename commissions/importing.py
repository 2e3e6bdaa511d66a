"""Backfills: events from a JSON Lines file, through the same rules as the API (issue 6).

Every line is one event, the JSON the API takes, with its kind named by `"kind"`
(`web_form`, `order`, `refund`, `payment`) or, when left out, read from its shape (`items`:
an order; `order_id` without `contact`: a refund; otherwise a web form: a payment is always
named). Imported events email
nobody and log no notification (SPEC §5.6): the summary counts the emails skipped.
Re-running a file records nothing twice (event ids).

The file is read in batches of lines (`--batch-size`). Per batch, on PostgreSQL:

1. Each line is parsed and checked like a request body (`referral_program.parsers`), then
   validated by the API's own rules (`commissions.validation`), with the partner codes of
   the whole batch read in one query. Events already recorded (one query) or repeated
   earlier in the batch are duplicates, answered before validation as the API does.
2. Web forms and orders are recorded together, in file order: what their rules need is read
   for the whole batch (the defaults and partner chains, the contacts, their history and the
   clicks of their IP addresses: a query each, only when the policy can use them), then
   each event is decided in memory by the API's own engine (`commissions.intake`: `track`,
   then the event's write plan, `order_plan` or `web_form_plan`), carrying each contact's
   lead partner and new history entries from one event to the next, as the API would see
   them one after the other. The plans' rows are then written in one transaction: the
   events first (their unique constraint stops any copy that the API recorded meanwhile:
   the batch is then worked out again without it), the contacts in one upsert, the rest
   by COPY.
3. Refunds and customer payments (the events that name an order, `AFTER_ORDERS`) go one by
   one through the API's services (`refund_record`, `payment_record`), in file order, after
   the batch's orders: they may name an order of the same batch, but not one of a later line.

On other databases (SQLite, for trying things out) web forms and orders go one by one
through the services too, in file order.
"""

import gc
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from referral_program.db import (
    columns,
    copy_data,
    copy_send,
    db,
    ids_reserve,
    insert,
    plans_renewed,
    table,
)
from referral_program.parsers import MAX_DEPTH, document_errors, with_token_kept

from . import validation
from .attribution import (
    HISTORY_AND_COOKIES,
    Attribution,
    ContactLead,
    CouponState,
    FirstOrder,
    PartnerState,
    Touch,
    expiry,
    history_pick,
    valid_clicks,
)
from .intake import (
    EventPlan,
    Tracked,
    cookie_clicks,
    explicit,
    looks_by_ip,
    needs_history,
    order_plan,
    track,
    web_form_plan,
)
from .intake.plan import (
    COMMISSION_FIELDS,
    LEAD_FIELDS,
    ORDER_FIELDS,
    chain_partners,
    history_entries,
)
from .models import (
    Commission,
    Contact,
    Event,
    EventKind,
    Lead,
    Order,
    Referral,
    ReferralSource,
)
from .selectors import (
    Chain,
    EngineSettings,
    contact_leads,
    coupons_by_code,
    engine_with_chains,
    events_recorded,
    first_orders,
    history_picks,
    ip_clicks,
    partner_chains,
    referrals_known,
)
from .serializers import partners_named
from .services.contacts import REFERRAL_FIELDS, contact_conflict_sql, history_entry, normalise_email
from .services.events import UnknownOrder
from .services.notifications import emails_wanted
from .services.orders import order_record
from .services.payments import payment_record
from .services.refunds import refund_record
from .services.web_forms import web_form_record
from .webhooks import WebhookEventType, active_endpoints, webhook_commission_created

RULES: dict[str, validation.Record] = {
    EventKind.WEB_FORM: validation.WEB_FORM,
    EventKind.ORDER: validation.ORDER,
    EventKind.REFUND: validation.REFUND,
    EventKind.PAYMENT: validation.PAYMENT,
}
RECORDERS: dict[str, Callable] = {
    EventKind.WEB_FORM: web_form_record,
    EventKind.ORDER: order_record,
    EventKind.REFUND: refund_record,
    EventKind.PAYMENT: payment_record,
}
# The events that name an order: recorded one by one through their service, after the
# batch's web forms and orders, in file order (they can still fail when recorded).
AFTER_ORDERS = frozenset({EventKind.REFUND, EventKind.PAYMENT})
DEFAULT_BATCH_SIZE = 2000
MAX_BATCH_SIZE = 20_000
RECORDED, DUPLICATE, VALID, FAILED = "recorded", "duplicate", "valid", "failed"
# A batch is worked out again when a concurrent writer changed what it read; after this many
# tries its events go one by one through the services (which wait for each other).
BATCH_TRIES = 3
WRITER_SWITCH_INTERVAL = 0.0005  # seconds; see `_writer`
# Objects left per line of a batch (made, less freed) before the cycle collector runs; a
# batch of orders leaves about 8 (what the next batch keeps); see `garbage_collected_per_batch`.
GARBAGE_PER_LINE = 100


@dataclass
class ImportReport:
    lines: int = 0
    recorded: int = 0
    duplicates: int = 0
    valid: int = 0  # dry runs: lines that would be recorded
    failed: list[tuple[int, dict]] = field(default_factory=list)
    recorded_by_kind: dict[str, int] = field(default_factory=dict)
    # The emails the API would have queued for the recorded events: imported events email
    # nobody and log no notification (SPEC §5.6).
    emails_skipped: int = 0


@dataclass
class Line:
    """One line of the file and what became of it."""

    number: int
    kind: str = ""
    payload: dict | None = None  # the event as stored (without "kind")
    data: dict | None = None  # validated
    errors: dict | None = None
    outcome: str | None = None
    emails_skipped: int = 0  # recorded: the emails the API would have queued for it
    # A stored event worked out again (`commissions.replay`): the ids it was recorded with.
    event_pk: int | None = None
    order_pk: int | None = None

    @property
    def key(self) -> tuple[str, Any]:
        return self.kind, (self.payload or {}).get("event_id")


def event_kind(payload: dict) -> str:
    kind = payload.get("kind") or payload.get("type")
    if kind:
        return str(kind).replace("-", "_")
    if "items" in payload:
        return EventKind.ORDER
    if "order_id" in payload and "contact" not in payload:
        return EventKind.REFUND
    return EventKind.WEB_FORM


# Digits made zeros, to find a run of 19 (an integer orjson would read as a float beyond
# 64 bits, where Python's json, the API's parser, reads an integer).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * 19


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _parse(raw: bytes) -> tuple[Any, bool]:
    """The JSON as the API's parser reads it, and whether it must be walked for what the
    API also refuses (`document_errors`). orjson reads it when it reads it as Python's json
    does (three times faster): valid UTF-8, no integer beyond 64 bits, no number beyond a
    float, no unpaired surrogate (it refuses those), and then a NUL can only come from a
    \\u escape and too deep a nesting from many brackets. Anything else is read by Python's
    json (NaN and Infinity refused, as the API does), which also words the errors."""
    if _LONG_INTEGER not in raw.translate(_DIGITS_TO_ZERO):
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            deep = raw.count(b"{") + raw.count(b"[") > MAX_DEPTH
            return payload, deep or b"\\u" in raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _NotJSON(f"Not UTF-8: {error}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant), True
    except RecursionError:
        raise _NotJSON(f"JSON nested more than {MAX_DEPTH} levels deep.") from None
    except ValueError as error:
        raise _NotJSON(f"Not JSON: {error}") from None


class _NotJSON(Exception):
    pass


def line_parse(number: int, text: str | bytes) -> Line:
    """A line read as the API reads a body: UTF-8 JSON (no NaN or Infinity), no NUL
    characters, unpaired surrogates or numbers too large for a float anywhere, nesting at
    most 16 deep; one object, of a known kind."""
    line = Line(number=number)
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        payload, walk = _parse(raw)
    except _NotJSON as error:
        line.errors = {"line": [str(error)]}
        return line
    if not isinstance(payload, dict):
        line.errors = {"line": ["Each line must be one JSON object."]}
        return line
    payload = with_token_kept(payload)
    if walk:
        problems = document_errors(payload)
        if isinstance(problems, str):
            line.errors = {"line": [problems]}
            return line
        if problems:
            line.errors = problems
            return line
    kind = event_kind(payload)
    if kind not in RULES:
        line.errors = {"kind": [f"Unknown kind {kind!r}: use {', '.join(RULES)}."]}
        return line
    line.kind = kind
    line.payload = {k: v for k, v in payload.items() if k not in ("kind", "type")}
    return line


def events_import(
    *,
    lines: Iterable[str | bytes],
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_line: Callable[[int, str, dict | None], None] | None = None,
    on_batch: Callable[[list[Line]], None] | None = None,
) -> ImportReport:
    """Import every line, in batches of `batch_size`, going on after a bad one;
    `on_line(number, outcome, errors)` for each line, `on_batch(lines)` after each batch.

    On PostgreSQL, outside a transaction, one batch is written (by a thread with its own
    connection) while the next is worked out: the next takes the contacts as the batch being
    written leaves them, and counts its events as recorded. Inside a transaction (a caller's,
    or a test's) every batch is written in it, one after the other."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"The batch size is 1 to {MAX_BATCH_SIZE:,}.")
    report = ImportReport()

    def done(work: _Work) -> None:
        for line in work.lines:
            _count(report, line)
            if on_line is not None:
                on_line(line.number, line.outcome, line.errors)
        if on_batch is not None:
            on_batch(work.lines)

    connection = db()
    overlap = not dry_run and connection.vendor == "postgresql" and not connection.in_atomic_block
    with _writer(overlap) as submit, garbage_collected_per_batch(batch_size) as collect:
        writing: tuple[_Work, Future] | None = None
        for batch in _batches(lines, batch_size):
            work = batch_prepare(batch, dry_run=dry_run, writing=writing and writing[0])
            if writing is not None:
                writing[1].result()
                done(writing[0])
                if writing[0].again:  # worked out again: what `work` took from it may differ
                    work.rework()
            writing = (work, submit(work.commit))
            collect()
        if writing is not None:
            writing[1].result()
            done(writing[0])
    return report


def _count(report: ImportReport, line: Line) -> None:
    report.lines += 1
    if line.outcome == FAILED:
        report.failed.append((line.number, line.errors or {}))
    elif line.outcome == DUPLICATE:
        report.duplicates += 1
    elif line.outcome == VALID:
        report.valid += 1
    else:
        report.recorded += 1
        report.recorded_by_kind[line.kind] = report.recorded_by_kind.get(line.kind, 0) + 1
        report.emails_skipped += line.emails_skipped


@contextmanager
def _writer(overlap: bool) -> Iterator[Callable[[Callable[[], None]], Future]]:
    """Runs a batch's write: in a thread of its own (its own connection, closed at the end)
    when `overlap`, else at once in this thread."""
    if not overlap:

        def at_once(job: Callable[[], None]) -> Future:
            future: Future = Future()
            job()
            future.set_result(None)
            return future

        yield at_once
        return
    interval = sys.getswitchinterval()
    # The writer needs the interpreter for a moment after each wait on PostgreSQL (a COPY's
    # next chunk, the next statement) while this thread computes the next batch: by default
    # it waits up to 5 ms for it each time, a tenth of the import.
    sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as pool:
        try:
            yield pool.submit
        finally:
            pool.submit(lambda: connections[DEFAULT_DB_ALIAS].close()).result()
            sys.setswitchinterval(interval)


@contextmanager
def garbage_collected_per_batch(batch_size: int) -> Iterator[Callable[[], None]]:
    """Python's cycle collector off during the import (and a what-if replay, which works
    batches out the same way): it would otherwise walk the many
    objects a batch makes over and over (a fifth of the time). After a batch, it runs only
    once the objects made since its last run, less those freed, pass GARBAGE_PER_LINE per
    line of a batch: a batch's objects are freed by reference counting once it is written
    (they make no cycles: a collection after each batch found nothing to free, and walking
    every live object each time cost a tenth of the import), so this runs only if garbage
    cycles do pile up, and bounds them."""
    enabled = gc.isenabled()
    gc.freeze()  # what exists before the import is never collected: skip it
    gc.disable()
    threshold = GARBAGE_PER_LINE * batch_size

    def collect() -> None:
        if gc.get_count()[0] > threshold:
            gc.collect()

    try:
        yield collect
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _batches(lines: Iterable[str | bytes], size: int) -> Iterator[list[Line]]:
    batch = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        batch.append(line_parse(number, text))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def batch_prepare(batch: list[Line], *, dry_run: bool, writing: "_Work | None" = None) -> "_Work":
    """Validate a batch and work out its web forms and orders, ready to write. `writing`:
    the batch being written meanwhile, whose events count as recorded and whose contacts
    are taken as it leaves them."""
    for line in batch:
        if line.errors is not None:
            line.outcome = FAILED
    parsed = [line for line in batch if line.outcome is None]
    known = _events_recorded(parsed) | (writing.accepted if writing else set())
    codes = set()
    for line in parsed:
        codes |= validation.codes_named(RULES[line.kind], line.payload)
    partners = partners_named(codes)
    accepted = set()
    for line in parsed:
        if line.key in known or line.key in accepted:
            line.outcome = DUPLICATE  # answered before validation, as the API does
            continue
        try:
            line.data = RULES[line.kind].validate(line.payload, partners)
        except validation.Invalid as error:
            line.errors = error.detail
            if line.kind not in AFTER_ORDERS:  # a refund's copy may follow: decided below
                line.outcome = FAILED
            continue
        if line.kind not in AFTER_ORDERS:  # refunds can still fail when recorded
            accepted.add(line.key)
    if dry_run:
        for line in parsed:
            if line.outcome is None:
                line.outcome = FAILED if line.errors else VALID
        return _Work(lines=batch)
    intake = [line for line in parsed if line.outcome is None and line.kind not in AFTER_ORDERS]
    work = _Work(lines=batch, intake=intake, accepted=accepted)
    if intake and db().vendor == "postgresql":
        carried = writing.batch if writing and writing.batch else None
        work.batch = Batch(
            intake,
            carried=carried and carried.contacts,
            first_orders=carried and carried.first_orders,
        )
        work.batch.prepare()
    return work


@dataclass
class _Work:
    """A validated batch, its web forms and orders worked out (PostgreSQL), to commit."""

    lines: list[Line]
    intake: list[Line] = field(default_factory=list)
    accepted: set = field(default_factory=set)  # the keys of the events it records
    batch: "Batch | None" = None
    again: bool = False  # worked out again when written (a concurrent writer)

    def rework(self) -> None:
        """Work the batch out again from what is stored (the batch written before it was
        worked out again: what this one took from it may differ)."""
        if self.batch is not None:
            self.batch = Batch(self.intake)
            self.batch.prepare()

    def commit(self) -> None:
        """Write the web forms and orders, then record the refunds and payments one by one."""
        if self.batch is not None:
            try:
                self.batch.write()
            except (_Again, IntegrityError):
                self.again = True
                _intake_again(self.intake)
        else:
            for line in self.intake:
                if line.outcome is None:
                    _record_one(line)
        _refunds(self.lines)


def _record_one(line: Line) -> None:
    """One event through its service, as the API records it."""
    options = {} if line.kind in AFTER_ORDERS else {"notify": False}
    try:
        intake = RECORDERS[line.kind](data=line.data, payload=line.payload, **options)
    except (ValidationError, UnknownOrder) as error:
        line.outcome, line.errors = FAILED, _errors(error)
        return
    line.outcome = DUPLICATE if intake.duplicate else RECORDED
    line.emails_skipped = intake.emails_skipped


def _errors(error: Exception) -> dict:
    if isinstance(error, ValidationError):
        return error.message_dict if hasattr(error, "error_dict") else {"event": error.messages}
    if isinstance(error, UnknownOrder):
        return {"order_id": [f"No order {error.args[0]!r} was recorded."]}
    return {"event": [str(error)]}


def _refunds(batch: list[Line]) -> None:
    """The batch's refunds and payments, in file order, after its orders; one naming an
    order of a later line fails as the API would have answered it (the order was not there
    yet)."""
    later_orders = {
        line.payload["event_id"]: line.number
        for line in batch
        if line.kind == EventKind.ORDER and line.outcome == RECORDED
    }
    refunds = [line for line in batch if line.kind in AFTER_ORDERS and line.outcome is None]
    # A bad copy of a refund recorded before is answered before validation (a duplicate).
    stored = _events_recorded([line for line in refunds if line.errors is not None])
    recorded = set()
    for line in refunds:
        if line.errors is not None:
            line.outcome = DUPLICATE if line.key in recorded or line.key in stored else FAILED
            continue
        if later_orders.get(line.data["order_id"], 0) > line.number:
            line.outcome, line.errors = FAILED, _errors(UnknownOrder(line.data["order_id"]))
            continue
        _record_one(line)
        if line.outcome == RECORDED:
            recorded.add(line.key)


# --- Web forms and orders of a batch (PostgreSQL) ----------------------------------------------

EVENT_WRITTEN = ("id", "kind", "event_id", "payload", "received_at", "occurred_at", "result")
CONTACT_WRITE = ("id", "email", "first_name", "last_name", "lead_partner", "lead_partner_set_at")
CONTACT_WRITE += ("lead_trace", "created_at")


class _Again(Exception):
    """A concurrent writer changed what the batch read: work it out again."""


def _intake_again(lines: list[Line]) -> None:
    """After a write that failed on a concurrent writer's rows: the events that writer
    recorded are duplicates, the others are worked out again from what is stored; after
    BATCH_TRIES, one by one through the services."""
    for _ in range(BATCH_TRIES):
        pending = [line for line in lines if line.outcome is None]
        recorded = _events_recorded(pending)
        for line in pending:
            if line.key in recorded:
                line.outcome = DUPLICATE
        pending = [line for line in pending if line.outcome is None]
        if not pending:
            return
        batch = Batch(pending)
        try:
            batch.prepare()
            batch.write()
            return
        except (_Again, IntegrityError):
            continue
    for line in lines:
        if line.outcome is None:
            _record_one(line)


@dataclass
class _Entry:
    """A history entry the batch adds."""

    pk: int | None  # taken before the write when a later event may pick it (its id is traced)
    touch: Touch
    state: PartnerState  # its partner's
    source: str

    @property
    def expires_at(self) -> datetime | None:
        return expiry(self.touch.at, self.state.cookie_days)


@dataclass
class BatchContact:
    """A contact of the batch, as its events leave it."""

    email: str
    pk: int | None = None  # None until its id is taken: a new contact
    lead: ContactLead = field(default_factory=ContactLead)
    first_name: str = ""
    last_name: str = ""
    new: bool = False  # not stored yet: made by this batch
    entries: list[_Entry] = field(default_factory=list)  # the history entries it adds
    # History entries of the batch being written meanwhile (not stored yet), and the click
    # ids of its whole history.
    carried: list[_Entry] = field(default_factory=list)
    clicks: set[str] = field(default_factory=set)

    def taken_on(self) -> "BatchContact":
        """This contact as the next batch starts with it, while this batch is written."""
        return BatchContact(
            email=self.email,
            pk=self.pk,
            lead=self.lead,
            carried=self.entries,
            clicks=set(self.clicks),
        )


@dataclass
class _Event:
    """A web form or order of the batch, and what its rules made of it."""

    line: Line
    at: datetime
    email: str
    clicks: list[Touch]
    explicit_lead: Attribution | None
    explicit_sale: Attribution | None
    credits: bool = True  # a partner is left to attribution
    counted: bool = False  # a cookie click counts
    pk: int | None = None
    order_pk: int | None = None
    tracked: Tracked | None = None
    plan: EventPlan | None = None
    lines: tuple[int, int] = (0, 0)  # orders: its commission rows in the batch's

    @property
    def data(self) -> dict:
        return self.line.data

    @property
    def is_order(self) -> bool:
        return self.line.kind == EventKind.ORDER


class StoredWorld:
    """What a batch reads beyond its own events: what is stored now (the importer's). A
    replay (`commissions.replay`) reads the world as it stood, with proposed terms."""

    def engine_and_chains(self, named: Iterable[int]) -> tuple[EngineSettings, dict[int, Chain]]:
        return engine_with_chains(named)

    def chains(self, partner_ids: Iterable[int]) -> dict[int, Chain]:
        return partner_chains(partner_ids)

    def first_orders(self, subscription_ids: Iterable[str]) -> dict[str, FirstOrder]:
        return first_orders(subscription_ids)

    def contact_leads(self, emails: list[str]) -> dict[str, tuple[int, ContactLead]]:
        return contact_leads(emails)

    def history_picks(
        self, wanted: list[tuple[int, str, datetime]], *, rule: str
    ) -> dict[int, tuple[Touch, Chain]]:
        return history_picks(wanted, rule=rule)

    def referrals_known(self, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        return referrals_known(pairs)

    def ids_reserve(self, counts: Mapping[type, int]) -> dict[type, list[int]]:
        return ids_reserve(counts)


STORED = StoredWorld()


class _BatchReader:
    """The importer's `Reader` for event `n` of a batch: what the batch read for it, with
    the history entries its earlier events (and the batch being written meanwhile) added,
    as the API's reader would read them with the earlier events written."""

    def __init__(self, batch: "Batch", n: int, contact: BatchContact):
        self.batch, self.n, self.contact = batch, n, contact

    def history(
        self, *, email: str, at: datetime, rule: str, chains: dict[int, Chain]
    ) -> tuple[list[Touch], dict[int, PartnerState]]:
        found = []
        if self.n in self.batch.history:
            touch, chain = self.batch.history[self.n]
            chains[touch.partner_id] = chain
            found.append((touch, chain.partner.state()))
        for entry in (*self.contact.carried, *self.contact.entries):
            expires, state = entry.expires_at, entry.state
            if state.active and entry.touch.at <= at and (expires is None or expires > at):
                touch = Touch(
                    ref=str(entry.pk),
                    partner_id=entry.touch.partner_id,
                    at=entry.touch.at,
                    expires_at=expires,
                )
                found.append((touch, state))
        picked = history_pick(found, rule)
        if picked is None:
            return [], {}
        touch, state = picked
        return [touch], {touch.partner_id: state}

    def ip_clicks(self, *, ip: str, at: datetime) -> tuple[list[Touch], dict[int, PartnerState]]:
        return self.batch.ip_clicks.get(self.n, ([], {}))

    def coupon(self, code: str) -> CouponState | None:
        return self.batch.coupons.get(code.lower())

    def first_order(self, subscription_id: str) -> FirstOrder | None:
        # Stored, of the batch written meanwhile, or of an earlier event of this batch.
        return self.batch.first_orders.get(subscription_id)

    def chains(self, partner_ids: Iterable[int | None], chains: dict[int, Chain]) -> None:
        # The batch read the chains of every partner its events may credit (`_attribute`).
        missing = {pk for pk in partner_ids if pk is not None and pk not in chains}
        if missing:
            chains.update(self.batch.world.chains(missing))


class Batch:
    """The web forms and orders of one batch: read what their rules need, work them out in
    file order (`plan`), then make their rows (`prepare`) and write every row in one
    transaction (`write`). `carried`: the contacts of the batch being written meanwhile, as
    it leaves them; `first_orders`: its subscriptions' first orders (SPEC §10); `world`:
    where it reads the rest (`StoredWorld`: as stored now; a replay's: as it stood);
    `traced` False: the commission lines without their traces (a replay only sums them)."""

    def __init__(
        self,
        lines: list[Line],
        carried: Mapping[str, "BatchContact"] | None = None,
        first_orders: Mapping[str, FirstOrder] | None = None,
        world: StoredWorld = STORED,
        traced: bool = True,
    ):
        self.now = timezone.now()
        self.world, self.traced = world, traced
        self.carried = carried or {}
        self.carried_first_orders = first_orders or {}
        tokens: dict[str, list[Touch]] = {}
        self.events = []
        for line in lines:
            data = line.data
            token = data.get("tracking_token", "")
            if token not in tokens:
                tokens[token] = cookie_clicks(token)
            named = [explicit(data.get("lead_partner"))]
            if line.kind == EventKind.ORDER:
                named.append(explicit(data.get("sale_partner")))
            self.events.append(
                _Event(
                    line=line,
                    at=data.get("occurred_at") or self.now,
                    email=normalise_email(data["contact"]["email"]),
                    clicks=tokens[token],
                    explicit_lead=named[0],
                    explicit_sale=named[1] if len(named) > 1 else None,
                    credits=sum(1 for e in named if e) < len(named),
                    pk=line.event_pk,
                    order_pk=line.order_pk,
                )
            )

    def plan(self) -> None:
        """Read what the events' rules need and decide each event (`_Event.plan`)."""
        self._read()
        self._attribute()
        self._plans()

    def prepare(self) -> None:
        self.plan()
        self._rows()

    # Reads ------------------------------------------------------------------------------------

    def _read(self) -> None:
        """What the rules need, a query each: the defaults and the chains of every partner
        named or clicked; the contacts; where the policy can use them, each event's stored
        history entry and its IP address's clicks, and which clicks the contacts' histories
        hold; then the ids of the new rows."""
        named = set()
        for event in self.events:
            named.update(e.partner_id for e in (event.explicit_lead, event.explicit_sale) if e)
            named.update(t.partner_id for t in event.clicks)
        self.engine, self.chains = self.world.engine_and_chains(named)
        policy = self.engine.policy
        self.coupons = coupons_by_code(e.data.get("coupon") for e in self.events if e.is_order)
        # The subscriptions' first orders: stored, else the batch written meanwhile's; the
        # batch's own are added as its events are worked out (`_first_order_planned`).
        subscriptions = {s["id"] for e in self.events if (s := e.data.get("subscription"))}
        self.first_orders = {
            **{k: v for k, v in self.carried_first_orders.items() if k in subscriptions},
            **self.world.first_orders(subscriptions),
        }
        self.first_planned: dict[str, int] = {}  # subscription id -> its first order's event
        emails = sorted({e.email for e in self.events})
        self.contacts = _contacts_read(emails, self.carried, self.world)
        may_history, may_ip, known = [], [], []
        states = {pk: chain.partner.state() for pk, chain in self.chains.items()}
        for n, event in enumerate(self.events):
            counted = valid_clicks(event.clicks, states, event.at)
            event.counted = bool(counted)
            by_ip = looks_by_ip(policy, event.data.get("ip"))
            contact = self.contacts[event.email]
            if contact.pk is not None:
                known += [(contact.pk, t.ref) for t in counted]
                if needs_history(policy, counted=event.counted, by_ip=by_ip, credits=event.credits):
                    may_history.append((n, event.email, event.at))
            if not counted and by_ip:
                may_ip.append((n, event.data["ip"], event.at))
        self.history = self.world.history_picks(may_history, rule=policy.partner_selection)
        self.ip_clicks = ip_clicks(may_ip)
        for n, _, _ in may_ip:
            contact = self.contacts[self.events[n].email]
            if contact.pk is not None:
                known += [(contact.pk, t.ref) for t in self.ip_clicks[n][0]]
        by_pk = {c.pk: c for c in self.contacts.values() if c.pk is not None}
        for contact_pk, click in self.world.referrals_known(known):
            by_pk[contact_pk].clicks.add(click)
        entries = 0
        if policy.tracking_method == HISTORY_AND_COOKIES:  # where a later event may pick one
            entries = sum(len(e.clicks) for e in self.events) + len(may_ip)
            entries += sum(1 for e in self.events if e.is_order and e.data.get("coupon"))
        new = [c for c in self.contacts.values() if c.pk is None]
        events = [e for e in self.events if e.pk is None]  # a replay's have theirs
        orders = [e for e in self.events if e.is_order and e.order_pk is None]
        ids = self.world.ids_reserve(
            {Event: len(events), Order: len(orders), Contact: len(new), Referral: entries}
        )
        for event, pk in zip(events, ids[Event], strict=True):
            event.pk = pk
        for event, pk in zip(orders, ids[Order], strict=True):
            event.order_pk = pk
        for contact, pk in zip(new, ids[Contact], strict=True):
            contact.pk, contact.new = pk, True
        self.entry_ids = iter(ids[Referral])

    # Rules ------------------------------------------------------------------------------------

    def _attribute(self) -> None:
        """Attribution and each contact's new history, event by event in file order (a
        later event may pick an entry an earlier one added); then the chains of partners
        an event may credit that were not read yet (a partner found by IP address, a
        contact's lead partner), in one query."""
        credited = {c.lead.partner_id for c in self.contacts.values()}
        for n, event in enumerate(self.events):
            contact = self.contacts[event.email]
            person = event.data["contact"]
            contact.first_name = person.get("first_name") or contact.first_name
            contact.last_name = person.get("last_name") or contact.last_name
            event.tracked = self._track(n, event, contact)
            credited.add(event.tracked.attribution.partner_id)
            if event.tracked.renewal is not None:
                credited.add(event.tracked.renewal.lead.partner_id)
            self._first_order_tracked(n, event)
            for entry in history_entries(event.tracked):
                if entry.source != ReferralSource.COUPON:  # a coupon is no click: each time
                    if entry.touch.ref in contact.clicks:
                        continue  # once per click and contact, as the API adds them
                    contact.clicks.add(entry.touch.ref)
                pk = next(self.entry_ids, None)
                contact.entries.append(_Entry(pk, entry.touch, entry.partner, entry.source))
        missing = {pk for pk in credited if pk is not None and pk not in self.chains}
        if missing:
            self.chains.update(self.world.chains(missing))

    def _track(self, n: int, event: "_Event", contact: BatchContact) -> Tracked:
        return track(
            reader=_BatchReader(self, n, contact),
            policy=self.engine.policy,
            chains=self.chains,
            email=event.email,
            at=event.at,
            clicks=event.clicks,
            ip=event.data.get("ip"),
            credits=event.credits,
            coupon_code=event.data.get("coupon"),
            subscription=event.data.get("subscription"),
        )

    def _first_order_tracked(self, n: int, event: "_Event") -> None:
        """A subscription's first order in this batch, before any stored: later renewals
        find it, its partners still unknown until it is planned (`_first_order_planned`)."""
        subscription = event.data.get("subscription") or {}
        if subscription.get("cycle") == 1 and subscription["id"] not in self.first_orders:
            self.first_orders[subscription["id"]] = FirstOrder(
                order_id=event.data["event_id"], at=event.at, lead_partner_id=None,
                sale_partner_id=None,
            )  # fmt: skip
            self.first_planned[subscription["id"]] = n

    def _first_order_planned(self, n: int, event: "_Event") -> None:
        """Once a first order of this batch is planned, its partners are known: a renewal
        of it later in the batch is tracked again over them (`_rows`)."""
        subscription = event.data.get("subscription") or {}
        if self.first_planned.get(subscription.get("id")) == n:
            row = dict(zip(ORDER_FIELDS, event.plan.order, strict=True))
            self.first_orders[subscription["id"]] = FirstOrder(
                order_id=row["order_id"], at=row["occurred_at"],
                lead_partner_id=row["lead_partner"], sale_partner_id=row["sale_partner"],
            )  # fmt: skip

    # Plans and rows ---------------------------------------------------------------------------

    def _plans(self) -> None:
        """Each event's plan in file order (`intake.order_plan`, `web_form_plan`: the API's
        own decision, each contact's lead partner carried from one event to the next), and
        the rows of the orders, leads and commission lines (`self.rows`). The plans'
        history entries are those `_attribute` added (once per click and contact)."""
        engine, chains = self.engine, self.chains
        self.partners = partners = chain_partners(chains)
        self.rows = rows = {"order": [], "lead": [], "commission": []}
        for n, event in enumerate(self.events):
            data, contact = event.data, self.contacts[event.email]
            renewal = event.tracked.renewal
            if renewal is not None and data["subscription"]["id"] in self.first_planned:
                # Of a first order planned above: its partners known now. Tracked again,
                # the same but for them (the renewal's history comes from its cookie alone).
                event.tracked = self._track(n, event, contact)
            common = {
                "reader": _BatchReader(self, n, contact), "data": data, "at": event.at,
                "chains": chains, "tracked": event.tracked, "explicit_lead": event.explicit_lead,
                "contact_pk": contact.pk, "contact": contact.lead, "event_pk": event.pk,
            }  # fmt: skip
            if event.is_order:
                plan = order_plan(
                    **common,
                    engine=engine,
                    explicit_sale=event.explicit_sale,
                    email=event.email,
                    order_pk=event.order_pk,
                    traced=self.traced,
                )
                rows["order"].append((event.order_pk, *plan.order))
                event.lines = (len(rows["commission"]), len(rows["commission"]) + len(plan.lines))
                rows["commission"] += plan.lines
            else:
                plan = web_form_plan(**common)
                rows["lead"].append(plan.lead)
            if plan.lead_fix is not None:
                contact.lead = plan.lead_fix
            event.plan = plan
            self._first_order_planned(n, event)
            # Imported events email nobody and log no notification (SPEC §5.6).
            event.line.emails_skipped = emails_wanted(
                credited=plan.credited, engine=engine, switches=partners
            )

    def _rows(self) -> None:
        """The plans made into the COPY text (`self.copies`, in the order they are written)
        and the upsert of the contacts already stored."""
        rows = self.rows
        codes = {pk: p.code for pk, p in self.partners.items()}
        lines = rows["commission"]
        ids = ids_reserve({Commission: len(lines)})[Commission]
        events, self.paid = [], []
        for event in self.events:
            start, end = event.lines
            result = event.plan.result(ids=ids[start:end], codes=codes)
            if end > start:
                self.paid.append((event.order_pk, ids[start:end]))
            events.append(
                (event.pk, event.line.kind, event.data["event_id"], event.line.payload,
                 self.now, event.at, result)
            )  # fmt: skip
        contacts = sorted(self.contacts.values(), key=lambda c: c.email)  # one locking order
        values = {
            contact.email: (
                contact.pk, contact.email, contact.first_name, contact.last_name,
                contact.lead.partner_id, contact.lead.set_at, contact.lead.trace or {}, self.now,
            )
            for contact in contacts
        }  # fmt: skip
        self.stored = [(values[c.email], c.lead.partner_id) for c in contacts if not c.new]
        entries = [
            (entry.pk, *history_entry(
                contact_id=contact.pk, touch=entry.touch, source=entry.source,
                cookie_days=entry.state.cookie_days, now=self.now,
            ))
            for contact in contacts
            for entry in contact.entries
        ]  # fmt: skip
        # The events first: their unique constraint stops a copy that another writer (the
        # API) records meanwhile: COPY waits for it, then fails, and the batch is worked
        # out again. Then the contacts made by the batch (a conflict: the same).
        self.copies = [
            copy_data(Event, EVENT_WRITTEN, events),
            copy_data(Contact, CONTACT_WRITE, [values[c.email] for c in contacts if c.new]),
            copy_data(Order, ("id", *ORDER_FIELDS), rows["order"]),
            copy_data(
                Commission,
                ("id", *COMMISSION_FIELDS),
                [(pk, *line) for pk, line in zip(ids, lines, strict=True)],
            ),
            copy_data(Lead, LEAD_FIELDS, rows["lead"]),
            copy_data(Referral, ("id", *REFERRAL_FIELDS), [e for e in entries if e[0] is not None]),
            copy_data(Referral, REFERRAL_FIELDS, [e[1:] for e in entries if e[0] is None]),
        ]

    # Write ------------------------------------------------------------------------------------

    def write(self) -> None:
        """Every row in one transaction (COPY, and one upsert of the contacts already
        stored); raises _Again, or IntegrityError, when a concurrent writer got in the way."""
        events, made, *rest = self.copies
        with transaction.atomic():
            copy_send(events)
            copy_send(made)
            _contacts_update(self.stored)
            for data in rest:
                copy_send(data)
            if self.paid and _webhooks_wanted():
                for order_pk, lines in self.paid:
                    webhook_commission_created(order_pk=order_pk, lines=lines)
        plans_renewed()  # the next batch's foreign-key checks planned for the tables as they are
        for event in self.events:
            event.line.outcome = RECORDED


def _webhooks_wanted() -> bool:
    """Whether an active webhook endpoint wants `commission.created` (cached, no query)."""
    wanted = WebhookEventType.COMMISSION_CREATED
    return any(wanted in events for _, events in active_endpoints())


# --- Reads for a batch (PostgreSQL) -------------------------------------------------------


def _events_recorded(lines: list[Line]) -> set[tuple[str, str]]:
    """Which (kind, event_id) of the lines are recorded, in one query."""
    return events_recorded([line.key for line in lines if isinstance(line.key[1], str)])


def _contacts_read(
    emails: list[str], carried: Mapping[str, "BatchContact"], world: StoredWorld
) -> dict[str, "BatchContact"]:
    """The batch's contacts by email: those of the batch being written meanwhile as it
    leaves them, the others as stored (`pk` None: not recorded yet)."""
    found = {email: BatchContact(email=email) for email in emails}
    for email in emails:
        if email in carried:
            found[email] = carried[email].taken_on()
    stored = world.contact_leads([email for email in emails if email not in carried])
    for email, (pk, lead) in stored.items():
        found[email] = BatchContact(email=email, pk=pk, lead=lead)
    return found


# --- The stored contacts' update ---------------------------------------------------------


def _contacts_update(stored: list[tuple[tuple, int | None]]) -> None:
    """The batch's contacts that were already stored, in one upsert, in email order (two
    writers lock them in the same order): names given replace old ones, the lead partner
    the batch fixed set where the contact still has none. A contact that another writer
    made or fixed since the batch read it: the batch is worked out again."""
    if not stored:
        return
    contact, lead = table(Contact), columns(Contact, ("lead_partner",))
    suffix = f"""{contact_conflict_sql(fix_lead=True)}
        RETURNING {contact}.{columns(Contact, ("id",))}, {contact}.{lead}
    """
    expected = {values[0]: lead_id for values, lead_id in stored}
    rows = [values for values, _ in stored]
    for pk, lead_id in insert(Contact, CONTACT_WRITE, rows, returning=(), suffix=suffix):
        if pk not in expected or lead_id != expected[pk]:
            raise _Again  # made by another writer (another id), or its lead fixed meanwhile
