"""Payout batches (SPEC §5.5 "Create Referral Partner Payments", §11): every write of payouts.

A batch is recorded at once (`payout_batch_create`, the API's plain POST) or first made a
draft that records nothing (`payout_draft_create`), then confirmed (`payout_draft_confirm`)
or thrown away (`payout_draft_discard`). Each payment of a recorded batch is then marked
paid with the bank's or PayPal's reference, or failed: its entries are untied (owed again)
and a `returned` row of the opposite amount keeps the payments' sums true.

A batch ties each unpaid ledger entry it pays to the partner's payment, in set-based
statements inside one transaction, and sets each payment to exactly the sum of the entries
it tied. An entry already tied is never tied again, so running a range twice, or two
batches at once, cannot pay anything twice; partners are locked in id order so concurrent
batches serialise on them.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DecimalField, Exists, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from partners.models import Partner
from partners.selectors import defaults_get
from referral_program.background import task_queue_on_commit

from .aggregates import money_sum
from .ledger import day_after, day_start
from .lifecycle import payable
from .models import (
    Commission,
    Notification,
    NotificationKind,
    NotificationStatus,
    Payment,
    PaymentStatus,
    PayoutBatch,
    PayoutBatchStatus,
    PayoutDetails,
    PayoutMethod,
)
from .money import ZERO
from .webhooks import webhook_payout_made

ZERO_SQL = Value(ZERO, output_field=DecimalField(max_digits=14, decimal_places=2))


def _unpaid(*, start: date, end: date, method: str, at: datetime):
    """The entries a batch may pay: unpaid, in the range, and payable at `at` (SPEC §11:
    a commission in its hold period waits, with its clawbacks and any rejection)."""
    entries = Commission.objects.ledger().filter(
        payable(at), payment__isnull=True, occurred_at__lt=day_after(end)
    )
    if method == PayoutMethod.EARNED_IN_RANGE:
        entries = entries.filter(occurred_at__gte=day_start(start))
    return entries


LEFT_OUT_NO_DETAILS = "no payout details"
LEFT_OUT_NOTHING_OWED = "nothing owed (the balance is not positive)"
LEFT_OUT_BELOW_MINIMUM = "below the minimum"


class PayoutDraftStale(ValidationError):
    """What the draft would pay changed since it was made; its preview is made again."""


@dataclass(frozen=True)
class PayoutPlan:
    """Who a batch pays what, and who it leaves out and why (JSON-ready rows)."""

    payments: list[dict]
    left_out: list[dict]

    @property
    def pairs(self) -> list[tuple[int, str]]:
        return [(row["partner_id"], row["currency"]) for row in self.payments]

    @property
    def total(self) -> Decimal:
        return sum((Decimal(row["amount"]) for row in self.payments), ZERO)


def _check(*, start: date, end: date, method: str, minimum: Decimal) -> None:
    errors = {}
    if method not in PayoutMethod.values:
        errors["method"] = f"Choose one of {', '.join(PayoutMethod.values)}."
    if start > end:
        errors["end"] = "The end must not be before the start."
    if minimum < ZERO:
        errors["minimum"] = "The minimum must not be negative."
    if errors:
        raise ValidationError(errors)


def payout_plan(
    *,
    start: date,
    end: date,
    method: str,
    minimum: Decimal,
    require_payout_details: bool,
    at: datetime,
) -> PayoutPlan:
    """Each partner's unpaid total per currency (`_unpaid`: payable at `at`), paid when
    positive, at least the minimum and, with `require_payout_details`, when the partner has
    payout details; every other partner with unpaid entries is left out with the reason."""
    owed = (
        _unpaid(start=start, end=end, method=method, at=at)
        .values("partner_id", "currency")
        .annotate(total=money_sum("amount"))
        .order_by("partner_id", "currency")
    )
    rows = [(row["partner_id"], row["currency"], row["total"]) for row in owed]
    ids = {pid for pid, _, _ in rows}
    codes = dict(Partner.objects.filter(pk__in=ids).values_list("pk", "code"))
    with_details = set(
        PayoutDetails.objects.filter(partner_id__in=ids).values_list("partner_id", flat=True)
    )
    payments, left_out = [], []
    for pid, currency, total in rows:
        row = {"partner_id": pid, "partner": codes[pid], "currency": currency}
        row["amount"] = str(total)
        if total <= ZERO:
            left_out.append({**row, "reason": LEFT_OUT_NOTHING_OWED})
        elif total < minimum:
            left_out.append({**row, "reason": LEFT_OUT_BELOW_MINIMUM})
        elif require_payout_details and pid not in with_details:
            left_out.append({**row, "reason": LEFT_OUT_NO_DETAILS})
        else:
            payments.append(row)
    return PayoutPlan(payments=payments, left_out=left_out)


@transaction.atomic
def payout_batch_create(
    *,
    start: date,
    end: date,
    method: str,
    minimum: Decimal = ZERO,
    created_by: str = "",
    at: datetime | None = None,
    require_payout_details: bool = False,
) -> PayoutBatch:
    """Pay at once every partner whose unpaid amount is positive and at least `minimum`
    (and who has payout details, with `require_payout_details`).

    `earned_in_range` pays the unpaid entries dated in [start, end]; `balance_plus_earned`
    pays every unpaid entry up to `end` (the beginning balance plus the range).
    """
    _check(start=start, end=end, method=method, minimum=minimum)
    now = at or timezone.now()
    plan = payout_plan(
        start=start,
        end=end,
        method=method,
        minimum=minimum,
        require_payout_details=require_payout_details,
        at=now,
    )
    batch = PayoutBatch.objects.create(
        start=start,
        end=end,
        method=method,
        minimum=minimum,
        created_at=now,
        created_by=created_by,
        confirmed_at=now,
        confirmed_by=created_by,
        left_out=plan.left_out,
    )
    _record(batch, plan.pairs, now=now)
    return batch


def payout_draft_create(
    *,
    start: date,
    end: date,
    method: str,
    minimum: Decimal = ZERO,
    created_by: str = "",
    at: datetime | None = None,
) -> PayoutBatch:
    """A draft batch: who would be paid what and who is left out (partners without payout
    details are). It records no payment and ties no entry."""
    _check(start=start, end=end, method=method, minimum=minimum)
    now = at or timezone.now()
    plan = payout_plan(
        start=start,
        end=end,
        method=method,
        minimum=minimum,
        require_payout_details=True,
        at=now,
    )
    return PayoutBatch.objects.create(
        status=PayoutBatchStatus.DRAFT,
        start=start,
        end=end,
        method=method,
        minimum=minimum,
        created_at=now,
        created_by=created_by,
        total=plan.total,
        preview=plan.payments,
        left_out=plan.left_out,
    )


def _draft(batch_id: int) -> PayoutBatch:
    batch = PayoutBatch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise PayoutBatch.DoesNotExist(f"No payout batch {batch_id}.")
    if not batch.is_draft:
        raise ValidationError({"status": f"Payout batch {batch_id} is confirmed already."})
    return batch


def payout_draft_confirm(
    *, batch_id: int, confirmed_by: str = "", at: datetime | None = None
) -> PayoutBatch:
    """Record the draft's payments, exactly as previewed. When what is owed changed since
    (an order, a refund, another batch), nothing is recorded or changed: PayoutDraftStale
    says so, and staff throw the draft away and preview again."""
    now = at or timezone.now()
    with transaction.atomic():
        batch = _draft(batch_id)
        plan = payout_plan(
            start=batch.start,
            end=batch.end,
            method=batch.method,
            minimum=batch.minimum,
            require_payout_details=True,
            at=now,
        )
        if plan.payments != batch.preview:
            raise PayoutDraftStale(
                {
                    "status": "What partners are owed changed since this preview was made, "
                    "so it was not confirmed: throw it away and preview again."
                }
            )
        batch.status = PayoutBatchStatus.CONFIRMED
        batch.confirmed_at, batch.confirmed_by = now, confirmed_by
        batch.left_out = plan.left_out
        batch.save(update_fields=["status", "confirmed_at", "confirmed_by", "left_out"])
        _record(batch, plan.pairs, now=now)
        return batch


@transaction.atomic
def payout_draft_discard(*, batch_id: int) -> None:
    """Throw a draft away; it had recorded nothing. A confirmed batch cannot be."""
    _draft(batch_id).delete()


def _record(batch: PayoutBatch, pairs: list[tuple[int, str]], *, now: datetime) -> None:
    """Tie the unpaid entries of each (partner, currency) to a new payment of the batch."""
    start, end, method, minimum = batch.start, batch.end, batch.method, batch.minimum
    if not pairs:
        return
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
    Payment.objects.filter(batch=batch).update(
        amount=tied_total,
        payout_method=Coalesce(
            Subquery(
                PayoutDetails.objects.filter(partner=OuterRef("partner")).values("method")[:1]
            ),
            Value(""),
        ),
    )
    batch.total = Payment.objects.filter(batch=batch).aggregate(total=money_sum("amount"))["total"]
    batch.save(update_fields=["total"])
    _payout_emails(batch, now=now)
    webhook_payout_made(batch=batch)


def _payout_emails(batch: PayoutBatch, *, now: datetime) -> None:
    """One "payout made" email per payment, queued, or skipped when skip notifications is
    on (SPEC §2), like the lead and sale emails (logged either way)."""
    skip = defaults_get().skip_notifications
    rows = Notification.objects.bulk_create(
        Notification(
            partner_id=partner_id,
            payment_id=payment_id,
            kind=NotificationKind.PAYOUT,
            status=NotificationStatus.SKIPPED if skip else NotificationStatus.QUEUED,
            reason="Skip notifications is on in the defaults." if skip else "",
            created_at=now,
        )
        for payment_id, partner_id in Payment.objects.filter(batch=batch)
        .order_by("pk")
        .values_list("pk", "partner_id")
    )
    if skip or not rows:
        return
    ids = list(
        Notification.objects.filter(payment__batch=batch, status=NotificationStatus.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    task_queue_on_commit("commissions.tasks.send_notifications", ids)


def _marked(payment_id: int, *, allowed: tuple[str, ...], verb: str) -> Payment:
    payment = (
        Payment.objects.select_for_update()
        .filter(pk=payment_id, reverses__isnull=True)
        .select_related("batch")
        .first()
    )
    if payment is None:
        raise Payment.DoesNotExist(f"No payment {payment_id}.")
    if payment.status not in allowed:
        raise ValidationError(
            {"status": f"This payment is {payment.status}; it cannot be marked {verb}."}
        )
    return payment


@transaction.atomic
def payment_mark_paid(
    *, payment_id: int, reference: str, marked_by: str = "", at: datetime | None = None
) -> Payment:
    """The bank or PayPal paid it: record their reference (a recorded payment only)."""
    reference = reference.strip()
    if not reference:
        raise ValidationError({"reference": "Enter the bank's or PayPal's reference."})
    payment = _marked(payment_id, allowed=(PaymentStatus.RECORDED,), verb="paid")
    payment.status, payment.reference = PaymentStatus.PAID, reference[:200]
    payment.marked_at, payment.marked_by = at or timezone.now(), marked_by
    payment.save(update_fields=["status", "reference", "marked_at", "marked_by"])
    return payment


@transaction.atomic
def payment_mark_failed(
    *, payment_id: int, reason: str = "", marked_by: str = "", at: datetime | None = None
) -> Payment:
    """The payment did not reach the partner (also after it was marked paid: a bank return).
    Its entries are owed again and a `returned` row puts its amount back on the balance."""
    payment = _marked(
        payment_id, allowed=(PaymentStatus.RECORDED, PaymentStatus.PAID), verb="failed"
    )
    now = at or timezone.now()
    Partner.objects.select_for_update().filter(pk=payment.partner_id).values_list("pk").first()
    Commission.objects.filter(payment=payment).update(payment=None)
    Payment.objects.create(
        batch=payment.batch,
        partner_id=payment.partner_id,
        currency=payment.currency,
        amount=-payment.amount,
        paid_at=now,
        status=PaymentStatus.RETURNED,
        payout_method=payment.payout_method,
        reference=f"Payment {payment.pk} failed",
        marked_at=now,
        marked_by=marked_by,
        reverses=payment,
    )
    payment.status = PaymentStatus.FAILED
    payment.reference = (reason.strip() or "Failed")[:200]
    payment.marked_at, payment.marked_by = now, marked_by
    payment.save(update_fields=["status", "reference", "marked_at", "marked_by"])
    return payment
