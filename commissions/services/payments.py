"""Customer payments on an order (SPEC §10 "Credit timing").

The lines of a program that credits on payment are worked out when the order arrives
(`Commission.credited` 0) and credited as the customer pays: each payment writes a credit
entry per line, its share by `calculation.payment_credits`, dated at the payment, and adds
it to the line's `credited`. A payment on an order whose lines were all credited in full at
the order is recorded and credits nothing.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from ..calculation import payment_credits
from ..models import Commission, CommissionEntry, Event, EventKind, Order, OrderPayment
from ..money import ZERO
from .events import Intake, entries_brief, line_entry, order_event_record


def lines_credited_on_payment(order: Order) -> list[Commission]:
    """The order's lines of programs that credit on payment, oldest first; a line staff
    rejected is left out (nothing more is credited to it)."""
    return list(
        order.commissions.filter(
            entry=CommissionEntry.COMMISSION, credited__isnull=False, rejected_at__isnull=True
        ).order_by("id")
    )


def payment_amount(*, given: Decimal, left: Decimal) -> Decimal:
    """The payment's amount, or ValidationError naming `amount` when nothing is `left` to
    pay on the order or it is not between 0.01 and what is left."""
    if left <= ZERO:
        raise ValidationError({"amount": "Nothing is left to pay on this order."})
    if given <= ZERO or given > left:
        raise ValidationError({"amount": f"Payment between 0.01 and {left} (what is left)."})
    return given


def payment_record(*, data: Mapping[str, Any], payload: Mapping[str, Any]) -> Intake:
    """A customer's payment on an order: each line credited on payment gets its share."""

    def handle(event: Event, order: Order, at: datetime) -> dict:
        amount = payment_amount(given=data["amount"], left=order.total - order.paid)
        lines = lines_credited_on_payment(order)
        shares = payment_credits(
            lines=[line.amount for line in lines],
            credited_so_far=[line.credited for line in lines],
            order_total=order.total,
            paid_before=order.paid,
            payment=amount,
            currency=order.currency,
        )
        OrderPayment.objects.create(event=event, order=order, amount=amount, occurred_at=at)
        rows = []
        for line, share in zip(lines, shares, strict=True):
            if share == ZERO:
                continue
            line.credited += share
            # Held as long as the line's program holds a commission, from the payment; at
            # once when staff approved the line early.
            hold = timedelta(days=0 if line.reviewed_by else line.trace.get("hold_days", 0))
            trace = {
                "payment": event.event_id,
                "paid": str(amount),
                "paid_before": str(order.paid),
                "order_total": str(order.total),
                "credit_of": line.pk,
                "line": str(line.amount),
                "completes_payment": order.paid + amount == order.total,
            }
            rows.append(
                line_entry(
                    line,
                    entry=CommissionEntry.CREDIT,
                    amount=share,
                    at=at,
                    payable_at=at + hold,
                    trace=trace,
                )
            )
        Commission.objects.bulk_create(rows)
        Commission.objects.bulk_update([row.clawback_of for row in rows], ["credited"])
        Order.objects.filter(pk=order.pk).update(paid=order.paid + amount)
        return {
            "event_id": event.event_id,
            "order_id": order.order_id,
            "paid": str(amount),
            "credits": entries_brief(rows),
        }

    return order_event_record(kind=EventKind.PAYMENT, data=data, payload=payload, handle=handle)
