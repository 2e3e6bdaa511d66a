"""Payout batches (SPEC §5.5 "Create Referral Partner Payments"): every write of payouts.

A batch ties each unpaid ledger entry it pays to the partner's payment, in set-based
statements inside one transaction, and sets each payment to exactly the sum of the entries
it tied. An entry already tied is never tied again, so running a range twice, or two
batches at once, cannot pay anything twice; partners are locked in id order so concurrent
batches serialise on them.
"""

from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DecimalField, Exists, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from partners.models import Partner

from .aggregates import money_sum
from .ledger import day_after, day_start
from .lifecycle import payable
from .models import Commission, Payment, PayoutBatch, PayoutMethod
from .money import ZERO
from .webhooks import webhook_payout_made

ZERO_SQL = Value(ZERO, output_field=DecimalField(max_digits=14, decimal_places=2))


def _unpaid(*, start: date, end: date, method: str, at: datetime):
    """The entries a batch may pay: unpaid, in the range, and payable at `at` (SPEC §11:
    a commission in its hold period waits, with its clawbacks and any rejection)."""
    entries = Commission.objects.filter(
        payable(at), payment__isnull=True, occurred_at__lt=day_after(end)
    )
    if method == PayoutMethod.EARNED_IN_RANGE:
        entries = entries.filter(occurred_at__gte=day_start(start))
    return entries


@transaction.atomic
def payout_batch_create(
    *,
    start: date,
    end: date,
    method: str,
    minimum: Decimal = ZERO,
    created_by: str = "",
    at: datetime | None = None,
) -> PayoutBatch:
    """Pay every partner whose unpaid amount is positive and at least `minimum`.

    `earned_in_range` pays the unpaid entries dated in [start, end]; `balance_plus_earned`
    pays every unpaid entry up to `end` (the beginning balance plus the range).
    """
    errors = {}
    if method not in PayoutMethod.values:
        errors["method"] = f"Choose one of {', '.join(PayoutMethod.values)}."
    if start > end:
        errors["end"] = "The end must not be before the start."
    if minimum < ZERO:
        errors["minimum"] = "The minimum must not be negative."
    if errors:
        raise ValidationError(errors)

    now = at or timezone.now()
    batch = PayoutBatch.objects.create(
        start=start, end=end, method=method, minimum=minimum, created_at=now, created_by=created_by
    )
    candidates = (
        _unpaid(start=start, end=end, method=method, at=now)
        .values("partner_id", "currency")
        .annotate(total=money_sum("amount"))
        .filter(total__gt=ZERO, total__gte=minimum)
        .order_by("partner_id", "currency")
    )
    pairs = [(row["partner_id"], row["currency"]) for row in candidates]
    if not pairs:
        return batch
    # Concurrent batches wait here, partner by partner in id order (no deadlock).
    list(
        Partner.objects.select_for_update()
        .filter(pk__in={pid for pid, _ in pairs})
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # Placeholder amounts; each is set below to exactly what its entries add up to.
    Payment.objects.bulk_create(
        Payment(batch=batch, partner_id=pid, currency=cur, amount=Decimal("0.01"), paid_at=now)
        for pid, cur in pairs
    )
    mine = Payment.objects.filter(
        batch=batch, partner_id=OuterRef("partner_id"), currency=OuterRef("currency")
    )
    _unpaid(start=start, end=end, method=method, at=now).filter(Exists(mine)).update(
        payment=Subquery(mine.values("pk")[:1])
    )
    tied_total = Subquery(
        Commission.objects.filter(payment=OuterRef("pk"))
        .values("payment")
        .annotate(total=Sum("amount"))
        .values("total")[:1]
    )
    payments = Payment.objects.filter(batch=batch).annotate(tied=Coalesce(tied_total, ZERO_SQL))
    # Another batch may have paid some entries between the sums and the locks.
    short = payments.filter(Q(tied__lte=ZERO) | Q(tied__lt=minimum)).values("pk")
    Commission.objects.filter(payment__in=short).update(payment=None)
    Payment.objects.filter(pk__in=short).delete()
    Payment.objects.filter(batch=batch).update(amount=tied_total)
    batch.total = Payment.objects.filter(batch=batch).aggregate(total=money_sum("amount"))["total"]
    batch.save(update_fields=["total"])
    webhook_payout_made(batch=batch)
    return batch
