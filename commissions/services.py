"""Every write of the commissions engine: contacts, referral history, events, notifications.

Event intake (SPEC §6) is idempotent: the event row is inserted first under a unique
(kind, event_id) constraint, inside the same transaction as everything the event writes.
A concurrent copy waits on that insert and then answers with the first copy's result.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import timezone

from partners.models import Partner, PartnerStatus
from partners.tokens import decode_token

from .attribution import NOBODY, SOURCE_IP, Attribution, Touch, attribute, valid_clicks
from .calculation import LEAD, SALE, Item, clawbacks, commission_lines, order_base
from .models import (
    Commission,
    CommissionEntry,
    Contact,
    Event,
    EventKind,
    Lead,
    Notification,
    NotificationStatus,
    Order,
    Referral,
    ReferralSource,
    Refund,
)
from .money import ZERO
from .selectors import (
    EngineSettings,
    engine_settings,
    history_touches,
    ip_touches,
    partner_chain,
    partner_states,
    program_terms,
)

# The source named in a trace when the contact's lead partner was fixed by an earlier event.
SOURCE_CONTACT = "contact"


class UnknownOrder(Exception):
    """A refund names an order that was never recorded (answered 404)."""


@dataclass(frozen=True)
class Intake:
    result: dict
    duplicate: bool


# --- Contacts and referral history -----------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def contact_upsert(*, email: str, first_name: str = "", last_name: str = "") -> Contact:
    """The contact with this email, made if new; names given fill in or replace old ones."""
    names = {k: v for k, v in (("first_name", first_name), ("last_name", last_name)) if v}
    contact, created = Contact.objects.get_or_create(email=normalise_email(email), defaults=names)
    if not created and any(getattr(contact, k) != v for k, v in names.items()):
        Contact.objects.filter(pk=contact.pk).update(**names)
        for name, value in names.items():
            setattr(contact, name, value)
    return contact


def _expiry(at: datetime, cookie_days: int | None) -> datetime | None:
    return at + timedelta(days=cookie_days) if cookie_days else None


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
        expires_at=_expiry(at, partner.cookie_days),
        created_by=created_by,
    )


def history_record(
    *,
    contact: Contact,
    touches: Iterable[Touch],
    source: str,
    cookie_days: Mapping[int, int | None],
) -> None:
    """Add the clicks an event came with to the contact's history (once per click)."""
    entries = [
        Referral(
            contact=contact,
            partner_id=touch.partner_id,
            source=source,
            click_id=touch.ref,
            set_at=touch.at,
            expires_at=_expiry(touch.at, cookie_days.get(touch.partner_id)),
        )
        for touch in touches
    ]
    if entries:
        Referral.objects.bulk_create(entries, ignore_conflicts=True)


# --- Attribution of one event ------------------------------------------------------------


@dataclass(frozen=True)
class Tracked:
    attribution: Attribution
    partners: dict  # partner id -> PartnerState, for everything looked at


def _track(
    *, engine: EngineSettings, contact: Contact, at: datetime, token: str, ip: str | None
) -> Tracked:
    """Attribution by cookie, history and IP (not explicit), recording the history it finds."""
    policy = engine.policy
    cookie_clicks = [
        Touch(ref=c.click_id.hex, partner_id=c.partner_id, at=c.at) for c in decode_token(token)
    ]
    partners = partner_states(c.partner_id for c in cookie_clicks)
    history, ip_clicks = [], []
    if policy.tracking_method == "history_and_cookies":
        history, found = history_touches(contact=contact, at=at, rule=policy.partner_selection)
        partners.update(found)
    counted = valid_clicks(cookie_clicks, partners, at)
    if not counted and ip and policy.use_ip_address and policy.tracking_method != "cookies_only":
        ip_clicks, found = ip_touches(ip=ip, at=at)
        partners.update(found)
    result = attribute(
        policy=policy,
        at=at,
        partners=partners,
        cookie_clicks=counted,
        history=history,
        ip_clicks=ip_clicks,
    )
    days = {pk: state.cookie_days for pk, state in partners.items()}
    history_record(contact=contact, touches=counted, source=ReferralSource.COOKIE, cookie_days=days)
    if result.source == SOURCE_IP:
        chosen = [t for t in ip_clicks if t.ref == result.ref]
        history_record(contact=contact, touches=chosen, source=ReferralSource.IP, cookie_days=days)
    return Tracked(attribution=result, partners=partners)


def _explicit(partner: Partner | None) -> Attribution | None:
    return Attribution(partner_id=partner.pk, source="explicit") if partner else None


def contact_fix_lead(*, contact: Contact, attribution: Attribution, at: datetime) -> tuple:
    """The contact's lead partner and its trace, fixing it at the first attribution."""
    if contact.lead_partner_id is None and attribution.partner_id is not None:
        trace = {**attribution.trace(), "fixed_at": at.isoformat()}
        fixed = Contact.objects.filter(pk=contact.pk, lead_partner__isnull=True).update(
            lead_partner_id=attribution.partner_id, lead_partner_set_at=at, lead_trace=trace
        )
        if fixed:
            contact.lead_partner_id, contact.lead_partner_set_at = attribution.partner_id, at
            contact.lead_trace = trace
            return contact.lead_partner_id, trace
        contact.refresh_from_db(fields=["lead_partner", "lead_partner_set_at", "lead_trace"])
    if contact.lead_partner_id is None:
        return None, NOBODY.trace()
    return contact.lead_partner_id, {
        **contact.lead_trace,
        "source": SOURCE_CONTACT,
        "first_source": contact.lead_trace.get("source"),
    }


# --- Event intake ------------------------------------------------------------------------


def event_result(*, kind: str, event_id: str) -> dict | None:
    """The first result of an event already recorded, or None."""
    return (
        Event.objects.filter(kind=kind, event_id=event_id).values_list("result", flat=True).first()
    )


def _intake(
    *,
    kind: str,
    event_id: str,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    received_at: datetime,
    handle: Callable[[Event], dict],
) -> Intake:
    with transaction.atomic():
        event, created = Event.objects.get_or_create(
            kind=kind,
            event_id=event_id,
            defaults={"payload": payload, "received_at": received_at, "occurred_at": occurred_at},
        )
        if not created:
            return Intake(result=event.result, duplicate=True)
        result = handle(event)
        Event.objects.filter(pk=event.pk).update(result=result)
    return Intake(result=result, duplicate=False)


def _codes(ids: Iterable[int | None]) -> dict[int, str]:
    ids = {pk for pk in ids if pk is not None}
    return dict(Partner.objects.filter(pk__in=ids).values_list("id", "code")) if ids else {}


def _brief(attribution: Mapping[str, Any]) -> dict:
    return {"source": attribution.get("source"), "rule": attribution.get("rule")}


def web_form_record(
    *, data: Mapping[str, Any], payload: Mapping[str, Any], notify: bool = True
) -> Intake:
    """A web form: the contact, its referral history and lead partner. Pays nothing (§5.1)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    def handle(event: Event) -> dict:
        engine = engine_settings()
        contact = contact_upsert(**data["contact"])
        attribution = _explicit(data.get("lead_partner"))
        tracked = _track(
            engine=engine,
            contact=contact,
            at=at,
            token=data.get("tracking_token", ""),
            ip=data.get("ip"),
        )
        lead_id, trace = contact_fix_lead(
            contact=contact, attribution=attribution or tracked.attribution, at=at
        )
        Lead.objects.create(
            event=event,
            contact=contact,
            form=data.get("form", ""),
            partner_id=lead_id,
            trace=trace,
            occurred_at=at,
        )
        if lead_id is not None:
            notifications_queue(
                event=event, credited=[(lead_id, LEAD)], engine=engine, at=at, notify=notify
            )
        return {
            "event_id": event.event_id,
            "contact_id": contact.pk,
            "lead_partner": _codes([lead_id]).get(lead_id),
            "attribution": _brief(trace),
        }

    return _intake(
        kind=EventKind.WEB_FORM,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )


def order_record(
    *, data: Mapping[str, Any], payload: Mapping[str, Any], notify: bool = True
) -> Intake:
    """An order: attribution of its lead and sale partner, and the commissions (§4, §5.2)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    def handle(event: Event) -> dict:
        engine = engine_settings()
        currency = data.get("currency") or settings.DEFAULT_CURRENCY
        contact = contact_upsert(**data["contact"])
        tracked = _track(
            engine=engine,
            contact=contact,
            at=at,
            token=data.get("tracking_token", ""),
            ip=data.get("ip"),
        )
        explicit_lead = _explicit(data.get("lead_partner"))
        if explicit_lead is not None:
            contact_fix_lead(contact=contact, attribution=explicit_lead, at=at)
            lead_id, lead_trace = explicit_lead.partner_id, explicit_lead.trace()
        else:
            lead_id, lead_trace = contact_fix_lead(
                contact=contact, attribution=tracked.attribution, at=at
            )
        sale = _explicit(data.get("sale_partner")) or tracked.attribution
        sale_trace = sale.trace()

        items = [Item(quantity=i["quantity"], unit_price=i["unit_price"]) for i in data["items"]]
        discount, shipping, tax = (data.get(k) or ZERO for k in ("discount", "shipping", "tax"))
        base = order_base(items, discount)
        order = Order.objects.create(
            event=event,
            order_id=event.event_id,
            contact=contact,
            currency=currency,
            items=[
                {**i, "quantity": i["quantity"], "unit_price": str(i["unit_price"])}
                for i in data["items"]
            ],
            discount=discount,
            shipping=shipping,
            tax=tax,
            base=base,
            total=base + shipping + tax,
            ip=data.get("ip"),
            lead_partner_id=lead_id,
            sale_partner_id=sale.partner_id,
            lead_trace=lead_trace,
            sale_trace=sale_trace,
            occurred_at=at,
        )
        rows, loaded = [], {}
        for kind, partner_id, trace in (
            (LEAD, lead_id, lead_trace),
            (SALE, sale.partner_id, sale_trace),
        ):
            if partner_id is not None:
                rows += _commission_rows(
                    order=order,
                    kind=kind,
                    partner_id=partner_id,
                    trace=trace,
                    engine=engine,
                    loaded=loaded,
                )
        Commission.objects.bulk_create(rows)
        codes = _codes([lead_id, sale.partner_id, *(row.partner_id for row in rows)])
        notifications_queue(
            event=event,
            credited=[(r.partner_id, r.kind) for r in rows],
            engine=engine,
            at=at,
            notify=notify,
        )
        return {
            "event_id": event.event_id,
            "order_id": order.order_id,
            "base": str(base),
            "lead_partner": codes.get(lead_id),
            "sale_partner": codes.get(sale.partner_id),
            "attribution": _brief(sale_trace),
            "commissions": [
                {
                    "id": row.pk,
                    "partner": codes[row.partner_id],
                    "level": row.level,
                    "kind": row.kind,
                    "amount": str(row.amount),
                    "currency": row.currency,
                }
                for row in rows
            ],
        }

    return _intake(
        kind=EventKind.ORDER,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )


def _once(loaded: dict, key: tuple, load: Callable[[], Any]) -> Any:
    if key not in loaded:
        loaded[key] = load()
    return loaded[key]


def _commission_rows(
    *,
    order: Order,
    kind: str,
    partner_id: int,
    trace: dict,
    engine: EngineSettings,
    loaded: dict,
) -> list[Commission]:
    """The lines one kind pays; `loaded` keeps the chains and programs read for this order,
    so a partner or program credited for both kinds is read once."""
    chain = _once(loaded, ("chain", partner_id), lambda: partner_chain(partner_id))
    terms = _once(loaded, ("terms", chain.program_id), lambda: program_terms(chain.program_id))
    if terms is None:
        return []
    lines = commission_lines(
        terms=terms,
        kind=kind,
        chain=chain.members,
        has_parent=chain.has_parent,
        base=order.base,
        currency=order.currency,
    )
    policy = engine.policy
    return [
        Commission(
            partner_id=line.partner_id,
            order=order,
            level=line.level,
            kind=kind,
            entry=CommissionEntry.COMMISSION,
            base=line.base,
            amount=line.amount,
            currency=order.currency,
            program_id=terms.program_id,
            occurred_at=order.occurred_at,
            trace={
                "attribution": trace,
                "credited_partner_id": partner_id,
                "program": {"id": terms.program_id, "name": terms.name, "levels": terms.levels},
                "rates": line.rates(),
                "base": str(line.base),
                "policy": {
                    "partner_selection": policy.partner_selection,
                    "tracking_method": policy.tracking_method,
                    "use_ip_address": policy.use_ip_address,
                },
            },
        )
        for line in lines
    ]


def refund_record(*, data: Mapping[str, Any], payload: Mapping[str, Any]) -> Intake:
    """A refund or cancellation: each commission line gives back the refund's share (§5.4)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    def handle(event: Event) -> dict:
        order = Order.objects.select_for_update().filter(order_id=data["order_id"]).first()
        if order is None:
            raise UnknownOrder(data["order_id"])
        left = order.total - order.refunded
        amount = data.get("amount")
        amount = left if amount is None else amount
        if left <= ZERO:
            raise ValidationError({"amount": "Nothing is left to refund on this order."})
        if amount <= ZERO or amount > left:
            raise ValidationError({"amount": f"Refund between 0.01 and {left} (what is left)."})
        lines = list(order.commissions.filter(entry=CommissionEntry.COMMISSION).order_by("id"))
        taken = dict(
            order.commissions.filter(entry=CommissionEntry.CLAWBACK)
            .values("clawback_of")
            .annotate(total=Sum("amount"))
            .values_list("clawback_of", "total")
        )
        shares = clawbacks(
            lines=[line.amount for line in lines],
            taken=[-taken.get(line.pk, ZERO) for line in lines],
            order_total=order.total,
            refunded_before=order.refunded,
            refund=amount,
            currency=order.currency,
        )
        refund = Refund.objects.create(event=event, order=order, amount=amount, occurred_at=at)
        rows = [
            Commission(
                partner_id=line.partner_id,
                order=order,
                refund=refund,
                clawback_of=line,
                level=line.level,
                kind=line.kind,
                entry=CommissionEntry.CLAWBACK,
                base=line.base,
                amount=share,
                currency=line.currency,
                program_id=line.program_id,
                occurred_at=at,
                trace={
                    "refund": event.event_id,
                    "refunded": str(amount),
                    "order_total": str(order.total),
                    "clawback_of": line.pk,
                    "completes_refund": order.refunded + amount == order.total,
                },
            )
            for line, share in zip(lines, shares, strict=True)
            if share != ZERO
        ]
        Commission.objects.bulk_create(rows)
        Order.objects.filter(pk=order.pk).update(refunded=order.refunded + amount)
        codes = _codes(row.partner_id for row in rows)
        return {
            "event_id": event.event_id,
            "order_id": order.order_id,
            "refunded": str(amount),
            "clawbacks": [
                {
                    "partner": codes[row.partner_id],
                    "level": row.level,
                    "kind": row.kind,
                    "amount": str(row.amount),
                }
                for row in rows
            ],
        }

    return _intake(
        kind=EventKind.REFUND,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )


# --- Notifications -------------------------------------------------------------------------


def notifications_queue(
    *,
    event: Event,
    credited: Iterable[tuple[int, str]],
    engine: EngineSettings,
    at: datetime,
    notify: bool = True,
) -> list[Notification]:
    """One notification per partner and kind, queued or skipped with the reason (§5.6).

    The emails are sent by a task queued after the transaction commits. `notify=False`
    (events imported from a file) logs them as skipped: nobody is emailed about the past.
    """
    wanted = list(dict.fromkeys(credited))
    if not wanted:
        return []
    switches = dict(
        (pk, (lead, sale))
        for pk, lead, sale in Partner.objects.filter(pk__in={p for p, _ in wanted}).values_list(
            "id", "notify_lead", "notify_sale"
        )
    )
    rows = []
    for partner_id, kind in wanted:
        notify_lead, notify_sale = switches[partner_id]
        if not notify:
            status, reason = NotificationStatus.SKIPPED, "Imported from a file: no email."
        elif engine.skip_notifications:
            status, reason = NotificationStatus.SKIPPED, "Skip notifications is on in the defaults."
        elif not (notify_lead if kind == LEAD else notify_sale):
            status, reason = NotificationStatus.SKIPPED, f"The partner turned off {kind} emails."
        else:
            status, reason = NotificationStatus.QUEUED, ""
        rows.append(
            Notification(
                partner_id=partner_id,
                event=event,
                kind=kind,
                status=status,
                reason=reason,
                created_at=at,
            )
        )
    Notification.objects.bulk_create(rows)
    queued = [row.pk for row in rows if row.status == NotificationStatus.QUEUED]
    if queued:
        from .tasks import send_notification

        transaction.on_commit(lambda: [send_notification.delay(pk) for pk in queued])
    return rows


def notification_send(*, notification_id: int) -> bool:
    """Send one queued notification; a second run of the same id sends nothing."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("partner", "event")
            .filter(pk=notification_id, status=NotificationStatus.QUEUED)
            .first()
        )
        if notification is None:
            return False
        context = _notification_context(notification)
        subject = render_to_string(f"emails/{notification.kind}_subject.txt", context).strip()
        body = render_to_string(f"emails/{notification.kind}_body.txt", context)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [notification.partner.email])
        notification.status = NotificationStatus.SENT
        notification.sent_at = timezone.now()
        notification.save(update_fields=["status", "sent_at"])
    return True


def _notification_context(notification: Notification) -> dict:
    event = notification.event
    commissions = []
    order = Order.objects.filter(event=event).first()
    if order is not None:
        commissions = list(
            order.commissions.filter(
                partner=notification.partner,
                kind=notification.kind,
                entry=CommissionEntry.COMMISSION,
            ).order_by("level")
        )
    lead = Lead.objects.filter(event=event).select_related("contact").first()
    return {
        "partner": notification.partner,
        "kind": notification.kind,
        "order": order,
        "lead": lead,
        "commissions": commissions,
        "total": sum((c.amount for c in commissions), Decimal(0)),
        "site_url": settings.SITE_URL,
    }
