"""The ledger (SPEC §5.5): per partner and currency, for any date range. Reads only.

Every figure is one aggregate query; nothing loops over rows in Python. Dates are whole
UTC days: a range runs from `start` 00:00 to the end of `end`; either may be open.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from partners.models import Partner

from .aggregates import money_sum
from .models import EARNED_ENTRIES, Commission, CommissionEntry, Payment
from .money import ZERO

# A ledger's figures (SPEC §5.5), in the order reports show them; then SPEC §11's: the
# rejections (subtracted like clawbacks), and what of the balance is pending and payable.
LEDGER_FIGURES = ("beginning_balance", "earned", "clawbacks", "payments", "ending_balance")
LIFECYCLE_FIGURES = ("rejections", "pending", "payable")


def day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def day_after(day: date | None) -> datetime | None:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) if day else None


@dataclass(frozen=True)
class LedgerSummary:
    partner_id: int
    currency: str
    start: date | None
    end: date | None
    beginning_balance: Decimal = ZERO
    earned: Decimal = ZERO
    clawbacks: Decimal = ZERO  # a positive figure, subtracted
    payments: Decimal = ZERO  # a positive figure, subtracted
    entries: list = field(default_factory=list)
    rejections: Decimal = ZERO  # a positive figure, subtracted
    # Of the unpaid entries dated up to `end`: still in their hold period, and due (SPEC §11).
    # With an open end they add up to the ending balance.
    pending: Decimal = ZERO
    payable: Decimal = ZERO

    @property
    def ending_balance(self) -> Decimal:
        return (
            self.beginning_balance + self.earned - self.clawbacks - self.rejections - self.payments
        )


def _in_range(prefix: str, start: date | None, end: date | None) -> Q:
    q = Q()
    if start:
        q &= Q(**{f"{prefix}__gte": day_start(start)})
    if end:
        q &= Q(**{f"{prefix}__lt": day_after(end)})
    return q


def _before(prefix: str, start: date | None) -> Q:
    return Q(**{f"{prefix}__lt": day_start(start)}) if start else Q(pk__in=[])


def _sum(name: str, condition: Q):
    return money_sum(name, filter=condition)


def ledger_totals(
    partner_ids: QuerySet | list[int],
    *,
    start: date | None,
    end: date | None,
    at: datetime | None = None,
) -> dict[tuple[int, str], LedgerSummary]:
    """The figures of many partners at once: two aggregate queries, whatever the rows.
    `pending` and `payable` are as of `at` (now by default)."""
    at = at or timezone.now()
    in_range = _in_range("occurred_at", start, end)
    unpaid = Q(payment__isnull=True) & _in_range("occurred_at", None, end)
    commissions = (
        Commission.objects.ledger()
        .filter(partner_id__in=partner_ids)
        .values("partner_id", "currency")
        .annotate(
            before=_sum("amount", _before("occurred_at", start)),
            earned=_sum("amount", in_range & Q(entry__in=EARNED_ENTRIES)),
            clawed=_sum("amount", in_range & Q(entry=CommissionEntry.CLAWBACK)),
            rejected=_sum("amount", in_range & Q(entry=CommissionEntry.REJECTION)),
            pending=_sum("amount", unpaid & Q(payable_at__gt=at)),
            payable=_sum("amount", unpaid & Q(payable_at__lte=at)),
        )
        .order_by()
    )
    payments = (
        Payment.objects.filter(partner_id__in=partner_ids)
        .values("partner_id", "currency")
        .annotate(
            before=_sum("amount", _before("paid_at", start)),
            paid=_sum("amount", _in_range("paid_at", start, end)),
        )
        .order_by()
    )
    figures: dict[tuple[int, str], dict] = {}
    for row in commissions:
        key = (row["partner_id"], row["currency"])
        figures[key] = {
            "beginning_balance": row["before"],
            "earned": row["earned"],
            "clawbacks": -row["clawed"],
            "rejections": -row["rejected"],
            "pending": row["pending"],
            "payable": row["payable"],
        }
    for row in payments:
        key = (row["partner_id"], row["currency"])
        got = figures.setdefault(key, {"beginning_balance": ZERO})
        got["beginning_balance"] -= row["before"]
        got["payments"] = row["paid"]
    return {
        key: LedgerSummary(partner_id=key[0], currency=key[1], start=start, end=end, **values)
        for key, values in figures.items()
    }


def partner_ledger(
    partner: Partner,
    *,
    start: date | None = None,
    end: date | None = None,
    currency: str,
    at: datetime | None = None,
) -> LedgerSummary:
    """One partner's figures in one currency (zeros when nothing happened)."""
    totals = ledger_totals([partner.pk], start=start, end=end, at=at)
    return totals.get(
        (partner.pk, currency),
        LedgerSummary(partner_id=partner.pk, currency=currency, start=start, end=end),
    )


def ledger_commissions(
    partner: Partner, *, start: date | None = None, end: date | None = None
) -> QuerySet[Commission]:
    """The partner's ledger entries in the range, oldest first: commission lines, credits
    of the lines credited on payment, clawbacks and rejections."""
    return (
        Commission.objects.ledger()
        .filter(partner=partner)
        .filter(_in_range("occurred_at", start, end))
        .select_related("order")
        .order_by("occurred_at", "id")
    )


def ledger_payments(
    partner: Partner, *, start: date | None = None, end: date | None = None
) -> QuerySet[Payment]:
    return (
        Payment.objects.filter(partner=partner)
        .filter(_in_range("paid_at", start, end))
        .order_by("paid_at", "id")
    )


def clawed_after_payout(partner: Partner, *, currency: str) -> Decimal:
    """What clawbacks took back (a positive figure) from the partner's commissions that had
    already been paid: why a balance falls below zero (one aggregate query)."""
    taken = Commission.objects.filter(
        partner=partner,
        currency=currency,
        entry=CommissionEntry.CLAWBACK,
        clawback_of__payment__isnull=False,
    ).aggregate(total=money_sum("amount"))["total"]
    return -taken if taken else ZERO
