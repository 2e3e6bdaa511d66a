"""Reads for the commissions engine: load what a decision needs into frozen values."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Field
from django.db.models.functions import Lower

from partners.models import (
    Click,
    Coupon,
    Enrollment,
    Partner,
    PartnerOverride,
    PartnerStatus,
    ProductRate,
    ProductRateLevel,
    Program,
    ProgramRate,
    ProgramVersion,
    ReferralDefaults,
    RenewalRate,
)
from referral_program.db import (
    columns,
    converted,
    converted_rows,
    db,
    execute,
    fields,
    prepared,
    quote,
    table,
)

from .attribution import (
    FIRST,
    ContactLead,
    CouponState,
    FirstOrder,
    PartnerState,
    Policy,
    Touch,
)
from .calculation import LEAD, SALE, ChainMember, Override, Rate, Terms
from .calculation import ProductRate as ProductRates
from .calculation import Program as PayingProgram
from .models import Contact, Event, Order, Referral

# How many clicks from one IP address attribution looks at (the latest ones).
IP_CLICKS_LIMIT = 100


@dataclass(frozen=True)
class EngineSettings:
    policy: Policy
    skip_notifications: bool
    self_referral_guard: bool = True


def engine_settings() -> EngineSettings:
    """The attribution policy and the notifications switch of the defaults (one query), for
    a write that needs no chain (a rejection's email)."""
    return engine_with_chains([])[0]


def coupons_by_code(codes: Iterable[str | None]) -> dict[str, CouponState]:
    """The stored coupons of these codes, by lower-cased code, with their partners' states:
    one query (none without a code). For one event or a batch of them (SPEC §11)."""
    wanted = {code.lower() for code in codes if code}
    if not wanted:
        return {}
    rows = (
        Coupon.objects.alias(code_lower=Lower("code"))
        .filter(code_lower__in=wanted)
        .values_list("code", "partner_id", "active", "partner__status", "partner__cookie_days")
    )
    return {
        code.lower(): CouponState(
            code=code,
            partner_id=partner_id,
            active=active,
            partner=PartnerState(
                id=partner_id, active=status == PartnerStatus.ACTIVE, cookie_days=cookie_days
            ),
        )
        for code, partner_id, active, status, cookie_days in rows
    }


def first_orders(subscription_ids: Iterable[str]) -> dict[str, FirstOrder]:
    """The first order (cycle 1, the first recorded) of each of these subscriptions that
    has one, by subscription id: one query (none without an id). For one renewal or a
    batch of events (SPEC §10)."""
    wanted = sorted(set(subscription_ids))
    if not wanted:
        return {}
    rows = (
        Order.objects.filter(subscription_cycle=1, subscription_id__in=wanted)
        .order_by("subscription_id", "id")
        .values_list("subscription_id", "order_id", "occurred_at", "lead_partner", "sale_partner")
    )
    found: dict[str, FirstOrder] = {}
    for subscription_id, *first in rows:
        found.setdefault(subscription_id, FirstOrder(*first))
    return found


HISTORY_ENTRY = ("id", "partner", "set_at", "expires_at")


# --- What an event's rules read, for a batch of events (the API's event: a batch of one) ---
# Each read takes `wanted`: (event number, key, time) per event, and answers by event
# number. On PostgreSQL one statement for the batch (the keys as arrays, each event's pick
# in a LATERAL subquery); elsewhere (SQLite) one statement per event, with the same rules.


def history_picks(
    wanted: Sequence[tuple[int, str, datetime]], *, rule: str, before: datetime | None = None
) -> "dict[int, tuple[Touch, Chain]]":
    """For each (event number, normalised email, time): the one history entry of that
    contact the rule picks among those that count then (partner active, set by then, not
    expired: the earliest or the latest, ties by id), with its partner's chain, read by the
    same query. Read before the event writes its contact (a new contact has none).
    `before`: only the entries stored before then (the history as it stood, for a replay)."""
    if not wanted:
        return {}
    select, joins, row_fields = _chain_sql()
    order = "ASC" if rule == FIRST else "DESC"
    entry_fields = fields(Referral, HISTORY_ENTRY)
    stored = "" if before is None else "AND r.created_at < %s"
    pick = f"""
        SELECT r.*
          FROM {table(Referral)} r
          JOIN {table(Partner)} rp ON rp.id = r.partner_id
         WHERE r.contact_id = (SELECT c.id FROM {table(Contact)} c WHERE c.email = {{email}})
           AND r.set_at <= {{at}} AND rp.status = %s {stored}
           AND (r.expires_at IS NULL OR r.expires_at > {{at}})
         ORDER BY r.set_at {order}, r.id {order}
         LIMIT 1"""
    [stored_before] = prepared(Referral, ("created_at",), [before]) if before else [None]
    after_status = [stored_before] if before else []
    tail = f"JOIN {table(Partner)} p1 ON p1.id = h.partner_id {joins}"
    found: dict[int, list] = {}
    if db().vendor == "postgresql":
        sql = f"""
            SELECT q.n, {columns(Referral, HISTORY_ENTRY, "h.")}, {select}
              FROM unnest(%s::int[], %s::text[], %s::timestamptz[]) AS q(n, email, at)
             CROSS JOIN LATERAL ({pick.format(email="q.email", at="q.at")}) h
             {tail}
        """
        numbers, emails, times = (list(column) for column in zip(*wanted, strict=True))
        params = [numbers, emails, times, PartnerStatus.ACTIVE, *after_status]
        for n, *row in execute(sql, params, arrays=True):
            found.setdefault(n, []).append(converted(entry_fields + row_fields, row))
    else:
        sql = f"""
            SELECT {columns(Referral, HISTORY_ENTRY, "h.")}, {select}
              FROM ({pick.format(email="%s", at="%s")}) h
             {tail}
        """
        for n, email, at in wanted:
            [when] = prepared(Referral, ("set_at",), [at])
            rows = execute(sql, [email, when, PartnerStatus.ACTIVE, *after_status, when])
            if rows:
                found[n] = converted_rows(entry_fields + row_fields, rows)
    picked = {}
    for n, rows in found.items():
        pk, partner_id, set_at, expires_at = rows[0][: len(HISTORY_ENTRY)]
        chain = _chains(row[len(HISTORY_ENTRY) :] for row in rows)[partner_id]
        touch = Touch(ref=str(pk), partner_id=partner_id, at=set_at, expires_at=expires_at)
        picked[n] = (touch, chain)
    chains = _chains_programs({touch.partner_id: chain for touch, chain in picked.values()})
    return {n: (touch, chains[touch.partner_id]) for n, (touch, _) in picked.items()}


def ip_clicks(
    wanted: Sequence[tuple[int, str, datetime]],
) -> dict[int, tuple[list[Touch], dict[int, PartnerState]]]:
    """For each (event number, IP address, time): the latest clicks (at most
    IP_CLICKS_LIMIT) of active partners from that address within IP_ATTRIBUTION_MAX_DAYS
    before the time, with their partners."""
    result: dict[int, tuple[list[Touch], dict]] = {n: ([], {}) for n, _, _ in wanted}
    if not wanted:
        return result
    days = timedelta(days=settings.IP_ATTRIBUTION_MAX_DAYS)
    click, partner = table(Click), table(Partner)
    pick = f"""
        SELECT c.id, c.partner_id, c.at, p.cookie_days
          FROM {click} c
          JOIN {partner} p ON p.id = c.partner_id
         WHERE c.ip = {{ip}} AND c.at <= {{at}} AND c.at >= {{since}} AND p.status = %s
         ORDER BY c.at DESC
         LIMIT {IP_CLICKS_LIMIT}"""
    row_fields = fields(Click, ("id", "partner", "at")) + fields(Partner, ("cookie_days",))
    rows: list = []
    if db().vendor == "postgresql":
        sql = f"""
            SELECT q.n, c.*
              FROM unnest(%s::int[], %s::text[], %s::timestamptz[], %s::timestamptz[])
                   AS q(n, ip, at, since)
             CROSS JOIN LATERAL ({pick.format(ip="q.ip::inet", at="q.at", since="q.since")}) c
             ORDER BY q.n, c.at DESC
        """
        params = [
            [n for n, _, _ in wanted],
            [ip for _, ip, _ in wanted],
            [at for _, _, at in wanted],
            [at - days for _, _, at in wanted],
            PartnerStatus.ACTIVE,
        ]
        rows = [(n, *converted(row_fields, row)) for n, *row in execute(sql, params, arrays=True)]
    else:
        sql = pick.format(ip="%s", at="%s", since="%s")
        for n, ip, at in wanted:
            when, since = prepared(Click, ("at", "at"), [at, at - days])
            found = converted_rows(
                row_fields, execute(sql, [ip, when, since, PartnerStatus.ACTIVE])
            )
            rows += [(n, *row) for row in found]
    for n, pk, partner_id, at, cookie_days in rows:
        touches, partners = result[n]
        touches.append(Touch(ref=pk.hex, partner_id=partner_id, at=at))
        partners[partner_id] = PartnerState(id=partner_id, active=True, cookie_days=cookie_days)
    return result


CONTACT_READ = ("id", "email", "lead_partner", "lead_partner_set_at", "lead_trace")


def contact_leads(emails: Sequence[str]) -> dict[str, tuple[int, ContactLead]]:
    """The stored contacts among these (normalised) emails: id and lead partner by email."""
    if not emails:
        return {}
    if db().vendor == "postgresql":
        where, params = "= ANY(%s)", [list(emails)]
    else:
        where, params = f"IN ({_placeholders(list(emails))})", list(emails)
    sql = (
        f"SELECT {columns(Contact, CONTACT_READ)} FROM {table(Contact)} "
        f"WHERE {columns(Contact, ('email',))} {where}"
    )
    found = {}
    for pk, email, lead_id, set_at, trace in converted_rows(
        fields(Contact, CONTACT_READ), execute(sql, params)
    ):
        found[email] = (pk, ContactLead(lead_id, set_at, trace))
    return found


def referrals_known(
    pairs: Sequence[tuple[int, str]], *, before: datetime | None = None
) -> list[tuple[int, str]]:
    """Which (contact id, click id) pairs are already in the history, in one query.
    `before`: in the history as it stood then (entries stored before then, for a replay)."""
    if not pairs:
        return []
    stored = "" if before is None else " AND r.created_at < %s"
    [stored_before] = prepared(Referral, ("created_at",), [before]) if before else [None]
    after = [stored_before] if before else []
    if db().vendor == "postgresql":
        sql = (
            f"SELECT r.contact_id, r.click_id FROM unnest(%s::bigint[], %s::uuid[]) AS q(c, k) "
            f"JOIN {table(Referral)} r ON r.contact_id = q.c AND r.click_id = q.k{stored}"
        )
        params = [[c for c, _ in pairs], [k for _, k in pairs], *after]
    else:
        either = " OR ".join(["(r.contact_id = %s AND r.click_id = %s)"] * len(pairs))
        sql = f"SELECT r.contact_id, r.click_id FROM {table(Referral)} r WHERE ({either}){stored}"
        params = [v for c, k in pairs for v in prepared(Referral, ("contact", "click_id"), [c, k])]
        params += after
    click_field = fields(Referral, ("click_id",))
    return [
        (contact, converted(click_field, [click])[0].hex) for contact, click in execute(sql, params)
    ]


def events_recorded(keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (kind, event_id) are recorded, in one query."""
    keys = sorted(set(keys))
    if not keys:
        return set()
    kinds, ids = [k for k, _ in keys], [i for _, i in keys]
    kind, event_id = columns(Event, ("kind",)), columns(Event, ("event_id",))
    if db().vendor == "postgresql":
        sql = (
            f"SELECT e.{kind}, e.{event_id} FROM unnest(%s::text[], %s::text[]) AS q(k, i) "
            f"JOIN {table(Event)} e ON e.{kind} = q.k AND e.{event_id} = q.i"
        )
        params = [kinds, ids]
    else:
        pairs = " OR ".join([f"({kind} = %s AND {event_id} = %s)"] * len(keys))
        sql = f"SELECT {kind}, {event_id} FROM {table(Event)} WHERE {pairs}"
        params = [value for pair in keys for value in pair]
    return {(k, i) for k, i in execute(sql, params)}


@dataclass(frozen=True)
class ChainPartner:
    """A partner of a chain as the intake needs it: to credit, to name, to email."""

    id: int
    code: str
    active: bool
    cookie_days: int | None
    notify_lead: bool
    notify_sale: bool

    def state(self) -> PartnerState:
        return PartnerState(id=self.id, active=self.active, cookie_days=self.cookie_days)

    def notifies(self, kind: str) -> bool:
        return self.notify_lead if kind == LEAD else self.notify_sale


@dataclass(frozen=True)
class Chain:
    """The credited partner and up to two above it, and the program that pays them."""

    members: tuple[ChainMember, ...]
    has_parent: bool
    program_id: int | None  # the partner's own program; None: the default one pays
    terms: Terms | None = None  # the program that pays; None when there is no program at all
    # Every program of the partner (SPEC §10), by priority then id: its enrolled programs,
    # else the default one; with their product rates. One (`terms`') in the common case.
    programs: tuple[PayingProgram, ...] = ()
    partners: tuple[ChainPartner, ...] = ()  # the members' codes and switches, level 1 first
    emails: frozenset[str] = frozenset()  # the partner's own: partner email and login email
    more_programs: bool = False  # `programs` is still to be read whole (`_chains_programs`)
    # The members' overrides (SPEC §10), each at the level it holds in this chain.
    overrides: tuple[Override, ...] = ()

    @property
    def partner(self) -> ChainPartner:
        return self.partners[0]


# The columns of a chain's rows: the partner (p1), its parent (p2) and grandparent (p3), the
# program that pays them (pr: the partner's own, else the default one), and one of its rates
# (r): a chain comes as one row per rate level.
CHAIN_PARTNER = ("id", "code", "status", "cookie_days", "notify_lead", "notify_sale", "parent")
CHAIN_PARTNER_OWN = (*CHAIN_PARTNER, "program", "email")
CHAIN_PROGRAM = (
    "id",
    "name",
    "levels",
    "payout_on_lead",
    "payout_on_sale",
    "payout_amount",
    "payout_percent",
    "pay_if_unused",
    "unused_lead_amount",
    "unused_lead_percent",
    "unused_sale_amount",
    "unused_sale_percent",
)
CHAIN_RATE = ("level", "lead_amount", "lead_percent", "sale_amount", "sale_percent")
# A member's override at its level (o), on the row of that level's rate: the chain's query
# reads them without another query or more rows than there are overrides (SPEC §10).
CHAIN_OVERRIDE = ("partner", "program", "sku", "level")
CHAIN_OVERRIDE += ("lead_amount", "lead_percent", "sale_amount", "sale_percent")
# Of the paying program, after its hold days: its priority, `pays_default`, renewal limit
# and `credit_on` (SPEC §10); then how many
# programs the partner is enrolled in and whether its program has product rates (either of
# which sends the chain to `_chains_programs` for the rest, SPEC §10).
CHAIN_PROGRAM_MORE = ("priority", "pays_default", "renewal_cycles", "credit_on")
ENGINE_DEFAULTS = (
    "partner_selection",
    "tracking_method",
    "use_ip_address",
    "skip_notifications",
    "self_referral_guard",
)


@cache
def _chain_sql() -> tuple[str, str, tuple]:
    """The select list and joins of a chain's rows (from `p1`), and the fields of their
    columns. Six tables: PostgreSQL plans that in half the time of a row with every rate."""
    partner, program, rate = table(Partner), table(Program), table(ProgramRate)
    user_model = get_user_model()
    select = ", ".join(
        [
            columns(Partner, CHAIN_PARTNER_OWN, "p1."),
            f"(SELECT u.email FROM {table(user_model)} u WHERE u.id = p1.user_id)",
            columns(Partner, CHAIN_PARTNER, "p2."),
            columns(Partner, CHAIN_PARTNER, "p3."),
            columns(Program, CHAIN_PROGRAM, "pr."),
            # The hold days that apply (SPEC §11): the program's, else the defaults'.
            f"COALESCE(pr.{quote('hold_days')}, (SELECT hd.{quote('hold_days')} FROM "
            f"{table(ReferralDefaults)} hd WHERE hd.id = {ReferralDefaults.SINGLETON_PK}))",
            columns(Program, CHAIN_PROGRAM_MORE, "pr."),
            f"(SELECT COUNT(*) FROM {table(Enrollment)} ec WHERE ec.partner_id = p1.id)",
            f"(CASE WHEN EXISTS (SELECT 1 FROM {table(ProductRate)} px "
            "WHERE px.program_id = pr.id) THEN 1 ELSE 0 END)",
            _version_sql(),
            columns(RenewalRate, CHAIN_RATE, "rr."),  # the renewal rate of r's level
            columns(ProgramRate, CHAIN_RATE, "r."),
            columns(PartnerOverride, CHAIN_OVERRIDE, "o."),
        ]
    )
    joins = f"""
          LEFT JOIN {partner} p2 ON p2.id = p1.parent_id
          LEFT JOIN {partner} p3 ON p3.id = p2.parent_id
          LEFT JOIN {program} pr ON pr.id = COALESCE(
                p1.program_id,
                (SELECT dp.id FROM {program} dp ORDER BY dp.priority, dp.id LIMIT 1))
          LEFT JOIN {rate} r ON r.program_id = pr.id
          LEFT JOIN {table(RenewalRate)} rr ON rr.program_id = pr.id AND rr.level = r.level
          LEFT JOIN {table(PartnerOverride)} o ON o.level = r.level AND o.partner_id =
                CASE r.level WHEN 1 THEN p1.id WHEN 2 THEN p2.id WHEN 3 THEN p3.id END
    """
    row_fields = (
        fields(Partner, CHAIN_PARTNER_OWN)
        + fields(user_model, ("email",))
        + fields(Partner, CHAIN_PARTNER) * 2
        + fields(Program, CHAIN_PROGRAM)
        + fields(Program, ("hold_days",))
        + fields(Program, CHAIN_PROGRAM_MORE)
        + fields(Program, ("priority", "priority"))  # two integers
        + fields(ProgramVersion, ("id",))
        + fields(RenewalRate, CHAIN_RATE)
        + fields(ProgramRate, CHAIN_RATE)
        + fields(PartnerOverride, CHAIN_OVERRIDE)
    )
    return select, joins, row_fields


def _version_sql() -> str:
    """The id of the program's (`pr`) current version (SPEC §10): its latest, which
    `partners.services.versions` keeps on the program as it makes it (a column: a lookup of
    the latest per row cost the chain query a sixth of its time)."""
    return columns(Program, ("current_version",), "pr.")


def override_of(
    partner_id: int,
    program_id: int,
    sku: str | None,
    level: int,
    lead_amount: Decimal,
    lead_percent: Decimal,
    sale_amount: Decimal,
    sale_percent: Decimal,
) -> Override:
    """A partner override's columns (SPEC §10) as the rules take it."""
    return Override(
        partner_id=partner_id,
        program_id=program_id,
        sku=sku,
        level=level,
        rates={LEAD: Rate(lead_amount, lead_percent), SALE: Rate(sale_amount, sale_percent)},
    )


def _chains(rows: Iterable[list]) -> dict[int, Chain]:
    """The chains in the rows of `_chain_sql` (converted), by partner id."""
    grouped: dict[int, list] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    programs: dict[int | None, tuple] = {}  # by program id; None: no program
    return {pk: _chain(group, programs) for pk, group in grouped.items()}


def _chain(rows: list[list], programs: dict[int | None, tuple]) -> Chain:
    """One partner's chain from its rows (one per rate level of its program, or per
    override of the member at that level). `programs`: the terms and paying programs
    already made from the same statement's rows, by program id: in one statement a program
    has the same columns and rates on every partner's rows, so the chains of a batch's
    thousand partners share a few programs' objects instead of making them each."""
    values = iter(rows[0])

    def take(count: int) -> list:
        return [next(values) for _ in range(count)]

    own = take(len(CHAIN_PARTNER_OWN))
    [login_email] = take(1)
    above = [take(len(CHAIN_PARTNER)), take(len(CHAIN_PARTNER))]
    program = take(len(CHAIN_PROGRAM))
    [hold_days] = take(1)
    priority, pays_default, renewal_cycles, credit_on, enrolled, has_products = take(
        len(CHAIN_PROGRAM_MORE) + 2
    )
    [version_id] = take(1)
    # At the end of each row: the renewal rate, the rate and the override of its level.
    width, tail = len(CHAIN_RATE), len(CHAIN_OVERRIDE)
    rate_at = -tail - width
    overrides = {tuple(row[-tail:-4]): row[-4:] for row in rows if row[-tail] is not None}
    partners = []
    for pk, code, status, cookie_days, notify_lead, notify_sale, _ in [
        own[: len(CHAIN_PARTNER)],
        *above,
    ]:
        if pk is None:
            break
        partners.append(
            ChainPartner(
                id=pk,
                code=code,
                active=status == PartnerStatus.ACTIVE,
                cookie_days=cookie_days,
                notify_lead=notify_lead,
                notify_sale=notify_sale,
            )
        )
    if (made := programs.get(program[0])) is None:
        rates = {row[rate_at]: row[rate_at + 1 : -tail] for row in rows}
        renewal = {row[rate_at - width]: row[rate_at - width + 1 : rate_at] for row in rows}
        terms = _terms(program, rates, hold_days)
        paying = (
            ()
            if terms is None
            else (
                PayingProgram(
                    terms=terms,
                    priority=priority,
                    pays_default=pays_default,
                    renewal_cycles=renewal_cycles,
                    renewal_rates=_renewal_rates(renewal),
                    version_id=version_id,
                    credit_on=credit_on,
                ),
            )
        )
        made = programs[program[0]] = (terms, paying)
    terms, paying = made
    return Chain(
        members=tuple(
            ChainMember(p.id, level, p.active) for level, p in enumerate(partners, start=1)
        ),
        has_parent=own[CHAIN_PARTNER.index("parent")] is not None,
        program_id=own[CHAIN_PARTNER_OWN.index("program")],
        terms=terms,
        programs=paying,
        more_programs=bool(terms is not None and (enrolled > 1 or has_products)),
        overrides=tuple(override_of(*key, *rate) for key, rate in overrides.items()),
        partners=tuple(partners),
        emails=frozenset(
            email for email in (own[CHAIN_PARTNER_OWN.index("email")], login_email) if email
        ),
    )


def _terms(program: list, rates: dict, hold_days: int | None = 0) -> Terms | None:
    """The program's terms; `rates`: level -> (lead amount, lead %, sale amount, sale %)."""
    (pk, name, levels, on_lead, on_sale, amount, percent, if_unused, *unused) = program
    if pk is None:
        return None
    rates = {level: rate for level, rate in rates.items() if level is not None}
    return Terms(
        program_id=pk,
        name=name,
        levels=levels,
        payout_on_lead=on_lead,
        payout_on_sale=on_sale,
        payout_amount=amount,
        payout_percent=percent,
        pay_if_unused=if_unused,
        rates=_by_kind(rates),
        unused={LEAD: Rate(unused[0], unused[1]), SALE: Rate(unused[2], unused[3])},
        hold_days=hold_days or 0,
    )


def _by_kind(levels: dict) -> dict[str, dict[int, Rate]]:
    """Rates per kind per level; `levels`: level -> (lead amount, lead %, sale amount,
    sale %)."""
    return {
        LEAD: {n: Rate(r[0], r[1]) for n, r in levels.items()},
        SALE: {n: Rate(r[2], r[3]) for n, r in levels.items()},
    }


def _renewal_rates(levels: dict) -> dict[str, dict[int, Rate]] | None:
    """A program's renewal rates (SPEC §10) from its rows by level; None: it has none (its
    renewals earn its rates)."""
    levels = {level: rate for level, rate in levels.items() if level is not None}
    return _by_kind(levels) if levels else None


def _placeholders(ids: list) -> str:
    return ", ".join(["%s"] * len(ids)) or "NULL"


PRODUCT_UNUSED = ("unused_lead_amount", "unused_lead_percent")
PRODUCT_UNUSED += ("unused_sale_amount", "unused_sale_percent")


@lru_cache(maxsize=16)
def _programs_sql(partners: int) -> tuple[str, tuple[Field, ...]]:
    """`_chains_programs`' statement for this many partners, and its row's fields: one row
    per (partner, program, rate level) and per (partner, program, sku, level)."""
    ids = _placeholders([None] * partners)
    program, rate = table(Program), table(ProgramRate)
    enrolled, product, level = table(Enrollment), table(ProductRate), table(ProductRateLevel)
    head = ", ".join(
        [
            "ep.partner_id",
            columns(Program, CHAIN_PROGRAM, "pr."),
            f"COALESCE(pr.{quote('hold_days')}, (SELECT hd.{quote('hold_days')} FROM "
            f"{table(ReferralDefaults)} hd WHERE hd.id = {ReferralDefaults.SINGLETON_PK}))",
            columns(Program, CHAIN_PROGRAM_MORE, "pr."),
            _version_sql(),
        ]
    )
    nothing = ", ".join(["NULL"] * len(PRODUCT_UNUSED))
    nothing_more = ", ".join(["NULL"] * len(CHAIN_RATE))  # a product rate's renewal rate
    sql = f"""
        WITH ep AS (
            SELECT e.partner_id AS partner_id, e.program_id AS program_id
              FROM {enrolled} e WHERE e.partner_id IN ({ids})
            UNION ALL
            SELECT p.id, COALESCE(
                   p.program_id,
                   (SELECT dp.id FROM {program} dp ORDER BY dp.priority, dp.id LIMIT 1))
              FROM {table(Partner)} p
             WHERE p.id IN ({ids})
               AND NOT EXISTS (SELECT 1 FROM {enrolled} e2 WHERE e2.partner_id = p.id)
        )
        SELECT {head}, NULL, {columns(ProgramRate, CHAIN_RATE, "r.")}, {nothing},
               {columns(RenewalRate, CHAIN_RATE, "rr.")}
          FROM ep JOIN {program} pr ON pr.id = ep.program_id
          LEFT JOIN {rate} r ON r.program_id = pr.id
          LEFT JOIN {table(RenewalRate)} rr ON rr.program_id = pr.id AND rr.level = r.level
        UNION ALL
        SELECT {head}, x.sku, {columns(ProductRateLevel, CHAIN_RATE, "xl.")},
               {columns(ProductRate, PRODUCT_UNUSED, "x.")}, {nothing_more}
          FROM ep JOIN {program} pr ON pr.id = ep.program_id
          JOIN {product} x ON x.program_id = pr.id
          LEFT JOIN {level} xl ON xl.product_rate_id = x.id
    """
    row_fields = (
        fields(Enrollment, ("partner",))
        + fields(Program, CHAIN_PROGRAM)
        + fields(Program, ("hold_days",))
        + fields(Program, CHAIN_PROGRAM_MORE)
        + fields(ProgramVersion, ("id",))
        + fields(ProductRate, ("sku",))
        + fields(ProgramRate, CHAIN_RATE)
        + fields(ProductRate, PRODUCT_UNUSED)
        + fields(RenewalRate, CHAIN_RATE)
    )
    return sql, row_fields


def _chains_programs(chains: dict[int, Chain]) -> dict[int, Chain]:
    """The chains with every program of their partner (SPEC §10) read, in one more query,
    for those that need it: a partner enrolled in several programs, or whose program has
    product rates. The others keep the one program their chain's row read."""
    wanted = sorted(pk for pk, chain in chains.items() if chain.more_programs)
    if not wanted:
        return chains
    sql, row_fields = _programs_sql(len(wanted))
    rows = converted_rows(row_fields, execute(sql, [*wanted, *wanted]))
    # partner -> program id -> (program columns, hold days, priority, pays default, rates,
    # {sku: (unused, rates)}, renewal cycles, renewal rates, version id, credit on)
    found: dict[int, dict[int, list]] = {}
    width = len(CHAIN_PROGRAM)
    more = 3 + len(CHAIN_PROGRAM_MORE)  # hold days, the program's more, version, sku
    for row in rows:
        partner_id, program = row[0], row[1 : 1 + width]
        hold_days, priority, pays_default, renewal_cycles, credit_on, version_id, sku = row[
            1 + width : 1 + width + more
        ]
        start = 1 + width + more
        level, *rate = row[start : start + len(CHAIN_RATE)]
        unused = row[start + len(CHAIN_RATE) : start + len(CHAIN_RATE) + len(PRODUCT_UNUSED)]
        renewal_level, *renewal = row[-len(CHAIN_RATE) :]
        entry = found.setdefault(partner_id, {}).setdefault(
            program[0],
            [
                program, hold_days, priority, pays_default, {}, {}, renewal_cycles, {},
                version_id, credit_on,
            ],
        )  # fmt: skip
        if sku is None:
            entry[4][level] = rate
            entry[7][renewal_level] = renewal
        else:
            entry[5].setdefault(sku, (unused, {}))[1][level] = rate
    result = dict(chains)
    for partner_id in wanted:
        programs = []
        for (
            program, hold_days, priority, pays_default, rates, products, renewal_cycles, renewal,
            version_id, credit_on,
        ) in found.get(partner_id, {}).values():  # fmt: skip
            programs.append(
                PayingProgram(
                    terms=_terms(program, rates, hold_days),
                    priority=priority,
                    pays_default=pays_default,
                    credit_on=credit_on,
                    product_rates={
                        sku: _product_rates(sku, unused, levels)
                        for sku, (unused, levels) in products.items()
                    },
                    renewal_cycles=renewal_cycles,
                    renewal_rates=_renewal_rates(renewal),
                    version_id=version_id,
                )
            )
        programs.sort(key=lambda p: (p.priority, p.id))
        result[partner_id] = replace(
            chains[partner_id], programs=tuple(programs), more_programs=False
        )
    return result


def _product_rates(sku: str, unused: Sequence, levels: dict) -> ProductRates:
    """A product rate; `levels`: level -> (lead amount, lead %, sale amount, sale %)."""
    levels = {level: r for level, r in levels.items() if level is not None}
    return ProductRates(
        sku=sku,
        rates=_by_kind(levels),
        unused={LEAD: Rate(unused[0], unused[1]), SALE: Rate(unused[2], unused[3])},
    )


def partner_chains(ids: Iterable[int]) -> dict[int, Chain]:
    """The chains of these partners, with their programs' terms, in one query; partners
    that do not exist are left out. For one event or a batch of them."""
    ids = sorted({pk for pk in ids if pk is not None})
    if not ids:
        return {}
    select, joins, row_fields = _chain_sql()
    sql = f"SELECT {select} FROM {table(Partner)} p1 {joins} WHERE p1.id IN ({_placeholders(ids)})"
    return _chains_programs(_chains(converted_rows(row_fields, execute(sql, ids))))


@lru_cache(maxsize=16)
def _engine_sql(partners: int) -> tuple[str, tuple[Field, ...]]:
    """`engine_with_chains`'s statement for this many partners, and its row's fields."""
    select, joins, row_fields = _chain_sql()
    sql = f"""
        SELECT {columns(ReferralDefaults, ENGINE_DEFAULTS, "d.")}, {select}
          FROM {table(ReferralDefaults)} d
          LEFT JOIN {table(Partner)} p1 ON p1.id IN ({_placeholders([None] * partners)})
          {joins}
         WHERE d.id = %s
    """
    return sql, fields(ReferralDefaults, ENGINE_DEFAULTS) + row_fields


def engine_with_chains(partner_ids: Iterable[int]) -> tuple[EngineSettings, dict[int, Chain]]:
    """The engine settings and the chains of the partners an event names (explicitly or in
    its tracking token), in one query: the defaults row, joined to each partner's chain.

    Hand-written SQL: the intake's hot path, where compiling this in the ORM cost more than
    running it (see referral_program.db).
    """
    ids = sorted({pk for pk in partner_ids if pk is not None})
    sql, row_fields = _engine_sql(len(ids))
    rows = converted_rows(row_fields, execute(sql, [*ids, ReferralDefaults.SINGLETON_PK]))
    selection, method, use_ip, skip, self_referral = rows[0][: len(ENGINE_DEFAULTS)]
    engine = EngineSettings(
        policy=Policy(partner_selection=selection, tracking_method=method, use_ip_address=use_ip),
        skip_notifications=skip,
        self_referral_guard=self_referral,
    )
    chain_rows = [row[len(ENGINE_DEFAULTS) :] for row in rows]
    return engine, _chains_programs(_chains(row for row in chain_rows if row[0] is not None))
