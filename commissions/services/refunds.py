"""Refunds and cancellations: each commission line gives back the refund's share (SPEC §5.4)."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from partners.models import Partner

from ..aggregates import money_sum
from ..calculation import clawbacks
from ..models import Commission, CommissionEntry, Event, EventKind, Order, Refund
from ..money import ZERO
from ..webhooks import webhook_commission_clawed_back
from .events import Intake, UnknownOrder, event_record


def _codes(ids: Iterable[int | None]) -> dict[int, str]:
    ids = {pk for pk in ids if pk is not None}
    return dict(Partner.objects.filter(pk__in=ids).values_list("id", "code")) if ids else {}


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
        # A rejection took back all that was left of its line: nothing more to claw back.
        taken = dict(
            order.commissions.filter(
                entry__in=[CommissionEntry.CLAWBACK, CommissionEntry.REJECTION]
            )
            .values("clawback_of")
            .annotate(total=money_sum("amount"))
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
                program_version_id=line.program_version_id,
                occurred_at=at,
                payable_at=line.payable_at,  # pending or payable with the line it takes back
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
        webhook_commission_clawed_back(refund_pk=refund.pk, lines=rows)
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

    return event_record(
        kind=EventKind.REFUND,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
