"""Helpers for the tests of credit on payment: an order's payments, then its refunds."""

from decimal import Decimal

from commissions.calculation import clawbacks, payment_credits


def pay(*, lines, order_total, payments, currency="USD") -> tuple[list[list[Decimal]], list]:
    """Each payment's credits in turn, and what each line was credited in the end."""
    credited = [Decimal(0)] * len(lines)
    paid = Decimal(0)
    steps = []
    for payment in payments:
        credits = payment_credits(
            lines=lines,
            credited_so_far=credited,
            order_total=order_total,
            paid_before=paid,
            payment=payment,
            currency=currency,
        )
        steps.append(credits)
        credited = [c + x for c, x in zip(credited, credits, strict=True)]
        paid += payment
    return steps, credited


def claw_back(*, credited, paid, refunds, currency="USD") -> tuple[list[list[Decimal]], list]:
    """Each refund's clawbacks in turn (negative), and what was taken back from each line."""
    taken = [Decimal(0)] * len(credited)
    refunded = Decimal(0)
    steps = []
    for refund in refunds:
        # a line credited on payment: `clawbacks` over what was credited and what was paid
        shares = clawbacks(
            lines=credited,
            taken=taken,
            order_total=paid,
            refunded_before=refunded,
            refund=refund,
            currency=currency,
        )
        steps.append(shares)
        taken = [t - s for t, s in zip(taken, shares, strict=True)]
        refunded += refund
    return steps, taken
