"""The partners' notifications: one per partner and kind, queued or skipped (SPEC §5.6).

The emails of the queued ones are sent by a task queued once the transaction commits
(`commissions.tasks.send_notifications`, named through `referral_program.background`).
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from referral_program.background import task_queue_on_commit

from ..calculation import LEAD
from ..models import (
    Commission,
    CommissionEntry,
    Event,
    Lead,
    Notification,
    NotificationKind,
    NotificationStatus,
    Order,
)
from ..payout_details import change_description
from ..selectors import EngineSettings

NOTIFICATION_FIELDS = ("partner", "event", "kind", "status", "reason", "created_at")


class QueuedNotification(NamedTuple):
    """A notification row as written (`notifications_written`)."""

    pk: int
    partner_id: int
    kind: str
    status: str
    reason: str


def notification_rows(
    *,
    event: Event,
    credited: Iterable[tuple[int, str]],
    engine: EngineSettings,
    at: datetime,
    switches: Mapping[int, Any],
) -> list[tuple]:
    """An event's notification rows, one per partner and kind, queued or skipped with the
    reason (§5.6), in the order of NOTIFICATION_FIELDS, for the caller to write with its
    other rows; then `notifications_written` queues the emails. `switches`: the partners'
    `notify_lead` and `notify_sale` by id (a `ChainPartner` has them). Events imported from
    a file write none (`emails_wanted` counts what they skip)."""
    wanted = list(dict.fromkeys(credited))
    if not wanted:
        return []
    decisions = notification_decisions(credited=wanted, engine=engine, switches=switches)
    return [(partner_id, event.pk, *decision, at) for partner_id, *decision in decisions]


def notifications_written(rows: Sequence[tuple], pks: Sequence[int]) -> list[QueuedNotification]:
    """The notification rows as written (their ids `pks`); the emails of those queued are
    sent by one task, once the transaction commits."""
    written = [
        QueuedNotification(pk, partner_id, kind, status, reason)
        for pk, (partner_id, _, kind, status, reason, _) in zip(pks, rows, strict=True)
    ]
    queued = [row.pk for row in written if row.status == NotificationStatus.QUEUED]
    if queued:
        task_queue_on_commit("commissions.tasks.send_notifications", queued)
    return written


def notification_decisions(
    *,
    credited: Iterable[tuple[int, str]],
    engine: EngineSettings,
    switches: Mapping[int, Any],
) -> list[tuple[int, str, str, str]]:
    """(partner id, kind, status, reason) of each notification: one per partner and kind,
    queued, or skipped with the reason (§5.6). `switches`: the partners' `notify_lead` and
    `notify_sale` by id."""
    result = []
    for partner_id, kind in dict.fromkeys(credited):
        partner = switches[partner_id]
        if engine.skip_notifications:
            status, reason = NotificationStatus.SKIPPED, "Skip notifications is on in the defaults."
        elif not (partner.notify_lead if kind == LEAD else partner.notify_sale):
            status, reason = NotificationStatus.SKIPPED, f"The partner turned off {kind} emails."
        else:
            status, reason = NotificationStatus.QUEUED, ""
        result.append((partner_id, kind, status, reason))
    return result


def emails_wanted(
    *, credited: Iterable[tuple[int, str]], engine: EngineSettings, switches: Mapping[int, Any]
) -> int:
    """How many emails the credited partners would be sent for an event (its notifications
    that would be queued): what an imported event skips, since it emails nobody and logs no
    notification (SPEC §5.6)."""
    decisions = notification_decisions(credited=credited, engine=engine, switches=switches)
    return sum(1 for *_, status, _ in decisions if status == NotificationStatus.QUEUED)


def notification_send(*, notification_id: int) -> bool:
    """Send one queued notification; a second run of the same id sends nothing."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("partner", "event", "payment__batch", "details_change")
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
    if notification.kind in PARTNER_EMAIL_CONTEXTS:
        return PARTNER_EMAIL_CONTEXTS[notification.kind](notification)
    event = notification.event
    if notification.commission_id is not None:  # a rejection (SPEC §11)
        line = Commission.objects.select_related("order").get(pk=notification.commission_id)
        return {
            "partner": notification.partner,
            "kind": notification.kind,
            "commission": line,
            "order": line.order,
            "reason": line.reason,
            "site_url": settings.SITE_URL,
        }
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


def _payout_context(notification: Notification) -> dict:
    payment = notification.payment
    return {
        "partner": notification.partner,
        "payment": payment,
        "batch": payment.batch,
        "site_url": settings.SITE_URL,
    }


def _payout_details_context(notification: Notification) -> dict:
    change = notification.details_change
    return {
        "partner": notification.partner,
        "change": change,
        "description": change_description(change),
        "site_url": settings.SITE_URL,
    }


# Emails that are not about an event (SPEC §11): the context of each kind.
PARTNER_EMAIL_CONTEXTS = {
    NotificationKind.PAYOUT: _payout_context,
    NotificationKind.PAYOUT_DETAILS: _payout_details_context,
}
