"""The ledger's part of a partner's data export (issue 7, docs/privacy.md).

`partners.services.privacy.partner_export` runs every function named in
settings.PARTNER_EXPORT_SECTIONS (partners never imports commissions); each takes the
partner and returns sections to add. Three queries, however long the ledger.
"""

from typing import Any

from partners.models import Partner

from .models import (
    Commission,
    Notification,
    Payment,
    PayoutDetails,
    PayoutDetailsChange,
    SimulationRun,
)
from .payout_details import FIELDS as PAYOUT_FIELDS


def partner_ledger_sections(partner: Partner) -> dict[str, Any]:
    """Their commissions and clawbacks, payments and the emails sent to them. An order is
    named by its order_id only: the customer behind it is not the partner's data."""
    commissions = [
        {
            "id": row["id"],
            "order_id": row["order__order_id"],
            "level": row["level"],
            "kind": row["kind"],
            "entry": row["entry"],
            "amount": str(row["amount"]),
            "currency": row["currency"],
            "occurred_at": row["occurred_at"].isoformat(),
            "paid": row["payment_id"] is not None,
        }
        for row in Commission.objects.filter(partner=partner)
        .order_by("occurred_at", "id")
        .values(
            "id",
            "order__order_id",
            "level",
            "kind",
            "entry",
            "amount",
            "currency",
            "occurred_at",
            "payment_id",
        )
    ]
    payments = [
        {
            "batch": row["batch_id"],
            "amount": str(row["amount"]),
            "currency": row["currency"],
            "paid_at": row["paid_at"].isoformat(),
        }
        for row in Payment.objects.filter(partner=partner)
        .order_by("paid_at", "id")
        .values("batch_id", "amount", "currency", "paid_at")
    ]
    notifications = [
        {
            "kind": row["kind"],
            "status": row["status"],
            "reason": row["reason"],
            "created_at": row["created_at"].isoformat(),
            "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
        }
        for row in Notification.objects.filter(partner=partner)
        .order_by("created_at", "id")
        .values("kind", "status", "reason", "created_at", "sent_at")
    ]
    details = PayoutDetails.objects.filter(partner=partner).first()
    payout_details = None
    if details is not None:  # their own data: in full
        payout_details = {name: getattr(details, name) or "" for name in PAYOUT_FIELDS}
    return {
        "commissions": commissions,
        "payments": payments,
        "notifications": notifications,
        "payout_details": payout_details,
    }


def partner_payout_details_erase(partner: Partner) -> None:
    """Erasure (partners.services.privacy.partner_erase): the payout details go, and the log of
    their changes keeps when and which fields, not even the masked values."""
    PayoutDetails.objects.filter(partner=partner).delete()
    PayoutDetailsChange.objects.filter(partner=partner).update(summary="(erased)", changed_by="")


def partner_previews_erase(partner: Partner) -> None:
    """Erasure: every preview's run goes (SPEC §13; any may name the partner, by code and
    name, in its table, its orders or the values it replayed). Runs are kept a day at most
    anyway, and nothing needs them once their page is closed."""
    SimulationRun.objects.all().delete()
