"""The commission lifecycle (SPEC §11): hold periods, early approval, rejection.

A commission line is *pending* until its `payable_at` (the hold days of its program after it
was credited), then *payable*, then *paid* once a payment ties it, or *rejected* by staff.
The status is worked out by a query at the time asked (`status_expression`): no job flips
it, so nothing is late when the worker is down. A clawback or a rejection carries the
`payable_at` of the line it takes back, so the pending and payable figures move together.

Every write here is one service, called alike by the staff pages, the admin and the API.
"""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Q, QuerySet, Value, When
from django.utils import timezone

from partners.models import Partner

from .aggregates import money_sum
from .models import (
    Commission,
    CommissionEntry,
    CommissionStatus,
    Notification,
    NotificationKind,
    Order,
)
from .money import ZERO
from .selectors import engine_settings
from .services.notifications import notification_decisions, notifications_written

REASON_MAX = 500


def status_expression(at: datetime) -> Case:
    """A line's status at `at` (SPEC §11), as SQL."""
    return Case(
        When(rejected_at__isnull=False, then=Value(CommissionStatus.REJECTED)),
        When(payment__isnull=False, then=Value(CommissionStatus.PAID)),
        When(payable_at__lte=at, then=Value(CommissionStatus.PAYABLE)),
        default=Value(CommissionStatus.PENDING),
    )


def with_status(entries: QuerySet[Commission], *, at: datetime) -> QuerySet[Commission]:
    """`entries` annotated with `status` at `at`."""
    return entries.annotate(status=status_expression(at))


def status_filter(status: str, *, at: datetime) -> Q:
    """The condition of one status, for filtering lists without annotating."""
    if status == CommissionStatus.REJECTED:
        return Q(rejected_at__isnull=False)
    live = Q(rejected_at__isnull=True)
    if status == CommissionStatus.PAID:
        return live & Q(payment__isnull=False)
    if status == CommissionStatus.PAYABLE:
        return live & Q(payment__isnull=True, payable_at__lte=at)
    if status == CommissionStatus.PENDING:
        return live & Q(payment__isnull=True, payable_at__gt=at)
    raise ValueError(f"Unknown status {status!r}.")


def payable(at: datetime) -> Q:
    """The ledger entries a payout may pay at `at`: those whose hold is over."""
    return Q(payable_at__lte=at)


def commission_status(line: Commission, *, at: datetime) -> str:
    """One loaded line's status at `at` (the same rule as `status_expression`)."""
    if line.rejected_at is not None:
        return CommissionStatus.REJECTED
    if line.payment_id is not None:
        return CommissionStatus.PAID
    return CommissionStatus.PAYABLE if line.payable_at <= at else CommissionStatus.PENDING


def _lines(ids: Iterable[int]) -> list[Commission]:
    """The commission lines of `ids`, locked, in id order (concurrent reviews serialise)."""
    return list(
        Commission.objects.select_for_update()
        .filter(pk__in=set(ids), entry=CommissionEntry.COMMISSION)
        .order_by("pk")
    )


def _settle(lines: list[Commission], at: datetime) -> None:
    """The lines and their unpaid clawbacks stop being pending at `at` (if still later)."""
    pks = [line.pk for line in lines]
    Commission.objects.filter(
        Q(pk__in=pks) | Q(clawback_of__in=pks), payment__isnull=True, payable_at__gt=at
    ).update(payable_at=at)  # only those still later than `at`: the filter above


@transaction.atomic
def commissions_approve(*, ids: Iterable[int], by: str = "", at: datetime | None = None) -> int:
    """Make pending commission lines payable now (early approval); answers how many were.
    Lines not pending (payable, paid, rejected) are left as they are."""
    at = at or timezone.now()
    lines = [
        line for line in _lines(ids) if commission_status(line, at=at) == CommissionStatus.PENDING
    ]
    if not lines:
        return 0
    _settle(lines, at)
    Commission.objects.filter(pk__in=[line.pk for line in lines]).update(reviewed_by=by)
    return len(lines)


def rejection_error(line: Commission, *, left, at: datetime) -> str | None:
    """Why `line` cannot be rejected, or None."""
    status = commission_status(line, at=at)
    if status == CommissionStatus.REJECTED:
        return "This commission was already rejected."
    if status == CommissionStatus.PAID:
        return "This commission was already paid; a refund claws it back."
    if left <= ZERO:
        return "Nothing is left of this commission to reject (it was refunded)."
    return None


@transaction.atomic
def commissions_reject(
    *, ids: Iterable[int], reason: str, by: str = "", at: datetime | None = None
) -> list[Commission]:
    """Reject commission lines with a reason: each gets a rejection entry of minus what is left
    of it (the line less its clawbacks), the partner is emailed (unless skip notifications),
    and nothing is left to claw back. All or nothing: one line that cannot be rejected
    (already rejected or paid, or refunded in full) refuses the whole call."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the commission is rejected."})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"At most {REASON_MAX} characters."})
    at = at or timezone.now()
    wanted = set(ids)
    lines = _lines(wanted)
    if not lines or len(lines) != len(wanted):
        raise ValidationError({"commission": "Only commission lines can be rejected."})
    taken = dict(
        Commission.objects.filter(clawback_of__in=[line.pk for line in lines])
        .values("clawback_of")
        .annotate(total=money_sum("amount"))
        .values_list("clawback_of", "total")
    )
    # What the ledger still counts of each line: the line less its clawbacks; a line credited
    # on payment (SPEC §10) counts only through its credits, which `taken` holds too.
    left = {
        line.pk: (line.amount if line.credited is None else ZERO) + taken.get(line.pk, ZERO)
        for line in lines
    }
    errors = []
    for line in lines:
        # A line credited on payment may be rejected before anything was credited.
        unsettled = left[line.pk] if line.credited is None else line.amount
        error = rejection_error(line, left=unsettled, at=at)
        if error:
            errors.append(error if len(lines) == 1 else f"Commission {line.pk}: {error}")
    if errors:
        raise ValidationError({"commission": errors})
    _settle(lines, at)
    rejections = Commission.objects.bulk_create(
        Commission(
            partner_id=line.partner_id,
            order_id=line.order_id,
            clawback_of=line,
            level=line.level,
            kind=line.kind,
            entry=CommissionEntry.REJECTION,
            base=line.base,
            amount=-left[line.pk],
            currency=line.currency,
            program_id=line.program_id,
            program_version_id=line.program_version_id,
            occurred_at=at,
            payable_at=min(line.payable_at, at),
            reason=reason,
            reviewed_by=by,
            trace={"rejection_of": line.pk, "reason": reason, "by": by},
        )
        for line in lines
    )
    Commission.objects.filter(pk__in=[line.pk for line in lines]).update(
        rejected_at=at, reason=reason, reviewed_by=by
    )
    _rejections_notify(lines, at=at)
    return rejections


def _rejections_notify(lines: list[Commission], *, at: datetime) -> None:
    """One notification per rejected line, queued (or skipped with the reason) as the
    commission emails are, and sent by the same task once the transaction commits."""
    events = dict(
        Order.objects.filter(pk__in={line.order_id for line in lines}).values_list("pk", "event_id")
    )
    switches = Partner.objects.in_bulk({line.partner_id for line in lines})
    engine = engine_settings()
    rows = []
    for line in lines:
        # The partner's switch of the line's kind (a sale line: notify_sale), as for the
        # commission's own email; skip notifications in the defaults silences them all.
        [(_, _, status, why)] = notification_decisions(
            credited=[(line.partner_id, line.kind)], engine=engine, switches=switches
        )
        rows.append((line, status, why))
    made = Notification.objects.bulk_create(
        Notification(
            partner_id=line.partner_id,
            event_id=events[line.order_id],
            kind=NotificationKind.REJECTION,
            commission=line,
            status=status,
            reason=why,
            created_at=at,
        )
        for line, status, why in rows
    )
    notifications_written(
        [(n.partner_id, n.event_id, n.kind, n.status, n.reason, at) for n in made],
        [n.pk for n in made],
    )
