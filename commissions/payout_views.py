"""Staff payout pages (SPEC §5.5, §11): preview a batch (a draft that records nothing),
confirm it or throw it away, mark each payment paid or failed, download its files.

Any staff may look; every write needs the permission to add payout batches. Each write is
a call to `commissions.payouts`.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import ListView

from partners.forms import add_service_errors
from partners.views import StaffRequiredMixin

from .csv_files import CSV_CHUNK, csv_response, csv_text
from .forms import PayoutBatchForm
from .models import Payment, PaymentStatus, PayoutBatch
from .payout_files import WISE_COLUMNS, paypal_currencies, paypal_rows, wise_rows
from .payouts import (
    PayoutDraftStale,
    payment_mark_failed,
    payment_mark_paid,
    payout_draft_confirm,
    payout_draft_create,
    payout_draft_discard,
)
from .report_selectors import batch_has_payment, payout_batches_list
from .views import ADD_PAYOUT_BATCH_PERMISSION, PAGE_SIZE, money_text, previous_month


def _may_write(request: HttpRequest) -> None:
    if not request.user.has_perm(ADD_PAYOUT_BATCH_PERMISSION):
        raise PermissionDenied("You may look at payouts but not create or change them.")


def batch_created_message(batch: PayoutBatch, payment_count: int) -> str:
    currency = settings.DEFAULT_CURRENCY
    text = (
        f"Payout batch {batch.pk} confirmed: {payment_count} "
        f"payment{'' if payment_count == 1 else 's'}, "
        f"total {money_text(batch.total, currency)} {currency}."
    )
    if not payment_count:
        text += " No partner had a positive balance of at least the minimum to pay."
    return text


def draft_message(batch: PayoutBatch) -> str:
    count = len(batch.preview)
    currency = settings.DEFAULT_CURRENCY
    text = (
        f"Preview of payout batch {batch.pk}: {count} payment{'' if count == 1 else 's'}, "
        f"total {money_text(batch.total, currency)} {currency}. Nothing is recorded until "
        "you confirm it."
    )
    if batch.left_out:
        text += f" {len(batch.left_out)} left out (see why below)."
    return text


class PayoutListView(StaffRequiredMixin, ListView):
    """The payout batches, and the form that previews one (Create Referral Partner
    Payments): it makes a draft, which the batch page confirms or throws away."""

    template_name = "crm/payouts/list.html"
    section = "payouts"
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[PayoutBatch]:
        return payout_batches_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        if "form" not in kwargs:
            start, end = previous_month(timezone.now().date())
            kwargs["form"] = PayoutBatchForm(initial={"start": start, "end": end})
        return super().get_context_data(
            can_create=self.request.user.has_perm(ADD_PAYOUT_BATCH_PERMISSION),
            currency=settings.DEFAULT_CURRENCY,
            **kwargs,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        _may_write(request)
        form = PayoutBatchForm(request.POST)
        if form.is_valid():
            try:
                batch = payout_draft_create(
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                    method=form.cleaned_data["method"],
                    minimum=form.cleaned_data["minimum"],
                    created_by=request.user.get_username(),
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.info(request, draft_message(batch))
                return redirect("crm:payout_detail", pk=batch.pk)
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form))


def batch_payments(batch: PayoutBatch) -> QuerySet[Payment]:
    """The batch's payments (not the rows that return a failed one's amount)."""
    return (
        batch.payments.filter(reverses__isnull=True)
        .select_related("partner")
        .order_by("partner__code", "currency")
    )


PAYOUT_CSV_HEADER = ("partner_code", "name", "email", "amount", "currency", "batch_id")


class PayoutDetailView(StaffRequiredMixin, ListView):
    """A draft: who would be paid what, who is left out and why, Confirm / Throw away.
    A confirmed batch: its payments, each to mark paid (with the reference) or failed,
    who was left out, and the files for the bank, PayPal and Wise."""

    template_name = "crm/payouts/detail.html"
    section = "payouts"
    paginate_by = PAGE_SIZE

    def get_queryset(self) -> QuerySet[Payment]:
        self.batch = get_object_or_404(PayoutBatch, pk=self.kwargs["pk"])
        return batch_payments(self.batch)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        batch = self.batch
        files = []
        if not batch.is_draft:
            pk = batch.pk
            files = [("CSV", reverse("crm:payout_csv", kwargs={"pk": pk}))]
            files += [
                (
                    f"PayPal file ({currency})",
                    reverse("crm:payout_paypal", kwargs={"pk": pk}) + f"?currency={currency}",
                )
                for currency in paypal_currencies(batch)
            ]
            files.append(("Wise file", reverse("crm:payout_wise", kwargs={"pk": pk})))
        return super().get_context_data(
            batch=batch,
            currency=settings.DEFAULT_CURRENCY,
            csv_url=reverse("crm:payout_csv", kwargs={"pk": batch.pk}),
            files=files,
            can_write=self.request.user.has_perm(ADD_PAYOUT_BATCH_PERMISSION),
            statuses=PaymentStatus,
            **kwargs,
        )


class PayoutConfirmView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        _may_write(request)
        try:
            batch = payout_draft_confirm(batch_id=pk, confirmed_by=request.user.get_username())
        except PayoutBatch.DoesNotExist:
            raise Http404("No such payout batch.") from None
        except PayoutDraftStale as error:
            messages.warning(request, " ".join(error.messages))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            count = batch.payments.count()
            messages.success(request, batch_created_message(batch, count))
        return redirect("crm:payout_detail", pk=pk)


class PayoutDiscardView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        _may_write(request)
        try:
            payout_draft_discard(batch_id=pk)
        except PayoutBatch.DoesNotExist:
            raise Http404("No such payout batch.") from None
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("crm:payout_detail", pk=pk)
        messages.success(request, f"Draft payout batch {pk} thrown away; nothing was recorded.")
        return redirect("crm:payouts")


class PaymentMarkView(StaffRequiredMixin, View):
    """Mark one payment `paid` (with the reference) or `failed` (with why)."""

    def post(self, request: HttpRequest, pk: int, payment_id: int, outcome: str) -> HttpResponse:
        _may_write(request)
        if outcome not in ("paid", "failed"):
            raise Http404("A payment is marked paid or failed.")
        if not batch_has_payment(batch_id=pk, payment_id=payment_id):
            raise Http404("No such payment in this batch.")
        by = request.user.get_username()
        note = request.POST.get("reference", "")
        try:
            if outcome == "paid":
                payment = payment_mark_paid(payment_id=payment_id, reference=note, marked_by=by)
                messages.success(request, f"Payment to {payment.partner.code} marked paid.")
            else:
                payment = payment_mark_failed(payment_id=payment_id, reason=note, marked_by=by)
                messages.success(
                    request,
                    f"Payment to {payment.partner.code} marked failed: "
                    f"{money_text(payment.amount, payment.currency)} {payment.currency} is "
                    "back on their balance.",
                )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect("crm:payout_detail", pk=pk)


def _confirmed(pk: int) -> PayoutBatch:
    batch = get_object_or_404(PayoutBatch, pk=pk)
    if batch.is_draft:
        raise Http404("A draft has no files: confirm it first.")
    return batch


class PayoutCsvView(StaffRequiredMixin, View):
    """The batch for the bank or PayPal: who gets how much, one row per payment."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = _confirmed(pk)
        rows = (
            [
                p.partner.code,
                csv_text(p.partner.name),
                csv_text(p.partner.email),
                money_text(p.amount, p.currency),
                p.currency,
                batch.pk,
            ]
            for p in batch_payments(batch).iterator(chunk_size=CSV_CHUNK)
        )
        return csv_response(f"payout-batch-{batch.pk}.csv", PAYOUT_CSV_HEADER, rows)


class PayoutPaypalFileView(StaffRequiredMixin, View):
    """PayPal Payouts' bulk file: one currency (`?currency=`, the program's by default)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = _confirmed(pk)
        currency = request.GET.get("currency", settings.DEFAULT_CURRENCY).upper()[:3]
        return csv_response(
            f"payout-batch-{batch.pk}-paypal-{currency}.csv", (), paypal_rows(batch, currency)
        )


class PayoutWiseFileView(StaffRequiredMixin, View):
    """Wise's batch payment file, for the partners paid by bank transfer."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = _confirmed(pk)
        return csv_response(f"payout-batch-{batch.pk}-wise.csv", WISE_COLUMNS, wise_rows(batch))
