"""Refunds and cancellations: each commission line gives back the refund's share (SPEC §5.4).

A line of a program that credits on payment (SPEC §10) gives back the same share of what it
was credited (credited x refunded / paid so far, `calculation.refund_shares`), and an
order with such lines cannot be refunded beyond what the customer paid.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from ..aggregates import money_sum
from ..calculation import refund_shares
from ..models import Commission, CommissionEntry, Event, EventKind, Order, Refund
from ..money import ZERO
from ..webhooks import webhook_commission_clawed_back
from .events import Intake, entries_brief, line_entry, order_event_record


def left_to_refund(order: Order, *, credited_on_payment: bool) -> Decimal:
    """What may still be refunded on the order: its total, or, when some of its lines are
    credited on payment, what the customer paid; less what was refunded."""
    return (order.paid if credited_on_payment else order.total) - order.refunded


def refund_amount(*, given: Decimal | None, left: Decimal, credited_on_payment: bool) -> Decimal:
    """The refund's amount (none given: all that is `left` to refund), or ValidationError
    naming `amount` when nothing is left or it is not between 0.01 and what is left."""
    amount = left if given is None else given
    if left <= ZERO:
        what = "paid and not yet refunded" if credited_on_payment else "left to refund"
        raise ValidationError({"amount": f"Nothing is {what} on this order."})
    if amount <= ZERO or amount > left:
        what = "what was paid and not yet refunded" if credited_on_payment else "what is left"
        raise ValidationError({"amount": f"Refund between 0.01 and {left} ({what})."})
    return amount


def refund_record(*, data: Mapping[str, Any], payload: Mapping[str, Any]) -> Intake:
    """A refund or cancellation: each commission line gives back the refund's share (§5.4)."""

    def handle(event: Event, order: Order, at: datetime) -> dict:
        lines = list(order.commissions.filter(entry=CommissionEntry.COMMISSION).order_by("id"))
        on_payment = any(line.credited is not None for line in lines)
        amount = refund_amount(
            given=data.get("amount"),
            left=left_to_refund(order, credited_on_payment=on_payment),
            credited_on_payment=on_payment,
        )
        # A rejection took back all that was left of its line: nothing more to claw back.
        taken = dict(
            order.commissions.filter(
                entry__in=[CommissionEntry.CLAWBACK, CommissionEntry.REJECTION]
            )
            .values("clawback_of")
            .annotate(total=money_sum("amount"))
            .values_list("clawback_of", "total")
        )
        got = refund_shares(
            lines=[line.amount for line in lines],
            credited=[line.credited for line in lines],
            taken=[-taken.get(line.pk, ZERO) for line in lines],
            order_total=order.total,
            paid=order.paid,
            refunded_before=order.refunded,
            refund=amount,
            currency=order.currency,
        )
        shares = {line.pk: share for line, share in zip(lines, got, strict=True)}
        refund = Refund.objects.create(event=event, order=order, amount=amount, occurred_at=at)
        rows = [
            line_entry(
                line,
                entry=CommissionEntry.CLAWBACK,
                amount=share,
                refund=refund,
                at=at,
                payable_at=line.payable_at,  # pending or payable with the line it takes back
                trace={
                    "refund": event.event_id,
                    "refunded": str(amount),
                    "order_total": str(order.total),
                    "clawback_of": line.pk,
                    "completes_refund": order.refunded + amount == order.total,
                    **({"credited": str(line.credited)} if line.credited is not None else {}),
                },
            )
            for line in lines
            if (share := shares[line.pk]) != ZERO
        ]
        Commission.objects.bulk_create(rows)
        webhook_commission_clawed_back(refund_pk=refund.pk, lines=rows)
        Order.objects.filter(pk=order.pk).update(refunded=order.refunded + amount)
        return {
            "event_id": event.event_id,
            "order_id": order.order_id,
            "refunded": str(amount),
            "clawbacks": entries_brief(rows),
        }

    return order_event_record(kind=EventKind.REFUND, data=data, payload=payload, handle=handle)
