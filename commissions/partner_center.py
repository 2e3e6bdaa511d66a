"""The Partner Center (SPEC §7): a partner's links, stats, ledger and commissions.

Every page goes through `PartnerCenterMixin`: the partner is the logged-in user's own,
never taken from the URL, and every query is limited to that partner in one place,
`scoped()`. An object page looks its object up in the scoped queryset, so another
partner's object is a 404. Anonymous visitors go to the partner login; logins without a
partner (staff) get 403.
"""

import copy
import heapq
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, DateField, F, Model, Q, QuerySet, Value
from django.db.models.functions import TruncDate, TruncWeek
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.utils import timezone
from django.views import View
from django.views.generic import DetailView, FormView, ListView, TemplateView

from partners.forms import add_service_errors
from partners.models import Click, Partner
from partners.selectors import partner_links
from partners.services.partners import partner_profile_update
from referral_program.dates import QueryErrorsAre400

from .aggregates import money_sum
from .charts import Series, bar_chart, fill_dates
from .creative_selectors import markdown_html, welcome_message
from .csv_files import csv_response, csv_text
from .explain import balance_words, explain, explain_details
from .ledger import (
    LedgerSummary,
    clawed_after_payout,
    day_start,
    ledger_commissions,
    ledger_payments,
    ledger_totals,
)
from .lifecycle import commission_status
from .models import EARNED_ENTRIES, Commission, CommissionEntry, Lead, Order, Payment
from .money import ZERO, minor_units
from .partner_forms import (
    DEFAULT_LINK,
    CommissionFilterForm,
    LedgerRangeForm,
    LinkGeneratorForm,
    PartnerLoginForm,
    PartnerPasswordResetForm,
    PartnerProfileForm,
)
from .report_selectors import pending_schedule

PAGE_SIZE = 50
# The ledger's figures (SPEC §5.5), in the order the page shows them.
FIGURES = ("beginning_balance", "earned", "clawbacks", "payments", "ending_balance")
FIGURES += ("rejections", "pending", "payable")  # SPEC §11
DASHBOARD_DAYS = 30
DASHBOARD_WEEKS = 12
# encodeURIComponent leaves these unescaped too: the link generator's script and the
# server make the same URL.
AD_CODE_SAFE = "!*'()"
# A spreadsheet runs a cell that starts with one of these as a formula.
# How each model names its partner: the one place a Partner Center query is limited.
SCOPES: dict[type[Model], str] = {
    Click: "partner",
    Lead: "partner",
    Order: "sale_partner",
    Commission: "partner",
    Payment: "partner",
}


class PartnerCenterMixin:
    """The logged-in partner, and querysets limited to them.

    `section` names the navigation entry the page belongs to.
    """

    login_url = reverse_lazy("partner:login")
    section = ""
    model: type[Model] | None = None
    request: HttpRequest
    partner: Partner

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), self.login_url)
        self.partner = self.get_partner()
        return super().dispatch(request, *args, **kwargs)

    def get_partner(self) -> Partner:
        """The logged-in user's partner; 403 for a login that is not a partner's."""
        partner = getattr(self.request.user, "partner", None)
        if partner is None:
            raise PermissionDenied("The Partner Center is for partners only.")
        return partner

    def scoped(self, model: type[Model]) -> QuerySet:
        """Every row of `model` that belongs to the logged-in partner."""
        return model._default_manager.filter(**{SCOPES[model]: self.partner})

    def get_queryset(self) -> QuerySet:
        return self.scoped(self.model)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(partner=self.partner, section=self.section)
        return context


# --- Login, logout, passwords ---------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "partner/login.html"
    authentication_form = PartnerLoginForm
    next_page = reverse_lazy("partner:dashboard")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and getattr(request.user, "partner", None):
            return redirect(self.get_success_url())
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form: PartnerLoginForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, f"Welcome, {form.get_user().partner.name}.")
        return response


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("partner:login")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PartnerPasswordResetForm
    template_name = "partner/password_reset_form.html"
    subject_template_name = "partner/emails/password_reset_subject.txt"
    email_template_name = "partner/emails/password_reset_body.txt"
    success_url = reverse_lazy("partner:password_reset_done")

    def form_valid(self, form):
        # The link in the email points at SITE_URL, never at whatever Host the request had.
        site = urlsplit(settings.SITE_URL)
        self.domain_override = site.netloc
        self.extra_email_context = {"protocol": site.scheme}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "partner/password_reset_done.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        days = settings.PASSWORD_RESET_TIMEOUT // 86400
        return super().get_context_data(timeout_days=days, **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "partner/password_reset_confirm.html"
    success_url = reverse_lazy("partner:login")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your new password is set. Log in with it.")
        return response


class PasswordChangeView(PartnerCenterMixin, auth_views.PasswordChangeView):
    template_name = "partner/password_change.html"
    success_url = reverse_lazy("partner:profile")
    section = "profile"

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is changed.")
        return response


# --- Dashboard ----------------------------------------------------------------------------


def _count(n: int | Decimal) -> str:
    return f"{int(n):,}"


def _money(amount: int | Decimal, currency: str) -> str:
    """12.5 -> '12.50' (with the currency's own number of decimals), as the API writes it."""
    return f"{Decimal(amount):.{minor_units(currency)}f}"


class DashboardView(PartnerCenterMixin, TemplateView):
    """The welcome message staff wrote (SPEC §12), then clicks, opt-ins, orders and
    commissions: the last 30 days, all time, and charts.

    Eight aggregate queries and the welcome message's, whatever the number of rows.
    """

    template_name = "partner/dashboard.html"
    section = "dashboard"

    def activity(self, model: type[Model], at: str, since: date) -> tuple[dict, dict[date, int]]:
        """All-time and recent counts, and the recent count per day."""
        rows = self.scoped(model).order_by()
        recent = Q(**{f"{at}__gte": day_start(since)})
        totals = rows.aggregate(all_time=Count("pk"), recent=Count("pk", filter=recent))
        per_day = dict(
            rows.filter(recent)
            .annotate(day=TruncDate(at))
            .values("day")
            .annotate(n=Count("pk"))
            .values_list("day", "n")
        )
        return totals, per_day

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        today = timezone.now().date()
        since = today - timedelta(days=DASHBOARD_DAYS - 1)
        first_week = today - timedelta(days=today.weekday(), weeks=DASHBOARD_WEEKS - 1)
        return super().get_context_data(
            since=since,
            days=DASHBOARD_DAYS,
            weeks=DASHBOARD_WEEKS,
            **self.activity_context(since),
            **self.earnings_context(since, first_week),
            welcome=markdown_html(welcome_message()),
            **kwargs,
        )

    def activity_context(self, since: date) -> dict[str, Any]:
        """Clicks, opt-ins and orders: the counts and the chart per day."""
        stats, daily = [], []
        for label, model, at in (
            ("Clicks", Click, "at"),
            ("Opt-ins", Lead, "occurred_at"),
            ("Orders", Order, "occurred_at"),
        ):
            totals, per_day = self.activity(model, at, since)
            stats.append({"label": label, **totals})
            daily.append(Series(label, fill_dates(per_day, start=since, count=DASHBOARD_DAYS)))
        has_data = any(value for s in daily for _, value in s.points)
        chart = bar_chart(
            chart_id="chart-daily",
            title=f"Clicks, opt-ins and orders per day, last {DASHBOARD_DAYS} days",
            series=daily,
            x_label="Day",
            y_label="Count",
            format_value=_count,
        )
        return {
            "stats": stats,
            "daily_chart": chart if has_data else None,
            "daily_rows": _table_rows(daily, _count),
        }

    def earnings_context(self, since: date, first_week: date) -> dict[str, Any]:
        """Commissions earned per currency (recent, all time) and per week in the main one."""
        earned = self.scoped(Commission).ledger().filter(entry__in=EARNED_ENTRIES).order_by()
        sums = list(
            earned.values("currency")
            .annotate(
                all_time=money_sum("amount"),
                recent=money_sum("amount", filter=Q(occurred_at__gte=day_start(since))),
            )
            .order_by("currency")
        )
        currency = _main_currency(sums)
        per_week = dict(
            earned.filter(currency=currency, occurred_at__gte=day_start(first_week))
            .annotate(week=TruncWeek("occurred_at", output_field=DateField()))
            .values("week")
            .annotate(total=money_sum("amount"))
            .values_list("week", "total")
        )
        weekly = Series(
            f"Commissions ({currency})",
            fill_dates(per_week, start=first_week, count=DASHBOARD_WEEKS, step=timedelta(weeks=1)),
        )

        def money(value: int | Decimal) -> str:
            return _money(value, currency)

        chart = bar_chart(
            chart_id="chart-weekly",
            title=f"Commissions earned per week ({currency}), last {DASHBOARD_WEEKS} weeks",
            series=[weekly],
            x_label="Week starting",
            y_label=currency,
            format_value=money,
        )
        return {
            "earned": [
                {
                    "currency": row["currency"],
                    "recent": _money(row["recent"], row["currency"]),
                    "all_time": _money(row["all_time"], row["currency"]),
                }
                for row in sums or [{"currency": currency, "recent": 0, "all_time": 0}]
            ],
            "currency": currency,
            "weekly_chart": chart if any(value for _, value in weekly.points) else None,
            "weekly_rows": _table_rows([weekly], money),
        }


def _main_currency(earned: list[dict]) -> str:
    """The site's currency, unless the partner earned only in others: then their biggest."""
    currencies = {row["currency"]: row["all_time"] for row in earned}
    if not currencies or settings.DEFAULT_CURRENCY in currencies:
        return settings.DEFAULT_CURRENCY
    return max(currencies, key=lambda code: (currencies[code], code))


def _table_rows(series: list[Series], format_value: Callable[[Any], str]) -> list[dict]:
    """The charts' numbers as table rows (the chart's text alternative)."""
    return [
        {"date": day, "values": [format_value(s.points[i][1]) for s in series]}
        for i, (day, _) in enumerate(series[0].points)
    ]


# --- Links ------------------------------------------------------------------------------


def with_ad_code(url: str, ad_code: str) -> str:
    """The partner URL that records `ad_code` on every click (SPEC §3 `ad=`)."""
    return f"{url}?ad={quote(ad_code, safe=AD_CODE_SAFE)}" if ad_code else url


class LinksView(PartnerCenterMixin, TemplateView):
    """Every link of the partner, with copy buttons, and the link generator (GET form)."""

    template_name = "partner/links.html"
    section = "links"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        links = partner_links(self.partner)
        urls = {
            link["tracking_link"].code if link["tracking_link"] else DEFAULT_LINK: link["url"]
            for link in links
        }
        form = LinkGeneratorForm(self.request.GET or None, links=links)
        coupons = self.partner.coupons.filter(active=True).order_by("code")
        chosen, ad_code = DEFAULT_LINK, ""
        if form.is_bound and form.is_valid():
            chosen, ad_code = form.cleaned_data["link"], form.cleaned_data["ad"]
        return super().get_context_data(
            links=links,
            link_urls=urls,
            form=form,
            generated_url=with_ad_code(urls[chosen], ad_code),
            coupons=coupons,
            **kwargs,
        )


# --- Ledger ------------------------------------------------------------------------------


def ledger_row(entry: Commission | Payment) -> dict[str, Any]:
    """One ledger line as the page and the CSV show it; the amount is signed."""
    if isinstance(entry, Payment):
        returned = entry.reverses_id is not None
        return {
            "at": entry.paid_at,
            "entry": "payment_returned" if returned else "payment",
            "commission_id": None,
            "order_id": "",
            "kind": "",
            "level": None,
            "amount": -entry.amount,
            "currency": entry.currency,
            "batch": entry.batch_id,
            "explanation": (
                f"The payment of payout batch {entry.batch_id} failed: back on your balance."
                if returned
                else f"Paid to you in payout batch {entry.batch_id}."
            ),
        }
    if entry.entry == CommissionEntry.REJECTION:
        explanation = f"Rejected: {entry.reason}"
    else:
        explanation = explain(
            trace=entry.trace, kind=entry.kind, level=entry.level, at=entry.occurred_at
        )
    return {
        "at": entry.occurred_at,
        "entry": entry.entry,
        "commission_id": entry.pk,
        "order_id": entry.order.order_id,
        "kind": entry.kind,
        "level": entry.level,
        "amount": entry.amount,
        "currency": entry.currency,
        "batch": None,
        "explanation": explanation,
        "payable_at": entry.payable_at,
        "status": commission_status(entry, at=timezone.now()),
    }


def _entry_key(entry: Commission | Payment) -> tuple:
    """The ledger's order: by time, commissions before payments at the same time, by id."""
    if isinstance(entry, Payment):
        return (entry.paid_at, True, entry.pk)
    return (entry.occurred_at, False, entry.pk)


def entry_keys(commissions: QuerySet[Commission], payments: QuerySet[Payment]) -> QuerySet:
    """(time, is payment, id) of every line, in the ledger's order: one UNION ALL query that
    the paginator counts and slices, so a page loads only its own lines."""
    return (
        commissions.order_by()
        .annotate(at=F("occurred_at"), is_payment=Value(False))
        .values_list("at", "is_payment", "id")
        .union(
            payments.order_by()
            .annotate(at=F("paid_at"), is_payment=Value(True))
            .values_list("at", "is_payment", "id"),
            all=True,
        )
        .order_by("at", "is_payment", "id")
    )


class LedgerMixin(PartnerCenterMixin):
    """The range form, and the partner's ledger lines in it (one currency)."""

    def ledger_range(self) -> LedgerRangeForm:
        return LedgerRangeForm(self.request.GET)

    def lines(
        self, *, start: date | None, end: date | None, currency: str
    ) -> tuple[QuerySet[Commission], QuerySet[Payment]]:
        commissions = ledger_commissions(self.partner, start=start, end=end)
        payments = ledger_payments(self.partner, start=start, end=end)
        return commissions.filter(currency=currency), payments.filter(currency=currency)


class LedgerView(LedgerMixin, QueryErrorsAre400, TemplateView):
    """The §5.5 figures for a date range (all time by default) and the lines, 50 a page."""

    template_name = "partner/ledger.html"
    section = "ledger"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = self.ledger_range()
        context = super().get_context_data(form=form, **kwargs)
        if not form.is_valid():
            return context
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        totals = ledger_totals([self.partner.pk], start=start, end=end)
        currencies = sorted({currency for _, currency in totals} | {settings.DEFAULT_CURRENCY})
        currency = form.cleaned_data["currency"] or settings.DEFAULT_CURRENCY
        summary = totals.get((self.partner.pk, currency)) or LedgerSummary(
            partner_id=self.partner.pk, currency=currency, start=start, end=end
        )
        commissions, payments = self.lines(start=start, end=end, currency=currency)
        keys = entry_keys(commissions, payments)
        page = Paginator(keys, PAGE_SIZE).get_page(self.request.GET.get("page"))
        found_commissions = commissions.in_bulk([pk for _, paid, pk in page if not paid])
        found_payments = payments.in_bulk([pk for _, paid, pk in page if paid])
        entries = [
            ledger_row(found_payments[pk] if paid else found_commissions[pk])
            for _, paid, pk in page
        ]
        return {
            **context,
            "summary": summary,
            "balance_words": balance_words(
                balance=summary.ending_balance,
                clawed_after_payout=clawed_after_payout(self.partner, currency=currency)
                if summary.ending_balance < 0
                else ZERO,
                currency=currency,
            ),
            "figures": {name: _money(getattr(summary, name), currency) for name in FIGURES},
            "currency": currency,
            "currencies": currencies,
            "entries": entries,
            "page_obj": page,
            "paginator": page.paginator,
            "filtered": bool(start or end),
            "schedule": [
                {**row, "amount": _money(row["amount"], currency)}
                for row in pending_schedule(self.partner, currency=currency, at=timezone.now())
            ],
            "csv_query": urlencode(
                {name: value for name, value in form.cleaned_data.items() if value}
            ),
        }


CSV_HEADER = (
    "date",
    "entry",
    "order_id",
    "kind",
    "level",
    "amount",
    "currency",
    "payout_batch",
    "explanation",
    "payable_at",  # added at the end (SPEC §11): when a commission is, or was, payable
)


def _cell(value: Any) -> str:
    return csv_text("" if value is None else str(value))


def csv_values(row: dict[str, Any]) -> list[str]:
    """A ledger row as CSV cells. Text a spreadsheet would run as a formula gets a leading
    quote; amounts are written as they are (a minus sign is a number there)."""
    return [
        row["at"].isoformat(),
        row["entry"],
        _cell(row["order_id"]),
        row["kind"],
        "" if row["level"] is None else str(row["level"]),
        str(row["amount"]),
        row["currency"],
        "" if row["batch"] is None else str(row["batch"]),
        _cell(row["explanation"]),
        row["payable_at"].isoformat() if row.get("payable_at") else "",
    ]


class LedgerCsvView(LedgerMixin, View):
    """The ledger lines of the same range and currency as the page, streamed as CSV."""

    def get(self, request: HttpRequest) -> HttpResponse:
        form = self.ledger_range()
        if not form.is_valid():
            errors = "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
            return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        currency = form.cleaned_data["currency"] or settings.DEFAULT_CURRENCY
        commissions, payments = self.lines(start=start, end=end, currency=currency)
        entries = heapq.merge(
            commissions.iterator(chunk_size=2000),
            payments.iterator(chunk_size=2000),
            key=_entry_key,
        )
        name = f"ledger-{self.partner.code}-{start or 'start'}-{end or 'today'}-{currency}.csv"
        return csv_response(name, CSV_HEADER, (csv_values(ledger_row(e)) for e in entries))


# --- Commissions ------------------------------------------------------------------------


class CommissionListView(PartnerCenterMixin, ListView):
    """Commission and clawback lines, newest first, 50 a page; filter by kind."""

    model = Commission
    template_name = "partner/commission_list.html"
    section = "commissions"
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[Commission]:
        self.filter_form = CommissionFilterForm(self.request.GET)
        commissions = super().get_queryset().select_related("order").order_by("-occurred_at", "-id")
        if self.filter_form.is_valid() and self.filter_form.cleaned_data["kind"]:
            commissions = commissions.filter(kind=self.filter_form.cleaned_data["kind"])
        return commissions

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(filter_form=self.filter_form, **kwargs)
        context["rows"] = [ledger_row(commission) for commission in context["object_list"]]
        return context


class CommissionDetailView(PartnerCenterMixin, DetailView):
    """One commission or clawback line with its trace in sentences (`explain_details`, the
    words staff read, in the partner's voice); another partner's line is a 404."""

    model = Commission
    template_name = "partner/commission_detail.html"
    section = "commissions"
    context_object_name = "commission"

    def get_queryset(self) -> QuerySet[Commission]:
        return (
            super()
            .get_queryset()
            .select_related("order", "clawback_of", "clawback_of__payment", "payment")
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        commission = self.object
        if commission.entry == CommissionEntry.REJECTION:
            sentences = [ledger_row(commission)["explanation"]]
        else:
            sentences = explain_details(
                trace=commission.trace,
                kind=commission.kind,
                level=commission.level,
                at=commission.occurred_at,
            )
        taken_back = commission.clawback_of
        if taken_back is not None and taken_back.payment is not None:
            sentences.append(
                f"The commission it takes back had already been paid to you (payout batch "
                f"{taken_back.payment.batch_id}, {taken_back.payment.paid_at:%Y-%m-%d}), so "
                "this comes off your balance, which stays below zero until you earn more."
            )
        return super().get_context_data(explanation=sentences[0], sentences=sentences[1:], **kwargs)


# --- Profile ----------------------------------------------------------------------------


class ProfileView(PartnerCenterMixin, FormView):
    """Name, email and the notification switches, through `partner_profile_update`."""

    template_name = "partner/profile.html"
    form_class = PartnerProfileForm
    section = "profile"

    def get_form_kwargs(self) -> dict[str, Any]:
        # The form works on a copy, so a refused save leaves the page's partner as it was.
        return {**super().get_form_kwargs(), "instance": copy.copy(self.partner)}

    def form_valid(self, form: PartnerProfileForm) -> HttpResponse:
        if not form.has_changed():
            messages.info(self.request, "Nothing changed.")
            return redirect("partner:profile")
        try:
            partner_profile_update(partner=copy.copy(self.partner), data=form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
            return self.form_invalid(form)
        messages.success(self.request, "Your profile is saved.")
        return redirect("partner:profile")
