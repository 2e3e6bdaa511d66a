"""Reports per tracking link and per ad code (SPEC §12): the Partner Center's page (the
logged-in partner's own clicks and events) and the staff report across partners, each with
its CSV. The figures are read by `commissions.link_reports.link_report`."""

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from partners.views import StaffRequiredMixin
from referral_program.dates import QueryErrorsAre400

from .charts import Series, bar_chart
from .csv_files import csv_response, csv_text
from .filters import partners_by_code
from .forms import DateRangeForm
from .link_reports import Figures, LinkReport, daily_points, link_report
from .money import ZERO
from .partner_center import PartnerCenterMixin
from .views import invalid_filters, money_text, range_suffix

DEFAULT_DAYS = 30
CSV_HEADER = (
    "row",
    "key",
    "name",
    "start",
    "end",
    "clicks",
    "unique_visitors",
    "leads",
    "orders",
    "conversion_rate_percent",
    "currency",
    "commissions_earned",
    "commissions_net",
)


class StaffLinkReportForm(DateRangeForm):
    partner = forms.CharField(label="Partner code", required=False, max_length=32)


def report_form(form_class: type[DateRangeForm], query: QueryDict) -> DateRangeForm:
    """The range form; without `start` and `end` in the query, the last DEFAULT_DAYS days
    (an empty `start=&end=` asks for all time)."""
    data = query.copy()
    if "start" not in data and "end" not in data:
        today = timezone.now().date()
        data["start"] = (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        data["end"] = today.isoformat()
    return form_class(data)


def amounts_text(amounts: dict[str, Decimal], currencies: list[str]) -> str:
    """'12.00 USD, 3.00 EUR' in the report's currency order; '0.00 {site currency}'."""
    currencies = currencies or [settings.DEFAULT_CURRENCY]
    return ", ".join(f"{money_text(amounts.get(c, ZERO), c)} {c}" for c in currencies)


def row_context(figures: Figures, currencies: list[str]) -> dict[str, Any]:
    conversion = figures.conversion
    return {
        "key": figures.key,
        "label": figures.label,
        "clicks": figures.clicks,
        "visitors": figures.visitors,
        "leads": figures.leads,
        "orders": figures.orders,
        "earned": amounts_text(figures.earned, currencies),
        "net": amounts_text(figures.net, currencies),
        "conversion": f"{conversion} %" if conversion is not None else "-",
    }


def chart_context(report: LinkReport, start: date | None, end: date | None) -> dict[str, Any]:
    """The clicks and the orders through a link per day (per week past two months), drawn
    by the dashboard's chart code."""
    end = end or timezone.now().date()
    start = start or (report.days[0][0] if report.days else end)
    points, step = daily_points(report.days, start=start, end=max(start, end))
    series = [
        Series("Clicks", [(day, clicks) for day, clicks, _ in points]),
        Series("Orders", [(day, orders) for day, _, orders in points]),
    ]
    per = "week" if step.days == 7 else "day"
    chart = bar_chart(
        chart_id="chart-links",
        title=f"Clicks and orders through links per {per}",
        series=series,
        x_label="Week starting" if per == "week" else "Day",
        y_label="Count",
        format_value=lambda n: f"{int(n):,}",
    )
    return {
        "chart": chart if report.days else None,
        "chart_per": per,
        "chart_rows": [{"date": day, "values": [c, o]} for day, c, o in points],
    }


def report_context(report: LinkReport, start: date | None, end: date | None) -> dict[str, Any]:
    currencies = report.currencies
    return {
        "start": start,
        "end": end,
        "tables": [
            {
                "id": "report-links",
                "title": "Per link",
                "column": "Link",
                "rows": [row_context(f, currencies) for f in report.links],
            },
            {
                "id": "report-ad-codes",
                "title": "Per ad code",
                "column": "Ad code",
                "rows": [row_context(f, currencies) for f in report.ad_codes],
            },
        ],
        "ip_retention_days": settings.CLICK_IP_RETENTION_DAYS,
        "total": row_context(report.total, currencies),
        "unlinked": row_context(report.unlinked, currencies),
        **chart_context(report, start, end),
    }


def csv_rows(report: LinkReport, start: date | None, end: date | None):
    """One line per row and currency (the site's currency for a row without commissions)."""
    currencies = report.currencies or [settings.DEFAULT_CURRENCY]
    groups = [("link", report.links), ("ad_code", report.ad_codes)]
    groups += [("not_through_a_link", [report.unlinked]), ("total", [report.total])]
    for kind, rows in groups:
        for figures in rows:
            conversion = figures.conversion
            for currency in currencies:
                yield [
                    kind,
                    csv_text(figures.key),
                    csv_text(figures.label),
                    start.isoformat() if start else "",
                    end.isoformat() if end else "",
                    figures.clicks,
                    figures.visitors,
                    figures.leads,
                    figures.orders,
                    "" if conversion is None else str(conversion),
                    currency,
                    money_text(figures.earned.get(currency, ZERO), currency),
                    money_text(figures.net.get(currency, ZERO), currency),
                ]


# --- Partner Center ------------------------------------------------------------------------


class PartnerLinkReportMixin(PartnerCenterMixin):
    def report(self, form: DateRangeForm) -> tuple[LinkReport, date | None, date | None]:
        start, end = form.cleaned_data.get("start"), form.cleaned_data.get("end")
        return link_report(partners=[self.partner.pk], start=start, end=end), start, end


class PartnerLinkReportView(PartnerLinkReportMixin, QueryErrorsAre400, TemplateView):
    """The partner's clicks, visitors, leads, orders and commissions per link and ad code."""

    template_name = "partner/link_report.html"
    section = "reports"

    def query_form(self, context: dict[str, Any]) -> Any:
        return context["form"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = report_form(DateRangeForm, self.request.GET)
        context: dict[str, Any] = {"form": form}
        if form.is_valid():
            report, start, end = self.report(form)
            context.update(report_context(report, start, end))
            query = self.request.GET.urlencode()
            context["csv_url"] = reverse("partner:link_report_csv") + (f"?{query}" if query else "")
        return super().get_context_data(**context, **kwargs)


class PartnerLinkReportCsvView(PartnerLinkReportMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = report_form(DateRangeForm, request.GET)
        if not form.is_valid():
            return invalid_filters(SimpleNamespace(form=form))  # it reads a FilterSet's form
        report, start, end = self.report(form)
        name = f"link-report{range_suffix(start, end)}.csv"
        return csv_response(name, CSV_HEADER, csv_rows(report, start, end))


# --- Staff ---------------------------------------------------------------------------------


def staff_report(form: StaffLinkReportForm) -> tuple[LinkReport, date | None, date | None]:
    data = form.cleaned_data
    code = (data.get("partner") or "").strip()
    partners = partners_by_code(code) if code else None
    start, end = data.get("start"), data.get("end")
    return link_report(partners=partners, start=start, end=end), start, end


class StaffLinkReportView(StaffRequiredMixin, QueryErrorsAre400, TemplateView):
    """The same report across partners, or for the partner staff name."""

    template_name = "crm/reports/links.html"
    section = "reports"

    def query_form(self, context: dict[str, Any]) -> Any:
        return context["form"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = report_form(StaffLinkReportForm, self.request.GET)
        # crm/includes/filters.html reads `filterset.form`
        context: dict[str, Any] = {
            "form": form,
            "filterset": {"form": form},
            "filtered": bool(self.request.GET),
        }
        if form.is_valid():
            report, start, end = staff_report(form)
            context.update(report_context(report, start, end))
            context["partner_code"] = form.cleaned_data.get("partner", "")
            query = self.request.GET.urlencode()
            context["csv_url"] = reverse("crm:report_links_csv") + (f"?{query}" if query else "")
        return super().get_context_data(**context, **kwargs)


class StaffLinkReportCsvView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = report_form(StaffLinkReportForm, request.GET)
        if not form.is_valid():
            return invalid_filters(SimpleNamespace(form=form))  # it reads a FilterSet's form
        report, start, end = staff_report(form)
        code = (form.cleaned_data.get("partner") or "").strip()
        name = f"link-report{f'-{code}' if code else ''}{range_suffix(start, end)}.csv"
        return csv_response(name, CSV_HEADER, csv_rows(report, start, end))
