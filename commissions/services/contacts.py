"""Contacts, referral history and the contact's lead partner (SPEC §4, §5.1).

A contact is written in one statement (`contact_write`: INSERT … ON CONFLICT (email), whose
clause `contact_conflict_sql` the importer shares); its lead partner is fixed at its first
attribution and never changed after (`event_contact`).
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from partners.models import Partner, PartnerStatus
from referral_program.db import (
    columns,
    converted,
    db,
    defaulted,
    execute,
    fields,
    insert,
    prepared,
    quote,
    table,
)

from ..attribution import Attribution, ContactLead, Touch, contact_lead, expiry
from ..intake import EventPlan, HistoryEntry
from ..models import Contact, Referral, ReferralSource


def normalise_email(email: str) -> str:
    return email.strip().lower()


CONTACT_FIELDS = tuple(f.name for f in Contact._meta.concrete_fields)


# What the upsert writes, in this order; any field added later is written with its default.
CONTACT_WRITTEN = ("email", "first_name", "last_name", "lead_partner", "lead_partner_set_at")
CONTACT_WRITTEN += ("lead_trace", "created_at")
CONTACT_WRITTEN += defaulted(Contact, CONTACT_WRITTEN)


def contact_conflict_sql(*, fix_lead: bool) -> str:
    """The ON CONFLICT clause of every contact upsert (the API's one contact, the importer's
    batch): names given replace old ones (an empty one keeps the old); with `fix_lead`, the
    lead partner, its time and trace are set where the contact has none yet."""
    contacts, first, last = table(Contact), quote("first_name"), quote("last_name")
    sql = f"""
        ON CONFLICT ({quote("email")}) DO UPDATE
           SET {first} = COALESCE(NULLIF(EXCLUDED.{first}, ''), {contacts}.{first}),
               {last} = COALESCE(NULLIF(EXCLUDED.{last}, ''), {contacts}.{last})"""
    if fix_lead:
        lead, set_at, trace = (
            columns(Contact, (name,))
            for name in ("lead_partner", "lead_partner_set_at", "lead_trace")
        )
        sql += f""",
               {lead} = COALESCE({contacts}.{lead}, EXCLUDED.{lead}),
               {set_at} = CASE WHEN {contacts}.{lead} IS NULL THEN EXCLUDED.{set_at}
                               ELSE {contacts}.{set_at} END,
               {trace} = CASE WHEN {contacts}.{lead} IS NULL THEN EXCLUDED.{trace}
                              ELSE {contacts}.{trace} END"""
    return sql


@cache
def _contact_write_sql(vendor: str) -> str:
    # PostgreSQL tells a new row by `xmax = 0`; SQLite (where writers queue anyway) by the
    # creation time this statement gave it.
    made = "xmax = 0" if vendor == "postgresql" else f"{quote('created_at')} = %s"
    return f"""
        INSERT INTO {table(Contact)} ({columns(Contact, CONTACT_WRITTEN)})
        VALUES ({", ".join(["%s"] * len(CONTACT_WRITTEN))})
        {contact_conflict_sql(fix_lead=False)}
        RETURNING {columns(Contact, CONTACT_FIELDS)}, {made}
    """


def contact_write(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    lead: tuple[int, datetime, dict] | None = None,
) -> tuple[Contact, bool]:
    """The contact with this email in one statement, and whether it was made now.

    A new contact is made with `lead` (partner id, when, trace) as its lead partner; an
    existing one gets the names given (empty ones keep the old) and keeps its lead partner.
    INSERT … ON CONFLICT (email) DO UPDATE also locks an existing contact until the
    transaction ends, so two events of one contact are recorded one after the other.
    """
    lead_id, lead_at, trace = lead or (None, None, {})
    now = timezone.now()
    values = [normalise_email(email), first_name, last_name, lead_id, lead_at, trace, now]
    values += [f.get_default() for f in fields(Contact, CONTACT_WRITTEN[len(values) :])]
    params = prepared(Contact, CONTACT_WRITTEN, values)
    vendor = db().vendor
    if vendor != "postgresql":
        params += prepared(Contact, ("created_at",), [now])
    *row, is_new = execute(_contact_write_sql(vendor), params)[0]
    values = converted(fields(Contact, CONTACT_FIELDS), row)
    return Contact.from_db(DEFAULT_DB_ALIAS, None, values), bool(is_new)


def contact_upsert(*, email: str, first_name: str = "", last_name: str = "") -> Contact:
    """The contact with this email, made if new; names given fill in or replace old ones."""
    return contact_write(email=email, first_name=first_name, last_name=last_name)[0]


@transaction.atomic
def referral_add_manual(
    *, email: str, partner: Partner, at: datetime | None = None, created_by: str = ""
) -> Referral:
    """A history entry staff add by hand, for a referral by phone or email."""
    if partner.status != PartnerStatus.ACTIVE:
        raise ValidationError({"partner": f"Partner {partner.code} is not active."})
    at = at or timezone.now()
    contact = contact_upsert(email=email)
    return Referral.objects.create(
        contact=contact,
        partner=partner,
        source=ReferralSource.MANUAL,
        set_at=at,
        expires_at=expiry(at, partner.cookie_days),
        created_by=created_by,
    )


REFERRAL_FIELDS = ("contact", "partner", "source", "click_id", "set_at", "expires_at")
REFERRAL_FIELDS += ("created_by", "created_at")


def history_entry(
    *, contact_id: int, touch: Touch, source: str, cookie_days: int | None, now: datetime
) -> tuple:
    """A history entry for a click (or the coupon) an event came with, in the order of
    REFERRAL_FIELDS: it expires the partner's cookie days after the click."""
    return (
        contact_id,
        touch.partner_id,
        source,
        None if source == ReferralSource.COUPON else touch.ref,  # a coupon is no click
        touch.at,
        expiry(touch.at, cookie_days),
        "",
        now,
    )


def history_record(*, contact_id: int, entries: Iterable[HistoryEntry]) -> None:
    """Add the clicks (and the coupon) an event came with to the contact's history, once
    per click, in one statement."""
    now = timezone.now()
    rows = [
        history_entry(
            contact_id=contact_id,
            touch=entry.touch,
            source=entry.source,
            cookie_days=entry.partner.cookie_days,
            now=now,
        )
        for entry in entries
    ]
    # ON CONFLICT without a target: the unique (contact, click_id) index is partial.
    insert(Referral, REFERRAL_FIELDS, rows, returning=(), suffix="ON CONFLICT DO NOTHING")


def _contact_lead_fix(contact: Contact, fix: ContactLead) -> bool:
    """Fix the contact's lead partner where it has none; False: another event fixed it
    meanwhile (the contact is then read again)."""
    fixed = Contact.objects.filter(pk=contact.pk, lead_partner__isnull=True).update(
        lead_partner_id=fix.partner_id, lead_partner_set_at=fix.set_at, lead_trace=fix.trace
    )
    if fixed:
        contact.lead_partner_id, contact.lead_partner_set_at = fix.partner_id, fix.set_at
        contact.lead_trace = fix.trace
        return True
    contact.refresh_from_db(fields=["lead_partner", "lead_partner_set_at", "lead_trace"])
    return False


def event_contact(
    *,
    person: Mapping[str, str],
    attribution: Attribution,
    at: datetime,
    plan: Callable[[int, ContactLead], EventPlan],
) -> tuple[Contact, EventPlan]:
    """The event's contact and the event's plan over it: the contact is written first (a
    new one with the lead partner `attribution` gives it), `plan(contact id, its lead
    partner before the event)` decides, then the contact's change and history entries of
    the plan are written."""
    contact, made = contact_write(**person, lead=contact_lead(ContactLead(), attribution, at)[0])
    if made:  # made now, with the lead partner `contact_lead` gives a new contact
        planned = plan(contact.pk, ContactLead())
    else:
        planned = plan(contact.pk, _lead(contact))
        if planned.lead_fix is not None and not _contact_lead_fix(contact, planned.lead_fix):
            planned = plan(contact.pk, _lead(contact))  # fixed meanwhile: that one counts
    if planned.entries:
        history_record(contact_id=contact.pk, entries=planned.entries)
    return contact, planned


def _lead(contact: Contact) -> ContactLead:
    return ContactLead(contact.lead_partner_id, contact.lead_partner_set_at, contact.lead_trace)
