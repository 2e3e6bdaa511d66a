"""django-filter FilterSets of the staff lists and reports (SPEC §7), and the report figures
they need.

Dates are whole UTC days, as in the ledger: `start` from 00:00, `end` to the end of the day;
either may be left open. The date range of the partner reports does not choose partners: it
is the period the figures cover (`PartnerReportFilter.period`).
"""

import hashlib
from datetime import date
from typing import Any

import django_filters
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from partners.models import Click, Partner, PartnerStatus, Program

from .forms import DateInput, DateRangeCheckForm
from .ledger import day_after, day_start
from .models import (
    Commission,
    CommissionEntry,
    Contact,
    Lead,
    Order,
    Payment,
    PayoutBatch,
)
from .money import ZERO
from .services import normalise_email

MONEY = DecimalField(max_digits=16, decimal_places=2)


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

    start = django_filters.DateFilter(method="filter_start", label="From", widget=DateInput())
    end = django_filters.DateFilter(method="filter_end", label="To", widget=DateInput())

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

    class Meta:
        model = Payment
        fields = ("batch", "partner")
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


def total_per_row(rows: QuerySet, field: str, amount: str) -> Coalesce:
    """The sum of `amount` over the `rows` that point at the outer row by `field` (0: none)."""
    summed = (
        rows.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(total=Sum(amount))
        .values("total")[:1]
    )
    return Coalesce(Subquery(summed, output_field=MONEY), Value(ZERO), output_field=MONEY)


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
            Commission.objects.filter(
                in_days("occurred_at", start, end), entry=CommissionEntry.COMMISSION
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


def _sum(amount: str, condition: Q | None) -> Coalesce | Value:
    if condition is None:
        return Value(ZERO, output_field=MONEY)
    return Coalesce(Sum(amount, filter=condition), Value(ZERO), output_field=MONEY)


def ledger_grand_totals(
    partners: QuerySet, *, start: date | None, end: date | None
) -> dict[str, dict[str, Any]]:
    """The ledger figures of all the partners together, per currency: two aggregate queries,
    with the rules of `commissions.ledger.ledger_totals` (its per-partner figures add up to
    these)."""
    # Without filters every partner counts: no need to join the partners at all.
    chosen = (
        Q(partner__in=partners.order_by().values("pk")) if partners.query.has_filters() else Q()
    )
    commissions = (
        Commission.objects.filter(chosen)
        .values("currency")
        .annotate(
            before=_sum("amount", Q(occurred_at__lt=day_start(start)) if start else None),
            earned=_sum(
                "amount", in_days("occurred_at", start, end) & Q(entry=CommissionEntry.COMMISSION)
            ),
            clawed=_sum(
                "amount", in_days("occurred_at", start, end) & Q(entry=CommissionEntry.CLAWBACK)
            ),
        )
        .order_by()
    )
    payments = (
        Payment.objects.filter(chosen)
        .values("currency")
        .annotate(
            before=_sum("amount", Q(paid_at__lt=day_start(start)) if start else None),
            paid=_sum("amount", in_days("paid_at", start, end)),
        )
        .order_by()
    )
    totals: dict[str, dict[str, Any]] = {}

    def figures(currency: str) -> dict[str, Any]:
        return totals.setdefault(
            currency,
            {
                "currency": currency,
                "beginning_balance": ZERO,
                "earned": ZERO,
                "clawbacks": ZERO,
                "payments": ZERO,
            },
        )

    for row in commissions:
        got = figures(row["currency"])
        got["beginning_balance"] += row["before"]
        got["earned"] += row["earned"]
        got["clawbacks"] -= row["clawed"]
    for row in payments:
        got = figures(row["currency"])
        got["beginning_balance"] -= row["before"]
        got["payments"] += row["paid"]
    for got in totals.values():
        got["ending_balance"] = (
            got["beginning_balance"] + got["earned"] - got["clawbacks"] - got["payments"]
        )
    return dict(sorted(totals.items()))


def ledger_grand_totals_cached(
    partners: QuerySet, *, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """`ledger_grand_totals`, kept in the cache under the newest commission and payment ids.

    Ledger rows are only ever added (a payout only ties rows to a payment it adds), so
    those two ids version every figure: a new row makes a new key, and a cached total is
    never stale. Costs one indexed query when cached instead of scanning the history.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {Commission._meta.db_table}),"
            f" (SELECT MAX(id) FROM {Payment._meta.db_table})"
        )
        version = cursor.fetchone()
    sql, params = partners.order_by().values("pk").query.sql_with_params()
    key = (
        "ledger-totals:"
        + hashlib.sha256(repr((sql, params, start, end, version)).encode()).hexdigest()
    )
    return cache.get_or_set(
        key, lambda: list(ledger_grand_totals(partners, start=start, end=end).values()), 3600
    )
