"""The staff home: the program's numbers over a chosen period against the one before, a
chart over time with its numbers in a table, the top partners, and what needs attention.

The figures come from `commissions.dashboard` (a fixed number of queries whatever the rows).
"""

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.views.generic import TemplateView

from partners.views import StaffRequiredMixin

from .charts import Series, bar_chart
from .dashboard import (
    PRESET_DAYS,
    WEBHOOK_FAILURE_DAYS,
    CurrencyFigures,
    Granularity,
    Period,
    attention,
    dashboard_figures,
    granularity,
)
from .forms import DashboardPeriodForm
from .money import round_money


def amount_text(value: Decimal | int, currency: str) -> str:
    """1234.5 -> '1,234.50' (the currency's own decimals), for people to read."""
    return f"{round_money(Decimal(value), currency):,}"


def change_text(change: int | None, *, now: Decimal | int) -> str:
    """'+12 %', '\u22125 %' (a minus sign), 'no change', or 'new' (nothing the period
    before)."""
    if change is None:
        return "new" if now else "no change"
    if change == 0:
        return "no change"
    return f"+{change} %" if change > 0 else f"\u2212{-change} %"


# The figures' cards: (name, label, a money figure?).
CARDS = (
    ("revenue", "Referred revenue", True),
    ("orders", "Referred orders", False),
    ("earned", "Commissions earned", True),
    ("clawed_back", "Clawed back", True),
    ("paid", "Paid to partners", True),
)


def figure_cards(figures: CurrencyFigures) -> list[dict[str, Any]]:
    cards = []
    for name, label, money in CARDS:
        now, before = getattr(figures.now, name), getattr(figures.before, name)
        shown = (lambda value: amount_text(value, figures.currency)) if money else str
        cards.append(
            {
                "name": name,
                "label": label,
                "value": shown(now),
                "before": shown(before),
                "change": change_text(figures.change(name), now=now),
                "money": money,
            }
        )
    return cards


def bar_label(size: str):
    if size == Granularity.MONTH:
        return lambda day: f"{day:%b %Y}"
    return lambda day: f"{day:%b} {day.day}"


def chart_context(figures: CurrencyFigures, period: Period) -> dict[str, Any]:
    """The chart of referred revenue and commissions earned per bar, and its numbers."""
    currency, size = figures.currency, granularity(period)
    revenue = Series("Referred revenue", [(day, f.revenue) for day, f in figures.series])
    earned = Series("Commissions earned", [(day, f.earned) for day, f in figures.series])
    per = {"day": "day", "week": "week (from Monday)", "month": "month"}[size]
    chart = bar_chart(
        chart_id="chart-program",
        title=f"Referred revenue and commissions earned per {per} ({currency}), "
        f"{period.start.isoformat()} to {period.end.isoformat()}",
        series=[revenue, earned],
        x_label={"day": "Day", "week": "Week starting", "month": "Month"}[size],
        y_label=currency,
        format_value=lambda value: amount_text(value, currency),
        date_text=bar_label(size),
        tick_text=lambda value: f"{Decimal(value):,f}".removesuffix(".00"),
    )
    rows = [
        {
            "start": max(day, period.start),
            "revenue": amount_text(f.revenue, currency),
            "orders": f.orders,
            "earned": amount_text(f.earned, currency),
            "clawed_back": amount_text(f.clawed_back, currency),
        }
        for day, f in figures.series
    ]
    has_data = any(f.revenue or f.earned for _, f in figures.series)
    return {"chart": chart if has_data else None, "chart_rows": rows, "per": per}


class DashboardView(StaffRequiredMixin, TemplateView):
    """The staff home. `?days=7|30|90|365` or `?start=&end=` choose the period."""

    template_name = "crm/dashboard.html"
    section = "dashboard"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        today = now.date()
        form = DashboardPeriodForm(self.request.GET)
        period = form.period(today=today)
        figures = dashboard_figures(period, now=now, fresh="fresh" in self.request.GET)
        currencies = figures.currencies
        main = currencies[0]
        return super().get_context_data(
            form=form,
            period=period,
            previous=period.previous(),
            presets=[(days, self.preset_label(days)) for days in PRESET_DAYS],
            chosen_days=self.chosen_days(period, today),
            main=main,
            cards=figure_cards(main),
            others=[
                {
                    "currency": f.currency,
                    "cards": figure_cards(f),
                    "owed": amount_text(f.owed.total, f.currency),
                }
                for f in currencies[1:]
            ],
            owed=[
                {"currency": f.currency, "total": amount_text(f.owed.total, f.currency)}
                for f in currencies
                if f.owed.total or f is main
            ],
            top=[
                {
                    "row": row,
                    "earned": amount_text(row.earned, row.currency),
                    "revenue": amount_text(row.revenue, main.currency),
                }
                for row in figures.top
            ],
            figures_at=figures.at,
            refresh_query=self.refresh_query(),
            attention=attention(today=today),
            webhook_days=WEBHOOK_FAILURE_DAYS,
            **chart_context(main, period),
            **kwargs,
        )

    def refresh_query(self) -> str:
        """The page's own query with `fresh` added: the Refresh link."""
        query = self.request.GET.copy()
        query["fresh"] = "1"
        return query.urlencode()

    @staticmethod
    def preset_label(days: int) -> str:
        return "12 months" if days == 365 else f"{days} days"

    @staticmethod
    def chosen_days(period: Period, today: date) -> int | None:
        """The preset the period is, if it is one (for the current tab)."""
        if period.end != today:
            return None
        return period.days if period.days in PRESET_DAYS else None
