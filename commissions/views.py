"""Staff pages of the commissions engine (SPEC §5.5, §7): orders and their commissions,
contacts and their referral history, a partner's activity, reports with streamed CSV
exports, and payout batches.

Like the partners' staff pages: a staff login for everything (anonymous visitors go to the
login page, other users get 403), and the model's Django permission for what writes.
Figures come from `commissions.ledger` and the report queries in `commissions.filters`; every
write is a call to `commissions.services` or `commissions.payouts`.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import batched
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import ListView, TemplateView

from partners.forms import add_service_errors
from partners.models import Partner, PartnerStatus
from partners.selectors import partner_by_code
from partners.views import StaffRequiredMixin
from referral_program.dates import QueryErrorsAre400

from . import lifecycle
from .aggregates import money_sum
from .csv_files import CSV_CHUNK, csv_response, csv_text
from .explain import explain_attribution, explain_staff
from .filters import (
    ACTIVITY_FIGURES,
    ActivityReportFilter,
    CommissionListFilter,
    ContactFilter,
    OrderFilter,
    PartnerReportFilter,
    PaymentFilter,
    ledger_grand_totals,
)
from .forms import DateRangeForm, ManualReferralForm
from .ledger import (
    LEDGER_FIGURES,
    LIFECYCLE_FIGURES,
    LedgerSummary,
    day_start,
    ledger_commissions,
    ledger_payments,
    ledger_totals,
)
from .lifecycle import commission_status
from .models import (
    EARNED_ENTRIES,
    Commission,
    CommissionEntry,
    CommissionKind,
    Contact,
    Order,
    Payment,
    Referral,
)
from .money import ZERO, round_money
from .payout_details import masked, payout_details_of
from .report_selectors import (
    commission_lines_list,
    contact_page_queryset,
    contacts_list,
    order_page_queryset,
    orders_list,
    partner_notifications,
    partners_plain,
    report_partners,
    report_payments,
)
from .services.contacts import referral_add_manual
from .services.refunds import left_to_refund

PAGE_SIZE = 50
# How many rows a CSV export reads (and computes ledger figures for) at a time.
# How many orders and web forms the contact page lists (the latest ones).
CONTACT_ROWS = 100
ADD_REFERRAL_PERMISSION = "commissions.add_referral"
ADD_PAYOUT_BATCH_PERMISSION = "commissions.add_payoutbatch"


def money_text(value: Decimal | int, currency: str) -> str:
    """A plain decimal string with the currency's minor unit: '1000.00', '-25.00', never
    '-0.00'."""
    rounded = round_money(Decimal(value), currency)
    return format(rounded if rounded else abs(rounded), "f")


def trace_json(trace: dict) -> str:
    return json.dumps(trace, indent=2, sort_keys=True)


def filters_used(request: HttpRequest) -> bool:
    return any(value for name, value in request.GET.items() if name != "page")


# --- CSV ---------------------------------------------------------------------------------


def invalid_filters(filterset: Any) -> HttpResponseBadRequest:
    errors = "; ".join(
        f"{name}: {' '.join(messages_)}" for name, messages_ in filterset.form.errors.items()
    )
    return HttpResponseBadRequest(f"Invalid filters. {errors}", content_type="text/plain")


def csv_link(request: HttpRequest, name: str) -> str:
    """The CSV export of a report, with the page's filters (but not its page number)."""
    query = request.GET.copy()
    query.pop("page", None)
    return f"{reverse(name)}?{query.urlencode()}" if query else reverse(name)


def range_suffix(start: date | None, end: date | None) -> str:
    return f"-{start or 'beginning'}-to-{end or 'now'}" if start or end else "-all-time"


# --- Orders --------------------------------------------------------------------------------


class OrderListView(StaffRequiredMixin, QueryErrorsAre400, ListView):
    template_name = "crm/orders/list.html"
    section = "orders"
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[Order]:
        orders = orders_list()
        self.filterset = OrderFilter(self.request.GET, queryset=orders)
        return self.filterset.qs if self.filterset.is_valid() else orders.none()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            filterset=self.filterset, filtered=filters_used(self.request), **kwargs
        )


def _items(order: Order) -> list[dict[str, Any]]:
    rows = []
    for item in order.items:
        price = Decimal(str(item["unit_price"]))
        rows.append({**item, "unit_price": price, "total": price * item["quantity"]})
    return rows


def commission_rows(lines: Iterable) -> list[dict]:
    """Commission and clawback lines with their trace in words and their status now, for
    staff. Each line's order (with its sale and lead partner) must be loaded with it."""
    rows = []
    now = timezone.now()
    for line in lines:
        order = line.order
        partner = order.sale_partner if line.kind == CommissionKind.SALE else order.lead_partner
        rows.append(
            {
                "line": line,
                "words": explain_staff(
                    trace=line.trace,
                    kind=line.kind,
                    level=line.level,
                    at=line.occurred_at,
                    credited=partner.code if partner else "",
                ),
                "trace": trace_json(line.trace),
                "status": commission_status(line, at=now),
            }
        )
    return rows


REVIEW_PERMISSION = "commissions.change_commission"


class CommissionListView(StaffRequiredMixin, QueryErrorsAre400, ListView):
    """Commission lines filtered by status, partner, order and date: approve the pending
    ones early or reject lines in bulk (SPEC §11)."""

    template_name = "crm/commissions/list.html"
    section = "orders"  # reached from the Orders page (the menu has no room for another entry)
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[Commission]:
        lines = commission_lines_list()
        self.filterset = CommissionListFilter(self.request.GET, queryset=lines)
        return self.filterset.qs if self.filterset.is_valid() else lines.none()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(
            filterset=self.filterset, filtered=filters_used(self.request), **kwargs
        )
        context["rows"] = commission_rows(context["object_list"])
        context["can_review"] = self.request.user.has_perm(REVIEW_PERMISSION)
        return context


class CommissionReviewView(StaffRequiredMixin, View):
    """POST: approve early (`action=approve`) or reject with a `reason` (`action=reject`)
    the commission lines `ids`, then back to `next` (a page of this site)."""

    permission_required = REVIEW_PERMISSION

    def post(self, request: HttpRequest) -> HttpResponse:
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("crm:commissions")
        try:
            ids = [int(pk) for pk in request.POST.getlist("ids")]
        except ValueError:
            return HttpResponseBadRequest("Commission ids are numbers.")
        action = request.POST.get("action")
        if not ids:
            messages.error(request, "Tick the commissions to approve or reject first.")
        elif action == "approve":
            count = lifecycle.commissions_approve(ids=ids, by=request.user.get_username())
            messages.success(
                request,
                f"{count} pending commission{pluralize(count)} approved: payable now."
                if count
                else "Nothing approved: only pending commissions can be approved.",
            )
        elif action == "reject":
            try:
                rejected = lifecycle.commissions_reject(
                    ids=ids,
                    reason=request.POST.get("reason", ""),
                    by=request.user.get_username(),
                )
            except ValidationError as error:
                for message in (m for ms in error.message_dict.values() for m in ms):
                    messages.error(request, message)
            else:
                count = len(rejected)
                messages.success(
                    request, f"{count} commission{pluralize(count)} rejected; the partner is told."
                )
        else:
            return HttpResponseBadRequest("Say approve or reject.")
        return redirect(back)


class OrderDetailView(StaffRequiredMixin, TemplateView):
    template_name = "crm/orders/detail.html"
    section = "orders"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        order = get_object_or_404(
            order_page_queryset(),
            order_id=self.kwargs["order_id"],
        )
        # The lines come with `order` set to this order (the related manager does that).
        rows = commission_rows(order.commissions.select_related("partner").order_by("id"))
        commissions = [row for row in rows if row["line"].entry == CommissionEntry.COMMISSION]
        # The credits of the lines credited on payment (SPEC §10), as the customer paid.
        credits = [row for row in rows if row["line"].entry == CommissionEntry.CREDIT]
        # Clawbacks and rejections: what takes the lines back.
        clawbacks = [row for row in rows if row["line"].entry not in EARNED_ENTRIES]
        # Earned: the lines credited in full at the order, and the credits of the others.
        on_payment = any(row["line"].credited is not None for row in commissions)
        earned = sum(
            (row["line"].amount for row in commissions if row["line"].credited is None), ZERO
        ) + sum((row["line"].amount for row in credits), ZERO)
        taken = sum((row["line"].amount for row in clawbacks), ZERO)
        items = _items(order)
        return super().get_context_data(
            order=order,
            items=items,
            gross=sum((item["total"] for item in items), ZERO),
            sale_words=explain_attribution(trace=order.sale_trace, at=order.occurred_at),
            lead_words=explain_attribution(trace=order.lead_trace, at=order.occurred_at),
            sale_trace=trace_json(order.sale_trace),
            lead_trace=trace_json(order.lead_trace),
            # A renewal past its programs' limit (SPEC §10): why they paid nothing.
            unpaid=sorted(
                {
                    why
                    for trace in (order.sale_trace, order.lead_trace)
                    for why in (trace.get("unpaid") or {}).values()
                }
            ),
            commissions=commissions,
            credits=credits,
            on_payment=on_payment,
            clawbacks=clawbacks,
            can_review=self.request.user.has_perm(REVIEW_PERMISSION),
            earned=earned,
            taken=taken,
            net=earned + taken,
            refunds=order.refunds.select_related("event")
            .annotate(clawed=money_sum("clawbacks__amount"))
            .order_by("occurred_at", "id"),
            left_to_refund=left_to_refund(order, credited_on_payment=on_payment),
            **kwargs,
        )


# --- Contacts ------------------------------------------------------------------------------


class ContactListView(StaffRequiredMixin, ListView):
    template_name = "crm/contacts/list.html"
    section = "contacts"
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[Contact]:
        contacts = contacts_list()
        self.filterset = ContactFilter(self.request.GET, queryset=contacts)
        return self.filterset.qs if self.filterset.is_valid() else contacts.none()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            filterset=self.filterset, filtered=filters_used(self.request), **kwargs
        )


def _referral_state(referral: Referral, now: datetime) -> str:
    """Whether a history entry would count for an event now (SPEC §4)."""
    if referral.partner.status != PartnerStatus.ACTIVE:
        return "Partner inactive"
    if referral.set_at > now:
        return "Not yet"
    if referral.expires_at is not None and referral.expires_at <= now:
        return "Expired"
    return "Counts"


class ContactDetailView(StaffRequiredMixin, View):
    """A contact, its lead partner and referral history, orders and web forms; staff with
    the permission add manual referral history entries here."""

    template_name = "crm/contacts/detail.html"
    section = "contacts"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        contact = get_object_or_404(contact_page_queryset(), pk=pk)
        return self.render_page(contact, ManualReferralForm(today=timezone.now().date()))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(ADD_REFERRAL_PERMISSION):
            raise PermissionDenied("You may look at contacts but not add referrals.")
        contact = get_object_or_404(contact_page_queryset(), pk=pk)
        form = ManualReferralForm(request.POST, today=timezone.now().date())
        if form.is_valid():
            partner, day = form.cleaned_data["partner"], form.cleaned_data["referred_on"]
            try:
                referral_add_manual(
                    email=contact.email,
                    partner=partner,
                    at=day_start(day) if day else None,
                    created_by=request.user.get_username(),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(
                    request, f"Referral by {partner.code} added to the history of {contact.email}."
                )
                return redirect("crm:contact_detail", pk=contact.pk)
        return self.render_page(contact, form)

    def render_page(self, contact: Contact, form: ManualReferralForm) -> HttpResponse:
        now = timezone.now()
        referrals = contact.referrals.select_related("partner").order_by("set_at", "id")
        orders = contact.orders.select_related("sale_partner", "lead_partner").order_by(
            "-occurred_at", "-id"
        )
        leads = contact.leads.select_related("partner").order_by("-occurred_at", "-id")
        context = {
            "section": self.section,
            "contact": contact,
            "lead_words": explain_attribution(
                trace=contact.lead_trace,
                at=contact.lead_partner_set_at or now,
                event="the event that fixed it",
            ),
            "lead_trace": trace_json(contact.lead_trace),
            "referrals": [{"referral": r, "state": _referral_state(r, now)} for r in referrals],
            "orders": orders[:CONTACT_ROWS],
            "order_count": orders.count(),
            "leads": leads[:CONTACT_ROWS],
            "lead_count": leads.count(),
            "shown_rows": CONTACT_ROWS,
            "form": form,
            "can_add": self.request.user.has_perm(ADD_REFERRAL_PERMISSION),
        }
        return render(self.request, self.template_name, context)


# --- A partner's activity ---------------------------------------------------------------------


def no_entries(partner: Partner, *, start: date | None, end: date | None) -> LedgerSummary:
    """The figures of a partner without any entry: zeros in the program currency."""
    return LedgerSummary(
        partner_id=partner.pk, currency=settings.DEFAULT_CURRENCY, start=start, end=end
    )


def partner_ledger_summaries(
    partner: Partner, *, start: date | None, end: date | None
) -> list[LedgerSummary]:
    """The partner's figures per currency (two aggregate queries)."""
    totals = ledger_totals([partner.pk], start=start, end=end)
    return [totals[key] for key in sorted(totals)] or [no_entries(partner, start=start, end=end)]


class PartnerActivityView(StaffRequiredMixin, QueryErrorsAre400, TemplateView):
    """A partner's ledger for a chosen range, its commission lines with their traces in words,
    its payments, and the log of the emails it was sent (or not, and why)."""

    template_name = "crm/partners/activity.html"
    section = "partners"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        partner = get_object_or_404(partner_by_code(self.kwargs["code"]))
        form = DateRangeForm(self.request.GET)
        period = form.cleaned_data if form.is_valid() else {}  # refused: all time, and why
        start, end = period.get("start"), period.get("end")
        lines = ledger_commissions(partner, start=start, end=end).select_related(
            "order__sale_partner", "order__lead_partner"
        )
        lines_page = Paginator(lines, PAGE_SIZE).get_page(self.request.GET.get("page"))
        notifications_page = Paginator(partner_notifications(partner), PAGE_SIZE)
        return super().get_context_data(
            partner=partner,
            form=form,
            start=start,
            end=end,
            summaries=partner_ledger_summaries(partner, start=start, end=end),
            lines_page=lines_page,
            lines=commission_rows(lines_page.object_list),
            can_review=self.request.user.has_perm(REVIEW_PERMISSION),
            payments=ledger_payments(partner, start=start, end=end).select_related("batch"),
            notifications_page=notifications_page.get_page(self.request.GET.get("npage")),
            payout_details=masked(payout_details_of(partner)),
            payout_details_changes=partner.payout_details_changes.all()[:20],
            **kwargs,
        )


# --- Reports -------------------------------------------------------------------------------


class ReportsView(StaffRequiredMixin, TemplateView):
    template_name = "crm/reports/index.html"
    section = "reports"


def ledger_rows(
    partners: Sequence[Partner], *, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """One row per partner and currency, in the partners' order: the figures of these
    partners only, in the two aggregate queries of `ledger_totals`. A partner without
    entries gets a row of zeros in the program currency."""
    figures = ledger_totals([partner.pk for partner in partners], start=start, end=end)
    by_partner: dict[int, list[LedgerSummary]] = {}
    for key in sorted(figures):
        by_partner.setdefault(key[0], []).append(figures[key])
    rows = []
    for partner in partners:
        summaries = by_partner.get(partner.pk) or [no_entries(partner, start=start, end=end)]
        rows += [
            {
                "partner": partner,
                "currency": summary.currency,
                "beginning_balance": summary.beginning_balance,
                "earned": summary.earned,
                "clawbacks": summary.clawbacks,
                "payments": summary.payments,
                "ending_balance": summary.ending_balance,
                "rejections": summary.rejections,
                "pending": summary.pending,
                "payable": summary.payable,
            }
            for summary in summaries
        ]
    return rows


LEDGER_CSV_HEADER = ("partner_code", "partner_name", "currency", "start", "end", *LEDGER_FIGURES)
LEDGER_CSV_HEADER += LIFECYCLE_FIGURES  # added at the end: scripts reading by position go on


def ledger_csv_row(row: dict[str, Any], start: date | None, end: date | None) -> list[str]:
    currency = row["currency"]
    return [
        row["partner"].code,
        csv_text(row["partner"].name),
        currency,
        start.isoformat() if start else "",
        end.isoformat() if end else "",
        *(money_text(row[name], currency) for name in (*LEDGER_FIGURES, *LIFECYCLE_FIGURES)),
    ]


class LedgerReportView(StaffRequiredMixin, QueryErrorsAre400, TemplateView):
    """Per partner and currency: beginning balance, earned, clawbacks, payments, ending
    balance for a range (SPEC §5.5). Figures are computed for the page's partners only; the
    totals row, for every partner the filters choose, by `ledger_grand_totals` (one
    statement that does not read all history, and no cache to go stale)."""

    template_name = "crm/reports/ledger.html"
    section = "reports"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        filterset = PartnerReportFilter(self.request.GET, queryset=report_partners())
        context = {"filterset": filterset, "filtered": filters_used(self.request)}
        if filterset.is_valid():
            start, end = filterset.period
            page = Paginator(filterset.qs, PAGE_SIZE).get_page(self.request.GET.get("page"))
            context.update(
                start=start,
                end=end,
                page_obj=page,
                paginator=page.paginator,
                rows=ledger_rows(page.object_list, start=start, end=end),
                totals=list(ledger_grand_totals(filterset.qs, start=start, end=end).values()),
                csv_url=csv_link(self.request, "crm:report_ledger_csv"),
            )
        return super().get_context_data(**context, **kwargs)


class LedgerReportCsvView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        filterset = PartnerReportFilter(request.GET, queryset=report_partners())
        if not filterset.is_valid():
            return invalid_filters(filterset)
        start, end = filterset.period

        def rows() -> Iterator[list[str]]:
            partners = filterset.qs.iterator(chunk_size=CSV_CHUNK)
            for chunk in batched(partners, CSV_CHUNK):
                for row in ledger_rows(chunk, start=start, end=end):
                    yield ledger_csv_row(row, start, end)

        return csv_response(f"ledger{range_suffix(start, end)}.csv", LEDGER_CSV_HEADER, rows())


ACTIVITY_CSV_HEADER = (
    "partner_code",
    "partner_name",
    "start",
    "end",
    "clicks",
    "optins",
    "orders",
    "sales",
    "commissions_earned",
)


def activity_totals(partners: QuerySet[Partner]) -> dict[str, Any]:
    """The activity figures of all the partners together (one query)."""
    # An aggregate named like the annotation it sums would replace it: name them apart.
    sums = partners.aggregate(
        **{
            f"all_{name}": money_sum(name) if name.endswith("_total") else Sum(name)
            for name in ACTIVITY_FIGURES
        }
    )
    return {name: sums[f"all_{name}"] or 0 for name in ACTIVITY_FIGURES}


class ActivityReportView(StaffRequiredMixin, QueryErrorsAre400, TemplateView):
    """Per partner for a range: clicks, opt-ins, orders, sales, commissions earned."""

    template_name = "crm/reports/activity.html"
    section = "reports"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        filterset = ActivityReportFilter(self.request.GET, queryset=report_partners())
        context = {"filterset": filterset, "filtered": filters_used(self.request)}
        if filterset.is_valid():
            start, end = filterset.period
            page = Paginator(filterset.qs, PAGE_SIZE).get_page(self.request.GET.get("page"))
            context.update(
                start=start,
                end=end,
                page_obj=page,
                paginator=page.paginator,
                totals=activity_totals(filterset.qs),
                currency=settings.DEFAULT_CURRENCY,
                csv_url=csv_link(self.request, "crm:report_activity_csv"),
            )
        return super().get_context_data(**context, **kwargs)


class ActivityReportCsvView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        filterset = ActivityReportFilter(request.GET, queryset=partners_plain())
        if not filterset.is_valid():
            return invalid_filters(filterset)
        start, end = filterset.period
        currency = settings.DEFAULT_CURRENCY
        rows = (
            [
                p.code,
                csv_text(p.name),
                start.isoformat() if start else "",
                end.isoformat() if end else "",
                p.click_count,
                p.optin_count,
                p.order_count,
                money_text(p.sales_total, currency),
                money_text(p.earned_total, currency),
            ]
            for p in filterset.qs.iterator(chunk_size=CSV_CHUNK)
        )
        return csv_response(f"activity{range_suffix(start, end)}.csv", ACTIVITY_CSV_HEADER, rows)


PAYMENTS_CSV_HEADER = (
    "payment_id",
    "batch_id",
    "partner_code",
    "partner_name",
    "amount",
    "currency",
    "paid_at",
    "status",
    "reference",
)


class PaymentReportView(StaffRequiredMixin, QueryErrorsAre400, ListView):
    template_name = "crm/reports/payments.html"
    section = "reports"
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[Payment]:
        self.filterset = PaymentFilter(self.request.GET, queryset=report_payments())
        return self.filterset.qs if self.filterset.is_valid() else Payment.objects.none()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        totals = (
            self.object_list.order_by()
            .values("currency")
            .annotate(total=money_sum("amount"), count=Count("pk"))
            .order_by("currency")
        )
        return super().get_context_data(
            filterset=self.filterset,
            filtered=filters_used(self.request),
            totals=totals,
            csv_url=csv_link(self.request, "crm:report_payments_csv")
            if self.filterset.is_valid()
            else "",
            **kwargs,
        )


class PaymentReportCsvView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        filterset = PaymentFilter(request.GET, queryset=report_payments())
        if not filterset.is_valid():
            return invalid_filters(filterset)
        start, end = filterset.period
        rows = (
            [
                p.pk,
                p.batch_id,
                p.partner.code,
                csv_text(p.partner.name),
                money_text(p.amount, p.currency),
                p.currency,
                p.paid_at.isoformat(),
                p.status,
                csv_text(p.reference),
            ]
            for p in filterset.qs.iterator(chunk_size=CSV_CHUNK)
        )
        return csv_response(f"payments{range_suffix(start, end)}.csv", PAYMENTS_CSV_HEADER, rows)


# --- Payouts -------------------------------------------------------------------------------


def previous_month(today: date) -> tuple[date, date]:
    """The first and last day of the month before `today`'s."""
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last
