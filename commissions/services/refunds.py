"""Refunds and cancellations: each commission line gives back the refund's share (SPEC §5.4).

A line of a program that credits on payment (SPEC §10) gives back the same share of what it
was credited (credited x refunded / paid so far, `calculation.payment_clawbacks`), and an
order with such lines cannot be refunded beyond what the customer paid.
"""

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..aggregates import money_sum
from ..calculation import clawbacks, payment_clawbacks
from ..models import Commission, CommissionEntry, Event, EventKind, Order, Refund
from ..money import ZERO
from ..webhooks import webhook_commission_clawed_back
from .events import Intake, UnknownOrder, entries_brief, event_record


def refund_record(*, data: Mapping[str, Any], payload: Mapping[str, Any]) -> Intake:
    """A refund or cancellation: each commission line gives back the refund's share (§5.4)."""
    received_at = timezone.now()
    at = data.get("occurred_at") or received_at

    def handle(event: Event) -> dict:
        order = Order.objects.select_for_update().filter(order_id=data["order_id"]).first()
        if order is None:
            raise UnknownOrder(data["order_id"])
        lines = list(order.commissions.filter(entry=CommissionEntry.COMMISSION).order_by("id"))
        on_payment = any(line.credited is not None for line in lines)
        left = (order.paid if on_payment else order.total) - order.refunded
        amount = data.get("amount")
        amount = left if amount is None else amount
        if left <= ZERO:
            what = "paid and not yet refunded" if on_payment else "left to refund"
            raise ValidationError({"amount": f"Nothing is {what} on this order."})
        if amount <= ZERO or amount > left:
            what = "what was paid and not yet refunded" if on_payment else "what is left"
            raise ValidationError({"amount": f"Refund between 0.01 and {left} ({what})."})
        # A rejection took back all that was left of its line: nothing more to claw back.
        taken = dict(
            order.commissions.filter(
                entry__in=[CommissionEntry.CLAWBACK, CommissionEntry.REJECTION]
            )
            .values("clawback_of")
            .annotate(total=money_sum("amount"))
            .values_list("clawback_of", "total")
        )
        at_order = [line for line in lines if line.credited is None]
        paid_lines = [line for line in lines if line.credited is not None]
        common = {"refunded_before": order.refunded, "refund": amount, "currency": order.currency}
        shares = dict(
            zip(
                [line.pk for line in at_order],
                clawbacks(
                    lines=[line.amount for line in at_order],
                    taken=[-taken.get(line.pk, ZERO) for line in at_order],
                    order_total=order.total,
                    **common,
                ),
                strict=True,
            )
        )
        if paid_lines:
            shares.update(
                zip(
                    [line.pk for line in paid_lines],
                    payment_clawbacks(
                        credited=[line.credited for line in paid_lines],
                        taken=[-taken.get(line.pk, ZERO) for line in paid_lines],
                        paid=order.paid,
                        **common,
                    ),
                    strict=True,
                )
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

    return event_record(
        kind=EventKind.REFUND,
        event_id=data["event_id"],
        payload=payload,
        occurred_at=at,
        received_at=received_at,
        handle=handle,
    )
