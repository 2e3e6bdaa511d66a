"""Reports per tracking link and per ad code (SPEC §12): the reads.

For a set of partners (one partner in the Partner Center; all, or those staff filter, in
the staff report) and a range of whole UTC days, per tracking link (the default
destination, `/go/{code}/`, is its own row) and per ad code (`ad=` on the click,
`Click.ad_code`): clicks, unique visitors, leads, orders, commissions earned and net, and
the conversion rate. docs/decisions.md ("Reports per link and per ad code") says why
each figure is counted as it is:

- clicks and unique visitors: the clicks made in the range; a visitor is one IP address
  and user agent on one UTC day (a click whose IP address was erased counts as a visitor
  of its own);
- leads, orders and commissions "belong" to the click their attribution names: the trace
  of a web form or an order credited by a cookie or an IP address click (`ref` is the
  click's id) or by a referral history entry made by a click (`ref` is the entry's id,
  whose `click_id` names the click). Anything else (explicit, coupon, a manual history
  entry, a click no longer stored) belongs to no link and is counted in `unlinked`;
- a commission line (level 1: the partner's own, not their recruits') follows the trace of
  its kind on its order (`sale_trace` for a sale line, `lead_trace` for a lead line, whose
  source is "contact" after the contact's first attribution: then the first one decides);
  earned is the lines made in the range, net is earned less their clawbacks and
  rejections (whenever those came).

Constant query count: three click aggregates, the orders, the web forms and the commission
lines of the range (each one query, the trace's keys read in SQL), the history entries and
the clicks those name (one query each), and the tracking links: nine queries whatever the
number of links, ad codes, clicks and events.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from django.db.models import CharField, Count, Q, QuerySet, Value
from django.db.models.fields.json import KT, KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate

from partners.models import Click, TrackingLink

from .aggregates import money_sum
from .attribution import SOURCE_CONTACT, SOURCE_COOKIE, SOURCE_HISTORY, SOURCE_IP
from .filters import in_days
from .models import Commission, CommissionEntry, Lead, Order, Referral
from .money import ZERO

CLICK_SOURCES = (SOURCE_COOKIE, SOURCE_IP)
LINKED_SOURCES = (*CLICK_SOURCES, SOURCE_HISTORY)
DEFAULT_LINK = "default"  # the row key of the default destination (clicks with no link)
NO_AD_CODE = ""
PERCENT = Decimal("0.1")


@dataclass
class Figures:
    """One row of the report: a link, an ad code, the total, or what came through no link."""

    key: str
    label: str
    clicks: int = 0
    visitors: int = 0
    leads: int = 0
    orders: int = 0
    earned: dict[str, Decimal] = field(default_factory=dict)  # by currency
    net: dict[str, Decimal] = field(default_factory=dict)

    @property
    def conversion(self) -> Decimal | None:
        """Orders per 100 unique visitors, to one decimal; None without visitors."""
        if not self.visitors:
            return None
        return (Decimal(self.orders) * 100 / self.visitors).quantize(PERCENT)

    def add_money(self, currency: str, earned: Decimal, net: Decimal) -> None:
        self.earned[currency] = self.earned.get(currency, ZERO) + earned
        self.net[currency] = self.net.get(currency, ZERO) + net


@dataclass
class LinkReport:
    links: list[Figures]
    ad_codes: list[Figures]
    total: Figures
    unlinked: Figures  # leads, orders and commissions that came through no link
    days: list[tuple[date, int, int]]  # (day, clicks, orders through a link), days with any
    currencies: list[str]


def visitor_key() -> Concat:
    """One IP address and user agent on one UTC day; a click whose IP address was erased
    (CLICK_IP_RETENTION_DAYS) is a visitor of its own (its id stands for the address)."""
    text = CharField()
    return Concat(
        Coalesce(Cast("ip", text), Cast("pk", text)),
        Value("|"),
        "user_agent",
        Value("|"),
        Cast(TruncDate("at"), text),
        output_field=text,
    )


def trace_click(source: str | None, first_source: str | None) -> str | None:
    """The source that names a click, or None: a web form or lead line of a contact already
    attributed carries its first attribution (source "contact", the first one's ref)."""
    if source == SOURCE_CONTACT:
        source = first_source
    return source if source in LINKED_SOURCES else None


def _click_id(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def link_report(
    *, partners: QuerySet | Iterable[int] | None, start: date | None, end: date | None
) -> LinkReport:
    """The report of `partners` (any value `partner__in` takes; None: every partner) for the
    whole UTC days `start` to `end` (either open). Nine queries whatever the data."""
    scope = Q() if partners is None else Q(partner__in=partners)
    clicks = Click.objects.filter(scope, in_days("at", start, end)).order_by()
    per_link = clicks.values("tracking_link").annotate(
        clicks=Count("pk"), visitors=Count(visitor_key(), distinct=True)
    )
    per_ad = clicks.values("ad_code").annotate(
        clicks=Count("pk"), visitors=Count(visitor_key(), distinct=True)
    )
    per_day = clicks.values(day=TruncDate("at")).annotate(
        clicks=Count("pk"), visitors=Count(visitor_key(), distinct=True)
    )
    sale_scope = Q() if partners is None else Q(sale_partner__in=partners)
    orders = (
        Order.objects.filter(sale_scope, in_days("occurred_at", start, end))
        .exclude(sale_partner=None)
        .filter(sale_trace__guard__isnull=True)
        .order_by()
        .values_list("occurred_at", KT("sale_trace__source"), KT("sale_trace__ref"))
    )
    leads = (
        Lead.objects.filter(scope, in_days("occurred_at", start, end))
        .exclude(partner=None)
        .order_by()
        .values_list(KT("trace__source"), KT("trace__ref"))
    )
    lines = (
        Commission.objects.filter(
            scope,
            in_days("occurred_at", start, end),
            entry=CommissionEntry.COMMISSION,
            level=1,
        )
        .order_by()
        .values("pk")
        .annotate(taken_back=money_sum("clawbacks__amount"))
        .values_list(
            "kind",
            "currency",
            "amount",
            "credited",
            "taken_back",
            KeyTextTransform("source", "order__sale_trace"),
            KeyTextTransform("ref", "order__sale_trace"),
            KeyTextTransform("source", "order__lead_trace"),
            KeyTextTransform("first_source", "order__lead_trace"),
            KeyTextTransform("ref", "order__lead_trace"),
        )
    )
    order_rows = [(at.date(), source, ref) for at, source, ref in orders]
    lead_rows = [(trace_click(source, None), ref) for source, ref in leads]
    line_rows = []
    for kind, currency, line, credited, taken_back, *traces in lines:
        sale_src, sale_ref, lead_src, first, lead_ref = traces
        # A line credited on payment counts through its credits, which `taken_back` holds.
        amount = line if credited is None else ZERO
        if kind == "sale":
            line_rows.append((trace_click(sale_src, None), sale_ref, currency, amount, taken_back))
        else:
            line_rows.append((trace_click(lead_src, first), lead_ref, currency, amount, taken_back))

    refs = [(s, r) for _, s, r in order_rows] + lead_rows + [(s, r) for s, r, *_ in line_rows]
    entry_ids = {int(r) for s, r in refs if s == SOURCE_HISTORY and r and r.isdigit()}
    from_history = dict(
        Referral.objects.filter(pk__in=entry_ids, click_id__isnull=False).values_list(
            "pk", "click_id"
        )
    )

    def click_of(source: str | None, ref: str | None) -> UUID | None:
        if source in CLICK_SOURCES:
            return _click_id(ref)
        if source == SOURCE_HISTORY and ref and ref.isdigit():
            return from_history.get(int(ref))
        return None

    wanted = {click_of(s, r) for s, r in refs} - {None}
    where = {
        pk: (str(link) if link else DEFAULT_LINK, ad)
        for pk, link, ad in Click.objects.filter(pk__in=wanted).values_list(
            "pk", "tracking_link", "ad_code"
        )
    }

    links = {DEFAULT_LINK: Figures(DEFAULT_LINK, "Default destination")}
    for link in TrackingLink.objects.all():
        links[str(link.pk)] = Figures(link.code, f"{link.name} ({link.code})")
    ads: dict[str, Figures] = {}
    total = Figures("total", "Total")
    unlinked = Figures("unlinked", "Not through a link")

    def ad_row(code: str) -> Figures:
        if code not in ads:
            ads[code] = Figures(code, code or "(no ad code)")
        return ads[code]

    def link_row(key: str) -> Figures:
        if key not in links:  # a link made after the figures were read
            links[key] = Figures(key, key)
        return links[key]

    for row in per_link:
        link = link_row(str(row["tracking_link"]) if row["tracking_link"] else DEFAULT_LINK)
        link.clicks, link.visitors = row["clicks"], row["visitors"]
    for row in per_ad:
        ad = ad_row(row["ad_code"])
        ad.clicks, ad.visitors = row["clicks"], row["visitors"]
    days: dict[date, list[int]] = {}
    for row in per_day:
        total.clicks += row["clicks"]
        total.visitors += row["visitors"]  # a visitor is per day: the days add up
        days.setdefault(row["day"], [0, 0])[0] = row["clicks"]

    def rows_of(source: str | None, ref: str | None) -> list[Figures]:
        found = where.get(click_of(source, ref))
        if found is None:
            return [unlinked]
        return [link_row(found[0]), ad_row(found[1])]

    for day, source, ref in order_rows:
        total.orders += 1
        found = rows_of(source, ref)
        for figures in found:
            figures.orders += 1
        if found[0] is not unlinked:
            days.setdefault(day, [0, 0])[1] += 1
    for source, ref in lead_rows:
        total.leads += 1
        for figures in rows_of(source, ref):
            figures.leads += 1
    currencies = set()
    for source, ref, currency, amount, taken_back in line_rows:
        currencies.add(currency)
        total.add_money(currency, amount, amount + taken_back)
        for figures in rows_of(source, ref):
            figures.add_money(currency, amount, amount + taken_back)

    ad_rows = sorted(ads.values(), key=lambda f: (-f.clicks, -f.orders, f.key))
    return LinkReport(
        links=list(links.values()),
        ad_codes=ad_rows,
        total=total,
        unlinked=unlinked,
        days=[(day, *days[day]) for day in sorted(days)],
        currencies=sorted(currencies),
    )


def daily_points(
    days: list[tuple[date, int, int]], *, start: date, end: date, max_bars: int = 62
) -> tuple[list[tuple[date, int, int]], timedelta]:
    """The days from `start` to `end`, each with its clicks and orders (0 when none); past
    `max_bars` days, weeks (starting on Monday) instead."""
    step = timedelta(days=1)
    buckets: dict[date, list[int]] = {}
    if (end - start).days + 1 > max_bars:
        step = timedelta(weeks=1)
        start = start - timedelta(days=start.weekday())
    for day, clicks, orders in days:
        bucket = day - timedelta(days=day.weekday()) if step.days == 7 else day
        pair = buckets.setdefault(bucket, [0, 0])
        pair[0] += clicks
        pair[1] += orders
    points = []
    day = start
    while day <= end:
        clicks, orders = buckets.get(day, (0, 0))
        points.append((day, clicks, orders))
        day += step
    return points, step
