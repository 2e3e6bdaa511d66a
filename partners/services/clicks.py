"""Clicks: the tracker's one-statement click (`click_track`, `click_record`), the click
buffer of this process and its drain (`click_buffer`, `clicks_store`, `clicks_drain`), the
click volume flags (SPEC §9 "Guards") and the erasure of old IP addresses."""

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import attrgetter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from referral_program.db import columns, execute, insert, prepared, table

from ..click_buffer import BufferedClick, ClickBuffer, buffer_key, click_from_bytes, drain_lock_key
from ..models import Click, ClickFlag, Partner, PartnerStatus, ReferralDefaults, TrackingLink
from ..selectors import TrackerTarget, defaults_get, possible_codes, tracker_target

# --- Clicks ------------------------------------------------------------------------------


CLICK_COLUMNS = ("id", "partner", "tracking_link", "ad_code", "ip", "user_agent", "referrer", "at")
# A click's (or a buffered click's) values of CLICK_COLUMNS, as the model holds them.
_click_values = attrgetter(*(Click._meta.get_field(name).attname for name in CLICK_COLUMNS))


def click_record(*, click: Click, duplicate_minutes: int) -> bool:
    """Store one click unless it repeats a click of the same partner, IP address and user
    agent within `duplicate_minutes` (0: every click counts). True if stored.

    One hand-written statement (the check and the insert together): the tracker calls this
    on every click when there is no click buffer (SQLite; PostgreSQL runs `click_track`).
    """
    values = prepared(Click, CLICK_COLUMNS, _click_values(click))
    named = dict(zip(CLICK_COLUMNS, values, strict=True))
    table_name = table(Click)
    sql = (
        f"INSERT INTO {table_name} ({columns(Click, CLICK_COLUMNS)}) "
        f"SELECT {', '.join(['%s'] * len(CLICK_COLUMNS))}"
    )
    params = list(values)
    if duplicate_minutes and click.ip is not None:
        # Each value its own placeholder: a prepared statement gives a placeholder one type,
        # and the user agent is a varchar in the SELECT but text in the comparison.
        [since] = prepared(Click, ("at",), [click.at - timedelta(minutes=duplicate_minutes)])
        sql += (
            f" WHERE NOT EXISTS (SELECT 1 FROM {table_name} c WHERE c.partner_id = %s"
            " AND c.ip = %s AND c.user_agent = %s AND c.at > %s AND c.at <= %s)"
        )
        params += [named["partner"], named["ip"], named["user_agent"], since, named["at"]]
    else:
        sql += " WHERE 1 = 1"  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
    sql += " ON CONFLICT (id) DO NOTHING RETURNING 1"
    return bool(execute(sql, params))


# The tracker's statement without a click buffer (PostgreSQL only: a data-modifying CTE,
# arrays, jsonb), run by `execute` (prepared once per database connection, unless the
# prepared-statements setting is off) so that a click costs no parsing or planning. Its
# parameters, with their types (each cast where it stands, so that a prepared statement
# takes them, the list of readings included):
_CLICK_TRACK_PARAMETERS = {
    "defaults_id": "integer",
    "readings": "text[]",  # possible_codes(code): the tails of the code that could be codes
    "code": "text",  # the code lower-cased
    "active": "text",
    "link_code": "text",
    "id": "uuid",
    "ad_code": "text",
    "ip": "inet",
    "user_agent": "text",
    "referrer": "text",
    "at": "timestamptz",
    "record": "boolean",
}
# `p`: of the readings naming an active partner, the one whose prefix part (the code in
# front of it) comes first in [current prefix, no prefix, earlier prefixes...]: the order
# of `code_candidates`. `stored`: the click, unless it repeats one of the same partner, IP
# address and user agent within the duplicate window (as `click_record`). Table and
# column names come from the models; every value is a parameter.
_CLICK_TRACK_BODY = """
WITH d AS (
    SELECT ARRAY[LOWER(code_prefix), '']
           || ARRAY(SELECT LOWER(e) FROM jsonb_array_elements_text(earlier_prefixes) e)
           AS known,
           duplicate_click_minutes AS minutes
      FROM {defaults_table}
     WHERE id = {defaults_id}
), p AS (
    SELECT p.id, p.cookie_days
      FROM d, {partner_table} p
     WHERE LOWER(p.code) = ANY({readings}) AND p.status = {active}
       AND array_position(d.known, LEFT({code}, LENGTH({code}) - LENGTH(p.code))) IS NOT NULL
     ORDER BY array_position(d.known, LEFT({code}, LENGTH({code}) - LENGTH(p.code)))
     LIMIT 1
), l AS (
    SELECT id, destination FROM {link_table} WHERE code = {link_code}
), stored AS (
    INSERT INTO {click_table} ({click_columns})
    SELECT {id}, p.id, (SELECT id FROM l), {ad_code}, {ip}, {user_agent}, {referrer}, {at}
      FROM p
     WHERE {record} AND NOT EXISTS (
           SELECT 1 FROM {click_table} c
            WHERE c.partner_id = p.id AND c.ip = {ip} AND c.user_agent = {user_agent}
              AND c.at > {at} - (SELECT minutes FROM d) * INTERVAL '1 minute'
              AND c.at <= {at})
        ON CONFLICT (id) DO NOTHING
    RETURNING 1
)
SELECT p.id, p.cookie_days, l.id, l.destination,
       (SELECT destination FROM {link_table} WHERE is_default LIMIT 1),
       d.minutes, EXISTS (SELECT 1 FROM stored)
  FROM d LEFT JOIN p ON TRUE LEFT JOIN l ON TRUE
"""
_CLICK_TRACK = _CLICK_TRACK_BODY.format(
    defaults_table=ReferralDefaults._meta.db_table,
    partner_table=Partner._meta.db_table,
    link_table=TrackingLink._meta.db_table,
    click_table=Click._meta.db_table,
    click_columns=", ".join(f'"{Click._meta.get_field(n).column}"' for n in CLICK_COLUMNS),
    **{name: f"%({name})s::{kind}" for name, kind in _CLICK_TRACK_PARAMETERS.items()},
)


def _click_track_portable(
    *, code: str, link_code: str | None, click: Click, record: bool
) -> TrackerTarget:
    """`click_track` on any database: `tracker_target`, then `click_record` (two round trips)."""
    target = tracker_target(code=code, link_code=link_code)
    stored = False
    if record and target.partner_id is not None:
        click.partner_id = target.partner_id
        click.tracking_link_id = target.tracking_link_id
        stored = click_record(click=click, duplicate_minutes=target.duplicate_click_minutes)
    return replace(target, click_stored=stored)


def click_track(*, code: str, link_code: str | None, click: Click, record: bool) -> TrackerTarget:
    """Resolve the code of a /go/ URL and, when `record` and it names an active partner,
    store `click` for that partner and tracking link: what the tracker does without a
    click buffer.

    `click` is the click as the tracker saw it (id, time, IP address, user agent, ad code,
    referrer); its partner and tracking link are set here from the code. It is stored as
    `click_record` would store it: not when it repeats a click of the same partner, IP
    address and user agent within the defaults' `duplicate_click_minutes`; the answer's
    `click_stored` says whether it was.

    On PostgreSQL this is ONE statement and one round trip: the defaults row, the partner
    among the code's readings that the known prefixes allow (ranked as `code_candidates`
    ranks them), the tracking link, the default destination, and the insert with its
    duplicate check, run by `execute` (prepared once per connection, unless the
    prepared-statements setting is off). Elsewhere (SQLite, the embedded default) it is
    `tracker_target` then `click_record`, two round trips.
    """
    if connection.vendor != "postgresql":
        return _click_track_portable(code=code, link_code=link_code, click=click, record=record)
    params = {
        "defaults_id": ReferralDefaults.SINGLETON_PK,
        "readings": possible_codes(code),
        "code": code.lower(),
        "active": PartnerStatus.ACTIVE.value,
        "link_code": link_code,
        "id": click.id,
        "ad_code": click.ad_code,
        "ip": click.ip,
        "user_agent": click.user_agent,
        "referrer": click.referrer,
        "at": click.at,
        "record": record,
    }
    [row] = execute(_CLICK_TRACK, params, arrays=True)
    partner_id, cookie_days, link_id, destination, default_destination, minutes, stored = row
    if partner_id is not None:
        click.partner_id, click.tracking_link_id = partner_id, link_id
    return TrackerTarget(
        partner_id=partner_id,
        cookie_days=cookie_days,
        tracking_link_id=link_id,
        destination=destination,
        default_destination=default_destination,
        duplicate_click_minutes=minutes,
        click_stored=stored,
    )


def clicks_store(*, clicks: "list[Click | BufferedClick]", duplicate_minutes: int = 0) -> int:
    """Store a batch of clicks at once: repeats (same partner, IP address and user agent
    within `duplicate_minutes`, in the batch or already stored) are left out, and a click
    whose id is already stored is skipped. Returns how many clicks were new or repeats
    considered; re-storing the same batch stores nothing twice. The clicks are model
    instances or the buffer's `BufferedClick` rows."""
    if not clicks:
        return 0
    clicks = sorted(clicks, key=lambda c: (c.at, c.id))
    if duplicate_minutes:
        window = timedelta(minutes=duplicate_minutes)
        earliest = clicks[0].at - window
        last_seen = {}
        batch = {c.id for c in clicks}
        for click_id, partner_id, ip, user_agent, at in _clicks_recent(
            since=earliest,
            partners={c.partner_id for c in clicks},
            ips={c.ip for c in clicks if c.ip is not None},
        ):
            if click_id in batch:  # stored by an earlier run of this batch
                continue
            key = (partner_id, ip, user_agent)
            last_seen[key] = max(at, last_seen.get(key, at))
        kept = []
        for click in clicks:
            key = (click.partner_id, click.ip, click.user_agent)
            seen = last_seen.get(key)
            if click.ip is not None and seen is not None and click.at - seen < window:
                continue
            last_seen[key] = click.at
            kept.append(click)
        clicks = kept
    _clicks_insert(clicks)
    return len(clicks)


def _clicks_recent(*, since: datetime, partners: set[int], ips: set[str]) -> Iterable[tuple]:
    """(id, partner, IP address, user agent, time) of the clicks stored after `since` by
    these partners from these IP addresses. On PostgreSQL the sets go as two arrays (the
    ORM's IN lists of a batch's thousands of values cost more than the rest of the drain)."""
    if connection.vendor != "postgresql":
        return Click.objects.filter(at__gt=since, partner_id__in=partners, ip__in=ips).values_list(
            "id", "partner_id", "ip", "user_agent", "at"
        )
    return execute(
        f"SELECT id, partner_id, HOST(ip), user_agent, at FROM {table(Click)} "
        "WHERE at > %s AND partner_id = ANY(%s::bigint[]) AND ip = ANY(%s::inet[])",
        [since, sorted(partners), sorted(ips)],
    )


CLICKS_INSERT_ROWS = 1000  # clicks per INSERT statement


def _clicks_insert(clicks: "list[Click | BufferedClick]") -> None:
    """INSERT … ON CONFLICT (id) DO NOTHING of the clicks, a thousand rows a statement (the
    ORM's `bulk_create` spent 21 µs of CPU per click, most of the drain's). The values are
    those the ORM sends: a blank IP address is NULL."""
    for start in range(0, len(clicks), CLICKS_INSERT_ROWS):
        chunk = clicks[start : start + CLICKS_INSERT_ROWS]
        rows = [_click_values(click) for click in chunk]
        insert(Click, CLICK_COLUMNS, rows, returning=(), suffix="ON CONFLICT (id) DO NOTHING")


def clicks_drain(*, batch_size: int = 5000, max_batches: int = 100) -> int:
    """Move buffered clicks from Redis into the database, a batch at a time.

    Each batch is read from the head of the list, stored in one transaction, and trimmed
    off the list only after the commit. One drain runs at a time (a Redis lock); if it dies
    mid-batch the batch stays and the next drain stores it, skipping clicks already stored
    (by id). Returns how many buffered clicks were taken off the list.
    """
    buffer = click_buffer()
    if buffer is None:
        return 0
    lock = buffer.redis.lock(drain_lock_key(), timeout=300, blocking=False)
    if not lock.acquire():
        return 0
    taken = 0
    try:
        minutes = ReferralDefaults.objects.values_list("duplicate_click_minutes", flat=True).get(
            pk=ReferralDefaults.SINGLETON_PK
        )
        for _ in range(max_batches):
            raw = buffer.redis.lrange(buffer_key(), 0, batch_size - 1)
            if not raw:
                break
            clicks = [c for c in map(click_from_bytes, raw) if c is not None]
            with transaction.atomic():
                clicks_store(clicks=clicks, duplicate_minutes=minutes)
            buffer.redis.ltrim(buffer_key(), len(raw), -1)
            taken += len(raw)
            if len(raw) < batch_size:
                break
    finally:
        lock.release()
    return taken


def clicks_write_directly(clicks: "list[BufferedClick]") -> None:
    """Store clicks the buffer could not push to Redis, with the defaults' duplicate window."""
    clicks_store(clicks=clicks, duplicate_minutes=defaults_get().duplicate_click_minutes)


@cache
def click_buffer() -> ClickBuffer | None:
    """This process's click buffer (`partners.click_buffer`), or None when clicks are written
    directly (no CLICK_BUFFER_URL)."""
    if not settings.CLICK_BUFFER_URL:
        return None
    return ClickBuffer(
        settings.CLICK_BUFFER_URL,
        key=settings.CLICK_BUFFER_KEY,
        flush_size=settings.CLICK_BUFFER_FLUSH_SIZE,
        flush_seconds=settings.CLICK_BUFFER_FLUSH_MS / 1000,
        write_directly=clicks_write_directly,
    )


# --- Click volume flags (SPEC §9 "Guards") ----------------------------------------------------


def click_flag_window(at: datetime) -> datetime:
    """The start of the last whole hour before `at` (UTC): 14:37 -> 13:00."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - ClickFlag.WINDOW


# Flag every partner whose clicks in the window exceed the defaults' click_flag_per_hour, in
# one statement: the threshold, the count per partner (over click_at_idx) and the insert.
# A partner flagged for that window already is left as it is (ON CONFLICT DO NOTHING), so
# running it again, or twice at once, flags once. Table names come from the models; every
# value is a parameter.
_CLICK_FLAGS_CREATE = f"""
INSERT INTO {ClickFlag._meta.db_table}
       (partner_id, window_start, clicks, threshold, created_at, reviewed_by, note)
SELECT c.partner_id, %(start)s, COUNT(*), d.click_flag_per_hour, %(now)s, '', ''
  FROM {Click._meta.db_table} c, {ReferralDefaults._meta.db_table} d
 WHERE d.id = %(defaults_id)s AND d.click_flag_per_hour IS NOT NULL
   AND c.at >= %(start)s AND c.at < %(end)s
 GROUP BY c.partner_id, d.click_flag_per_hour
HAVING COUNT(*) > d.click_flag_per_hour
    ON CONFLICT (partner_id, window_start) DO NOTHING
RETURNING partner_id
"""


def click_flags_create(*, at: datetime) -> int:
    """Flag, for staff review, every partner with more clicks than the defaults'
    `click_flag_per_hour` in the last whole hour before `at` (nothing when it is empty).

    Clicks are those stored (repeats within `duplicate_click_minutes` were never stored,
    bots never recorded). One statement whatever the number of clicks or partners; safe to
    run again and at once: a partner gets one flag per hour. Nothing is blocked: the
    partner's links and clicks go on as before. Returns how many flags are new.
    """
    start = click_flag_window(at)
    moment = Click._meta.get_field("at")  # times as the database stores them (also SQLite)
    params = {
        "defaults_id": ReferralDefaults.SINGLETON_PK,
        "start": moment.get_db_prep_value(start, connection),
        "end": moment.get_db_prep_value(start + ClickFlag.WINDOW, connection),
        "now": moment.get_db_prep_value(timezone.now(), connection),
    }
    return len(execute(_CLICK_FLAGS_CREATE, params))


CLICK_FLAG_NOTE_MAX = 1000


def click_flags_review(
    *, flags: QuerySet[ClickFlag], actor: str, at: datetime, note: str = ""
) -> int:
    """Mark the chosen open flags reviewed by `actor`, with an optional note (flags reviewed
    before keep their reviewer and note). Returns how many were open."""
    note = note.strip()
    if len(note) > CLICK_FLAG_NOTE_MAX:
        raise ValidationError({"note": "Keep the note under 1,000 characters."})
    return flags.filter(reviewed_at__isnull=True).update(
        reviewed_at=at, reviewed_by=actor, note=note
    )


# --- Old IP addresses (issue 7, docs/privacy.md) ------------------------------------------


def clicks_erase_old_ips(
    *, at: datetime, retention_days: int | None = None, batch_size: int = 10_000
) -> int:
    """Blank the raw IP address of every click made more than `retention_days` (default
    CLICK_IP_RETENTION_DAYS) before `at`. The rest of the click stays: it still counts in
    reports and through the visitor's cookie; only attribution by IP address, which never
    looks further back than IP_ATTRIBUTION_MAX_DAYS, cannot use it any more.

    A batch at a time, each its own short statement, so the tracker's inserts never wait
    long. Safe to run twice; returns how many clicks lost their address.
    """
    days = settings.CLICK_IP_RETENTION_DAYS if retention_days is None else retention_days
    old = Click.objects.filter(at__lt=at - timedelta(days=days), ip__isnull=False)
    erased = 0
    while True:
        ids = list(old.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return erased
        erased += Click.objects.filter(pk__in=ids, ip__isnull=False).update(ip=None)
        if len(ids) < batch_size:
            return erased
