"""The staff dashboard's figures (issue 20): reads only, a fixed number of aggregate queries
whatever the rows.

A period is whole UTC days, as in the ledger (`commissions.ledger`), and every money figure
follows the ledger's rules, so that the dashboard's figures equal the ledger's over the same
period: *earned* is the commission entries dated in it, *clawed back* the clawback entries
(a positive figure, subtracted), *paid* the payments made in it, and *owed* the balance owed
now: each partner's unpaid entries summed, counted where positive (a partner whose clawbacks
came after a payment owes the merchant, and that is not netted against what others are
owed). *Referred revenue* is the base (items less discount: what commissions are worked out
on) of the orders dated in the period that credited a partner, for the sale or as the lead
partner; refunds show in *clawed back*, as in the activity report.

Holds (SPEC §11) do not exist yet: when they come, `Owed` gains `pending` and `payable`
(both read from the same unpaid entries by their `payable_at`), and the page shows them
beside the total.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate

from partners.models import Partner
from partners.selectors import SignupList, click_flags_counts, signups_counts
from referral_program.db import execute

from .aggregates import money_sum
from .ledger import day_after, day_start
from .models import (
    EARNED_ENTRIES,
    Commission,
    Order,
    Payment,
    PayoutBatch,
    PayoutBatchStatus,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from .money import ZERO, from_database

# The periods offered as one click, in days; the default first.
PRESET_DAYS = (30, 7, 90, 365)
TOP_PARTNERS = 5
# How far back the dashboard looks for webhook deliveries that failed.
WEBHOOK_FAILURE_DAYS = 7
# The chart's bars: per day up to this many days, per week up to WEEKS_UP_TO, else per month.
DAYS_UP_TO = 31
WEEKS_UP_TO = 26 * 7

# The figures compared with the period before, in the order the page shows them.
PERIOD_FIGURES = ("revenue", "orders", "earned", "clawed_back", "paid")


# --- Periods and charts' buckets (pure) ------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        """The period of the same length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end)

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


def last_days(days: int, *, today: date) -> Period:
    """The last `days` days, today included (as the Partner Center's "last 30 days")."""
    return Period(start=today - timedelta(days=days - 1), end=today)


def percent_change(now: Decimal | int, before: Decimal | int) -> int | None:
    """The change from `before` to `now` in whole percent (half-up), None when `before` is
    0 (a change from nothing has no percentage)."""
    if not before:
        return None
    change = (Decimal(now) - Decimal(before)) * 100 / abs(Decimal(before))
    return int(change.to_integral_value(rounding=ROUND_HALF_UP))


class Granularity:
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def granularity(period: Period) -> str:
    if period.days <= DAYS_UP_TO:
        return Granularity.DAY
    if period.days <= WEEKS_UP_TO:
        return Granularity.WEEK
    return Granularity.MONTH


def bucket_of(day: date, size: str) -> date:
    """The first day of the bar `day` counts in: itself, its week's Monday, or its month's
    first day."""
    if size == Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    if size == Granularity.MONTH:
        return day.replace(day=1)
    return day


def buckets(period: Period) -> list[date]:
    """The first day of every bar of the period's chart, in order (the first bar may start
    before the period: its days outside the period count nothing)."""
    size = granularity(period)
    starts, day = [], bucket_of(period.start, size)
    while day <= period.end:
        starts.append(day)
        if size == Granularity.DAY:
            day += timedelta(days=1)
        elif size == Granularity.WEEK:
            day += timedelta(weeks=1)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts


# --- The figures -------------------------------------------------------------------------


@dataclass
class DayFigures:
    """One currency's figures of one day (or summed over many)."""

    revenue: Decimal = ZERO
    orders: int = 0
    earned: Decimal = ZERO
    clawed_back: Decimal = ZERO  # positive, subtracted
    paid: Decimal = ZERO

    def add(self, other: "DayFigures") -> None:
        for name in PERIOD_FIGURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Owed:
    """What the merchant owes partners now, in one currency (before holds: all of it)."""

    currency: str
    total: Decimal = ZERO
    partners: int = 0


@dataclass(frozen=True)
class CurrencyFigures:
    currency: str
    now: DayFigures
    before: DayFigures
    owed: Owed
    # The chart's bars: (first day, figures) per bucket, in the main currency only.
    series: list[tuple[date, DayFigures]] = field(default_factory=list)

    def change(self, name: str) -> int | None:
        return percent_change(getattr(self.now, name), getattr(self.before, name))


def _days(period: Period, at: str) -> Q:
    return Q(**{f"{at}__gte": day_start(period.start), f"{at}__lt": day_after(period.end)})


def _per_day(period: Period) -> dict[str, dict[date, DayFigures]]:
    """Every currency's figures per day from the start of the period before to the end of
    this one: three grouped queries (orders, ledger entries, payments)."""
    both = Period(start=period.previous().start, end=period.end)
    days: dict[str, dict[date, DayFigures]] = defaultdict(lambda: defaultdict(DayFigures))
    # "Referred" is an aggregate's filter, not the WHERE: PostgreSQL then reads the orders
    # from their covering index alone (an index-only scan, 4 times faster than the heap;
    # counting a column the index has, as the id is not in it).
    referred = Q(sale_partner__isnull=False) | Q(lead_partner__isnull=False)
    orders = (
        Order.objects.filter(_days(both, "occurred_at"))
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "currency")
        .annotate(
            n=Count("occurred_at", filter=referred), revenue=money_sum("base", filter=referred)
        )
        .order_by()
    )
    for row in orders:
        got = days[row["currency"]][row["day"]]
        got.orders, got.revenue = row["n"], row["revenue"]
    entries = (
        Commission.objects.ledger()
        .filter(_days(both, "occurred_at"))
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "currency", "entry")
        .annotate(total=money_sum("amount"))
        .order_by()
    )
    for row in entries:
        got = days[row["currency"]][row["day"]]
        if row["entry"] in EARNED_ENTRIES:
            got.earned += row["total"]
        else:
            got.clawed_back -= row["total"]
    payments = (
        Payment.objects.filter(_days(both, "paid_at"))
        .annotate(day=TruncDate("paid_at"))
        .values("day", "currency")
        .annotate(total=money_sum("amount"))
        .order_by()
    )
    for row in payments:
        days[row["currency"]][row["day"]].paid = row["total"]
    return days


# The ORM cannot group the rows of a grouped query again (partners' balances, then their
# positive sum per currency), so this one statement is written out; the names come from the
# model, and it runs as it is on PostgreSQL and SQLite. Amounts have 2 decimal places
# whatever the currency (money_field), so ROUND(…, 2) changes nothing on PostgreSQL and
# takes SQLite's floating-point dust off before the comparison (its sum of +10.10 and
# -10.10 is 1.7e-15); the totals are read back with `money.from_database`.
OWED_SQL = """
SELECT currency, SUM(balance), COUNT(*) FROM (
    SELECT {currency} AS currency, ROUND(SUM({amount}), 2) AS balance
    FROM {table} WHERE {payment} IS NULL AND {credited} IS NULL GROUP BY {partner}, {currency}
) AS balances WHERE balance > 0 GROUP BY currency
"""


def owed_now() -> dict[str, Owed]:
    """Per currency, the sum of the partners' positive balances and how many partners they
    are: one statement over the unpaid entries' covering index (commission_unpaid_idx).

    All entries less all payments are the unpaid entries (a payment is exactly the entries
    it ties: `commissions.payouts`), so a partner's balance is the sum of its unpaid ones.
    """
    quote = connection.ops.quote_name
    names = {
        name: quote(Commission._meta.get_field(field).column)
        for name, field in (
            ("currency", "currency"),
            ("amount", "amount"),
            ("payment", "payment"),
            ("partner", "partner"),
            ("credited", "credited"),  # the ledger's entries: `CommissionQuerySet.ledger`
        )
    }
    sql = OWED_SQL.format(table=quote(Commission._meta.db_table), **names)
    rows = execute(sql)
    return {
        currency: Owed(currency=currency, total=from_database(total), partners=n)
        for currency, total, n in rows
    }


def main_currency() -> str:
    return settings.DEFAULT_CURRENCY


def program_figures(period: Period) -> list[CurrencyFigures]:
    """The period's figures against the period before, and what is owed now, per currency
    (the program currency first, always there; others only where they have a figure).
    Four queries."""
    per_day, owed = _per_day(period), owed_now()
    previous, main = period.previous(), main_currency()
    size, starts = granularity(period), buckets(period)
    result = []
    for currency in sorted({main, *per_day, *owed}, key=lambda code: (code != main, code)):
        now, before = DayFigures(), DayFigures()
        bars = {start: DayFigures() for start in starts}
        for day, figures in per_day.get(currency, {}).items():
            if day in period:
                now.add(figures)
                bars[bucket_of(day, size)].add(figures)
            elif day in previous:
                before.add(figures)
        result.append(
            CurrencyFigures(
                currency=currency,
                now=now,
                before=before,
                owed=owed.get(currency, Owed(currency=currency)),
                series=list(bars.items()) if currency == main else [],
            )
        )
    return result


@dataclass(frozen=True)
class TopPartner:
    partner: Partner
    currency: str
    earned: Decimal
    orders: int
    revenue: Decimal


def top_partners(period: Period, *, limit: int = TOP_PARTNERS) -> list[TopPartner]:
    """The partners who earned most in the period (commission entries, before clawbacks),
    with the orders and referred revenue they were the sale partner of. Three queries."""
    earned = list(
        Commission.objects.ledger()
        .filter(_days(period, "occurred_at"), entry__in=EARNED_ENTRIES)
        .values("partner_id", "currency")
        .annotate(total=money_sum("amount"))
        .order_by("-total", "partner_id")[:limit]
    )
    if not earned:
        return []
    ids = {row["partner_id"] for row in earned}
    partners = Partner.objects.in_bulk(ids)
    sales = {
        row["sale_partner_id"]: row
        for row in Order.objects.filter(_days(period, "occurred_at"), sale_partner_id__in=ids)
        .values("sale_partner_id")
        .annotate(n=Count("pk"), revenue=money_sum("base"))
        .order_by()
    }
    return [
        TopPartner(
            partner=partners[row["partner_id"]],
            currency=row["currency"],
            earned=row["total"],
            orders=sales.get(row["partner_id"], {}).get("n", 0),
            revenue=sales.get(row["partner_id"], {}).get("revenue", ZERO),
        )
        for row in earned
    ]


@dataclass(frozen=True)
class Figures:
    """The period's figures per currency and its top partners, as worked out `at`."""

    currencies: list[CurrencyFigures]
    top: list[TopPartner]
    at: datetime


def dashboard_figures(period: Period, *, now: datetime, fresh: bool = False) -> Figures:
    """`program_figures` and `top_partners` of the period, worked out at most once every
    DASHBOARD_CACHE_SECONDS (per period, in the cache): they read every entry of the
    period and the period before, and every unpaid entry, which a busy program's staff
    would otherwise pay for on every view. `fresh` works them out now (and keeps them)."""
    key = f"commissions:dashboard:v1:{period.start.isoformat()}:{period.end.isoformat()}"
    seconds = settings.DASHBOARD_CACHE_SECONDS
    if seconds and not fresh and (kept := cache.get(key)) is not None:
        return kept
    figures = Figures(currencies=program_figures(period), top=top_partners(period), at=now)
    if seconds:
        cache.set(key, figures, seconds)
    return figures


@dataclass(frozen=True)
class Attention:
    """What staff should look at: counts, each with the page that lists them."""

    signups_waiting: int
    click_flags_open: int
    webhooks_failed: int
    webhooks_retrying: int
    payout_drafts: int
    last_payout_at: datetime | None


def attention(*, today: date) -> Attention:
    """Sign-ups waiting for approval, click flags open, webhook deliveries that gave up in
    the last WEBHOOK_FAILURE_DAYS days or are being retried, payout drafts waiting to be
    confirmed or thrown away, and when the last payout batch was made. Four queries (the
    batches are few: one per payout run)."""
    since = day_start(today - timedelta(days=WEBHOOK_FAILURE_DAYS - 1))
    troubled = Q(status=WebhookDeliveryStatus.FAILED) | Q(
        status=WebhookDeliveryStatus.PENDING, attempts__gt=0
    )
    # In the WHERE too, so the (status, created_at) index finds the few rows.
    deliveries = WebhookDelivery.objects.filter(troubled, created_at__gte=since).aggregate(
        failed=Count("pk", filter=Q(status=WebhookDeliveryStatus.FAILED)),
        retrying=Count("pk", filter=Q(status=WebhookDeliveryStatus.PENDING, attempts__gt=0)),
    )
    batches = PayoutBatch.objects.aggregate(
        drafts=Count("pk", filter=Q(status=PayoutBatchStatus.DRAFT)),
        last_at=Max("created_at", filter=Q(status=PayoutBatchStatus.CONFIRMED)),
    )
    return Attention(
        signups_waiting=signups_counts()[SignupList.REVIEW],
        click_flags_open=click_flags_counts()["open"],
        webhooks_failed=deliveries["failed"],
        webhooks_retrying=deliveries["retrying"],
        payout_drafts=batches["drafts"],
        last_payout_at=batches["last_at"],
    )
