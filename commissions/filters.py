"""django-filter FilterSets of the staff lists and reports (SPEC §7), and the report figures
they need.

Dates are whole UTC days, as in the ledger: `start` from 00:00, `end` to the end of the day;
either may be left open. The date range of the partner reports does not choose partners: it
is the period the figures cover (`PartnerReportFilter.period`).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from partners.models import Click, Partner, PartnerStatus, Program
from referral_program.dates import DateInput, DayFilter

from .aggregates import MONEY_FIELD, MoneyTotal, money_sum
from .forms import DateRangeCheckForm
from .ledger import LEDGER_FIGURES, LIFECYCLE_FIGURES, day_after, day_start
from .lifecycle import status_filter
from .models import (
    EARNED_ENTRIES,
    Commission,
    CommissionEntry,
    CommissionStatus,
    Contact,
    Lead,
    Order,
    Payment,
    PaymentStatus,
    PayoutBatch,
)
from .money import ZERO
from .services.contacts import normalise_email


def in_days(field: str, start: date | None, end: date | None) -> Q:
    """`field` (a datetime) within the whole UTC days from `start` to `end`."""
    q = Q()
    if start:
        q &= Q(**{f"{field}__gte": day_start(start)})
    if end:
        q &= Q(**{f"{field}__lt": day_after(end)})
    return q


def partners_by_code(code: str) -> QuerySet:
    return Partner.objects.by_code(code.strip()).values("pk")


class DateRangeFilterSet(django_filters.FilterSet):
    """A FilterSet with the optional `start` and `end` days."""

    # The datetime field the range filters on; empty: the range only sets the `period`.
    date_field = ""

    start = DayFilter(method="filter_start", label="From", widget=DateInput())
    end = DayFilter(method="filter_end", label="To", widget=DateInput())

    @property
    def period(self) -> tuple[date | None, date | None]:
        data = self.form.cleaned_data if self.form.is_valid() else {}
        return data.get("start"), data.get("end")

    def filter_start(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        if not self.date_field:
            return queryset
        return queryset.filter(**{f"{self.date_field}__gte": day_start(value)})

    def filter_end(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        if not self.date_field:
            return queryset
        return queryset.filter(**{f"{self.date_field}__lt": day_after(value)})


# --- Lists ------------------------------------------------------------------------------


class OrderFilter(DateRangeFilterSet):
    date_field = "occurred_at"
    q = django_filters.CharFilter(method="filter_q", label="Search")
    partner = django_filters.CharFilter(method="filter_partner", label="Partner code")

    class Meta:
        model = Order
        fields = ("q", "partner")
        form = DateRangeCheckForm

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(Q(order_id__icontains=value) | Q(contact__email__icontains=value))

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Orders that credit the partner, for the sale or as the lead partner."""
        partners = partners_by_code(value)
        return queryset.filter(Q(sale_partner__in=partners) | Q(lead_partner__in=partners))


class CommissionListFilter(DateRangeFilterSet):
    """The staff commission list (SPEC §11): the lines to approve or reject in bulk."""

    date_field = "occurred_at"
    status = django_filters.ChoiceFilter(
        choices=CommissionStatus.choices, method="filter_status", label="Status"
    )
    partner = django_filters.CharFilter(method="filter_partner", label="Partner code")
    order = django_filters.CharFilter(field_name="order__order_id", label="Order")

    class Meta:
        model = Commission
        fields = ("status", "partner", "order")
        form = DateRangeCheckForm

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(status_filter(value, at=timezone.now()))

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(partner__in=partners_by_code(value))


class ContactFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Email")
    partner = django_filters.CharFilter(method="filter_partner", label="Lead partner code")

    class Meta:
        model = Contact
        fields = ("q", "partner")

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(email__icontains=normalise_email(value))

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(lead_partner__in=partners_by_code(value))


class PaymentFilter(DateRangeFilterSet):
    date_field = "paid_at"
    batch = django_filters.ModelChoiceFilter(
        queryset=PayoutBatch.objects.order_by("-id"), empty_label="Any batch"
    )
    partner = django_filters.CharFilter(method="filter_partner", label="Partner code")
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices, empty_label="Any status")

    class Meta:
        model = Payment
        fields = ("batch", "partner", "status")
        form = DateRangeCheckForm

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(partner__in=partners_by_code(value))


# --- Partner reports -----------------------------------------------------------------------


class PartnerReportFilter(DateRangeFilterSet):
    """Which partners a report lists (program, parent, status, search) and for which period."""

    q = django_filters.CharFilter(method="filter_q", label="Search")
    program = django_filters.ModelChoiceFilter(
        queryset=Program.objects.order_by("priority", "id"),
        empty_label="Any program",
        null_label="No program (uses the default)",
    )
    parent = django_filters.CharFilter(method="filter_parent", label="Parent code")
    status = django_filters.ChoiceFilter(choices=PartnerStatus.choices, empty_label="Any status")

    class Meta:
        model = Partner
        fields = ("q", "program", "parent", "status")
        form = DateRangeCheckForm

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(
            Q(code__icontains=value) | Q(name__icontains=value) | Q(email__icontains=value)
        )

    def filter_parent(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(parent__in=partners_by_code(value))


def count_per_row(rows: QuerySet, field: str) -> Coalesce:
    """How many of `rows` point at the outer row by `field` (0 when none)."""
    counted = (
        rows.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def first_per_row(rows: QuerySet, field: str, at: str) -> Subquery:
    """The earliest `at` of the `rows` that point at the outer row by `field` (NULL: none)."""
    earliest = (
        rows.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(first=Min(at))
        .values("first")[:1]
    )
    return Subquery(earliest, output_field=DateTimeField())


def contact_since() -> Coalesce:
    """When a contact was first seen: its first web form or order (as the event says it
    happened), not when the row was written (a backfill writes old contacts today)."""
    first_lead = first_per_row(Lead.objects.all(), "contact", "occurred_at")
    first_order = first_per_row(Order.objects.all(), "contact", "occurred_at")
    # LEAST ignores NULLs on PostgreSQL but not on SQLite: give each side the other.
    first_event = Least(Coalesce(first_lead, first_order), Coalesce(first_order, first_lead))
    return Coalesce(first_event, F("created_at"), output_field=DateTimeField())


def total_per_row(rows: QuerySet, field: str, amount: str) -> Coalesce:
    """The sum of `amount` over the `rows` that point at the outer row by `field` (0: none)."""
    summed = (
        rows.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(total=Sum(amount))
        .values("total")[:1]
    )
    return MoneyTotal(Subquery(summed, output_field=MONEY_FIELD))


# The annotations' names (the partner's reverse relations already use "clicks" and "leads").
ACTIVITY_FIGURES = ("click_count", "optin_count", "order_count", "sales_total", "earned_total")


def activity_annotate(partners: QuerySet, *, start: date | None, end: date | None) -> QuerySet:
    """Each partner with its activity in the period, one correlated subquery per figure
    (each on an index by partner and time): clicks, opt-ins (web forms whose lead partner
    it is), orders it was the sale partner of, those orders' base, commissions earned."""
    orders = Order.objects.filter(in_days("occurred_at", start, end))
    return partners.annotate(
        click_count=count_per_row(Click.objects.filter(in_days("at", start, end)), "partner"),
        optin_count=count_per_row(
            Lead.objects.filter(in_days("occurred_at", start, end)), "partner"
        ),
        order_count=count_per_row(orders, "sale_partner"),
        sales_total=total_per_row(orders, "sale_partner", "base"),
        earned_total=total_per_row(
            Commission.objects.ledger().filter(
                in_days("occurred_at", start, end), entry__in=EARNED_ENTRIES
            ),
            "partner",
            "amount",
        ),
    )


class CodeTiebreakOrderingFilter(django_filters.OrderingFilter):
    """Sorting by a figure, then by code, so pages never shuffle rows with equal figures."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        ordering = [self.get_ordering_value(param) for param in value or ()]
        return qs.order_by(*ordering, "code")


class ActivityReportFilter(PartnerReportFilter):
    """The partner report filters, the activity figures, and sorting by any of them."""

    ordering = CodeTiebreakOrderingFilter(
        fields=(
            ("code", "code"),
            ("click_count", "clicks"),
            ("optin_count", "optins"),
            ("order_count", "orders"),
            ("sales_total", "sales"),
            ("earned_total", "earned"),
        ),
        field_labels={
            "code": "Code",
            "click_count": "Clicks",
            "optin_count": "Opt-ins",
            "order_count": "Orders",
            "sales_total": "Sales",
            "earned_total": "Commissions earned",
        },
        label="Sort by",
        empty_label="Code",
    )

    class Meta(PartnerReportFilter.Meta):
        fields = (*PartnerReportFilter.Meta.fields, "start", "end", "ordering")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        start, end = self.period
        return super().filter_queryset(activity_annotate(queryset, start=start, end=end))


# --- The ledger report's grand totals --------------------------------------------------------

# What the branches of the grand totals' one statement sum, per currency (a UNION ALL: each
# branch sums some of these over its rows and gives 0 for the others).
TOTALS_COLUMNS = (
    "entries_before",  # entries dated before the range
    "unpaid",  # entries no payment has tied, whatever their date
    "earned",  # commission entries in the range
    "clawed",  # clawback entries in the range (a negative sum)
    "rejected",  # rejection entries in the range (a negative sum)
    "pending",  # unpaid entries up to the end of the range, still in their hold period
    "payable",  # unpaid entries up to the end of the range, due
    "entries_after",  # entries dated after the range
    "paid_before",  # payments made before the range
    "paid",  # payments made in the range
    "paid_after",  # payments made after the range
)
NOTHING = MoneyTotal(Value(ZERO, output_field=MONEY_FIELD))


def _total(condition: Q | None = None) -> Coalesce:
    """The sum of `amount` over the branch's rows that meet `condition` (all of them when
    there is none), 0 when no row does."""
    return money_sum("amount", filter=condition)


def _branch(rows: QuerySet, **sums: Coalesce) -> QuerySet:
    """One branch of the grand totals' statement: `rows` summed per currency into the
    `sums` named, 0 in the other columns."""
    return (
        rows.order_by()
        .values("currency")
        .annotate(**{name: sums.get(name, NOTHING) for name in TOTALS_COLUMNS})
    )


def _reads_from_the_end(start_at: datetime | None, after: datetime | None) -> bool:
    """Whether the grand totals should read the entries from the start of the range onwards
    rather than those from the first entry up to the end of the range: the shorter stretch
    of time, taking entries as spread evenly over time (an all-time range or one open at
    the end always reads from the end)."""
    if after is None:
        return True
    span = Commission.objects.aggregate(oldest=Min("occurred_at"), newest=Max("occurred_at"))
    if span["oldest"] is None:
        return True
    return span["newest"] - (start_at or after) <= after - span["oldest"]


def _held(chosen: Q, after: datetime | None, at: datetime) -> QuerySet:
    """The unpaid entries up to the end of the range, split into pending and payable at
    `at` (SPEC §11), as `ledger_totals` sums them."""
    return _branch(
        Commission.objects.ledger().filter(
            chosen, Q(occurred_at__lt=after) if after else Q(), payment__isnull=True
        ),
        pending=_total(Q(payable_at__gt=at)),
        payable=_total(Q(payable_at__lte=at)),
    )


def _branches_from_the_start(
    chosen: Q, start_at: datetime | None, after: datetime | None
) -> list[QuerySet]:
    """The entries and payments up to the end of the range, as `ledger_totals` sums them."""
    in_range = Q(occurred_at__gte=start_at) if start_at else Q()
    return [
        _branch(
            Commission.objects.ledger().filter(chosen, Q(occurred_at__lt=after) if after else Q()),
            entries_before=_total(Q(occurred_at__lt=start_at)) if start_at else NOTHING,
            earned=_total(in_range & Q(entry__in=EARNED_ENTRIES)),
            clawed=_total(in_range & Q(entry=CommissionEntry.CLAWBACK)),
            rejected=_total(in_range & Q(entry=CommissionEntry.REJECTION)),
        ),
        _branch(
            Payment.objects.filter(chosen, Q(paid_at__lt=after) if after else Q()),
            paid_before=_total(Q(paid_at__lt=start_at)) if start_at else NOTHING,
            paid=_total(Q(paid_at__gte=start_at) if start_at else None),
        ),
    ]


def _branches_from_the_end(
    chosen: Q, start_at: datetime | None, after: datetime | None
) -> list[QuerySet]:
    """The unpaid entries, the entries from the start of the range on (without a start:
    the clawbacks up to its end, and the entries after it), and the payments made from the
    start of the range on (without a start: all of them)."""
    up_to_end = Q(occurred_at__lt=after) if after else Q()
    entries = Commission.objects.ledger()
    branches = [_branch(entries.filter(chosen, payment__isnull=True), unpaid=_total())]
    if start_at:
        branches.append(
            _branch(
                entries.filter(chosen, occurred_at__gte=start_at),
                earned=_total(up_to_end & Q(entry__in=EARNED_ENTRIES)),
                clawed=_total(up_to_end & Q(entry=CommissionEntry.CLAWBACK)),
                rejected=_total(up_to_end & Q(entry=CommissionEntry.REJECTION)),
                entries_after=_total(Q(occurred_at__gte=after)) if after else NOTHING,
            )
        )
    else:
        taken = [CommissionEntry.CLAWBACK, CommissionEntry.REJECTION]
        clawbacks = entries.filter(chosen, up_to_end, entry__in=taken)
        branches.append(
            _branch(
                clawbacks,
                clawed=_total(Q(entry=CommissionEntry.CLAWBACK)),
                rejected=_total(Q(entry=CommissionEntry.REJECTION)),
            )
        )
        if after:
            later = entries.filter(chosen, occurred_at__gte=after)
            branches.append(_branch(later, entries_after=_total()))
    payments = Payment.objects.filter(chosen, Q(paid_at__gte=start_at) if start_at else Q())
    branches.append(
        _branch(
            payments,
            paid=_total(Q(paid_at__lt=after) if after else None),
            paid_after=_total(Q(paid_at__gte=after)) if after else NOTHING,
        )
    )
    return branches


def ledger_grand_totals(
    partners: QuerySet, *, start: date | None, end: date | None, at: datetime | None = None
) -> dict[str, dict[str, Any]]:
    """The ledger figures of all the partners together, per currency, by the rules of
    `commissions.ledger.ledger_totals` (its per-partner figures add up to these): one
    statement, so one snapshot, whatever the rows; no cached state.

    Summing every entry of every partner the filters choose (all history, for the
    beginning balance) grows with the history, so the statement reads either side of the
    range, whichever is the shorter stretch of time:

    - from the start: the entries and payments up to the end of the range, split at its
      start (what `ledger_totals` does per partner);
    - from the end: the unpaid entries, the entries and payments from the start of the
      range on. A payout sets each payment to exactly the sum of the entries it ties, and
      nothing else ties or pays entries (`commissions.payouts`), so all entries less all
      payments = the unpaid entries, and a balance at any moment is the unpaid entries less
      the entries after it plus the payments after it. Without a start, the earned figure
      is what remains of the ending balance once the clawbacks (their own partial index)
      and payments are put back.

    A currency in which every figure is 0 is left out (both ways give the same list); with
    none left, one row of zeros in the program currency.
    """
    # Without filters every partner counts: no need to join the partners at all.
    chosen = (
        Q(partner__in=partners.order_by().values("pk")) if partners.query.has_filters() else Q()
    )
    start_at, after = day_start(start), day_after(end)
    from_the_end = _reads_from_the_end(start_at, after)
    if from_the_end:
        first, *rest = _branches_from_the_end(chosen, start_at, after)
    else:
        first, *rest = _branches_from_the_start(chosen, start_at, after)
    rest.append(_held(chosen, after, at or timezone.now()))
    sums: dict[str, dict[str, Decimal]] = {}
    for row in first.union(*rest, all=True).order_by():
        got = sums.setdefault(row["currency"], dict.fromkeys(TOTALS_COLUMNS, ZERO))
        for name in TOTALS_COLUMNS:
            got[name] += row[name]

    totals: dict[str, dict[str, Any]] = {}
    for currency, got in sorted(sums.items()):
        earned, clawbacks, payments = got["earned"], ZERO - got["clawed"], got["paid"]
        rejections = ZERO - got["rejected"]
        taken = clawbacks + rejections
        if not from_the_end:
            beginning = got["entries_before"] - got["paid_before"]
        else:
            ending = got["unpaid"] - got["entries_after"] + got["paid_after"]
            if start_at:
                beginning = ending - earned + taken + payments
            else:
                beginning = ZERO
                earned = ending + taken + payments
        figures = {
            "currency": currency,
            "beginning_balance": beginning,
            "earned": earned,
            "clawbacks": clawbacks,
            "payments": payments,
            "ending_balance": beginning + earned - taken - payments,
            "rejections": rejections,
            "pending": got["pending"],
            "payable": got["payable"],
        }
        if any(figures[name] for name in (*LEDGER_FIGURES, *LIFECYCLE_FIGURES)):
            totals[currency] = figures
    if not totals:
        currency = settings.DEFAULT_CURRENCY
        totals[currency] = {
            "currency": currency,
            **dict.fromkeys((*LEDGER_FIGURES, *LIFECYCLE_FIGURES), ZERO),
        }
    return totals
