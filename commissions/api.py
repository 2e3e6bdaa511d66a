"""The events intake (SPEC §6) and the engine's read resources.

An event already recorded answers 200 with its first result and `"duplicate": true`,
whatever its body, so a retry gets the same answer even if the data changed since: the
service finds the repeat when it inserts the event; a body that does not validate is
looked up before the 400.
"""

from collections.abc import Callable
from decimal import Decimal

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from partners.api import service_errors
from partners.models import ApiKey
from partners.selectors import partner_by_code, partner_ids_by_code

from . import lifecycle
from .ledger import ledger_commissions, ledger_payments, partner_ledger
from .models import (
    Commission,
    CommissionEntry,
    CommissionStatus,
    EventKind,
    Notification,
    Referral,
)
from .payouts import (
    PayoutDraftStale,
    payment_mark_failed,
    payment_mark_paid,
    payout_batch_create,
    payout_draft_confirm,
    payout_draft_create,
    payout_draft_discard,
)
from .replay import simulation_run
from .report_selectors import (
    batch_has_payment,
    commissions_by_id,
    notifications_list,
    payout_batches_with_payments,
    referrals_list,
)
from .serializers import (
    CommissionSerializer,
    LedgerQuerySerializer,
    LedgerSerializer,
    NotificationSerializer,
    OrderEventSerializer,
    OrderResultSerializer,
    PaymentEventSerializer,
    PaymentMarkSerializer,
    PaymentResultSerializer,
    PayoutBatchSerializer,
    ReferralSerializer,
    RefundEventSerializer,
    RefundResultSerializer,
    RejectSerializer,
    WebFormEventSerializer,
    WebFormResultSerializer,
)
from .services.contacts import normalise_email, referral_add_manual
from .services.events import Intake, UnknownOrder, event_result
from .services.orders import order_record
from .services.payments import payment_record
from .services.refunds import refund_record
from .services.web_forms import web_form_record
from .simulation_serializers import (
    SimulationAnswerSerializer,
    SimulationQuerySerializer,
    SimulationSerializer,
)


class EventView(APIView):
    """A session must hold the Django right to add what the event writes (`write_permission`)."""

    kind: str
    write_permission: str
    serializer_class: type
    record: Callable[..., Intake]

    def post(self, request):
        serializer = self.serializer_class(data=request.data)
        if not serializer.is_valid():
            # A repeat is answered even when its body would no longer validate. A repeat
            # that validates is answered by the service, from the insert of its event.
            event_id = request.data.get("event_id") if isinstance(request.data, dict) else None
            first = None
            if isinstance(event_id, str):
                first = event_result(kind=self.kind, event_id=event_id)
            if first is not None:
                return Response({**first, "duplicate": True}, status=status.HTTP_200_OK)
            raise ValidationError(serializer.errors)
        try:
            with service_errors():
                intake = type(self).record(data=serializer.validated_data, payload=request.data)
        except UnknownOrder as error:
            raise NotFound({"order_id": [f"No order {error.args[0]!r} was recorded."]}) from None
        code = status.HTTP_200_OK if intake.duplicate else status.HTTP_201_CREATED
        return Response({**intake.result, "duplicate": intake.duplicate}, status=code)


def _event_schema(request, response):
    return extend_schema(
        request=request,
        responses={
            201: response,
            200: OpenApiResponse(response, description="A repeat: the first result."),
        },
    )


@_event_schema(WebFormEventSerializer, WebFormResultSerializer)
class WebFormEventView(EventView):
    """A web form filled out: the contact, its referral history and lead partner."""

    kind = EventKind.WEB_FORM
    write_permission = "commissions.add_lead"
    serializer_class = WebFormEventSerializer
    record = staticmethod(web_form_record)


@_event_schema(OrderEventSerializer, OrderResultSerializer)
class OrderEventView(EventView):
    """An order: the lead and sale partners credited and their commissions."""

    kind = EventKind.ORDER
    write_permission = "commissions.add_order"
    serializer_class = OrderEventSerializer
    record = staticmethod(order_record)


def _order_event_schema(request, response):
    """An event that names an order: 404 when that order was never recorded."""
    return extend_schema(
        request=request,
        responses={
            201: response,
            200: response,
            404: OpenApiResponse(description="No order was recorded with this order_id."),
        },
    )


@_order_event_schema(RefundEventSerializer, RefundResultSerializer)
class RefundEventView(EventView):
    """A refund or cancellation of an order: proportional clawbacks of its commissions."""

    kind = EventKind.REFUND
    write_permission = "commissions.add_refund"
    serializer_class = RefundEventSerializer
    record = staticmethod(refund_record)


@_order_event_schema(PaymentEventSerializer, PaymentResultSerializer)
class PaymentEventView(EventView):
    """A customer's payment on an order: the commissions of programs that credit on payment
    are credited their share."""

    kind = EventKind.PAYMENT
    write_permission = "commissions.add_orderpayment"
    serializer_class = PaymentEventSerializer
    record = staticmethod(payment_record)


class CommissionFilter(django_filters.FilterSet):
    partner = django_filters.CharFilter(method="filter_partner", help_text="A partner code.")
    order = django_filters.CharFilter(field_name="order__order_id", help_text="An order_id.")

    class Meta:
        model = Commission
        fields = ("partner", "order", "kind", "entry")

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(partner__in=partner_ids_by_code(value))


class CommissionListFilter(CommissionFilter):
    status = django_filters.ChoiceFilter(
        choices=CommissionStatus.choices,
        method="filter_status",
        help_text="pending, payable, rejected or paid, now.",
    )

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(lifecycle.status_filter(value, at=timezone.now()))


def _actor(request) -> str:
    key = request.auth if isinstance(request.auth, ApiKey) else None
    return f"api key {key.name}" if key else request.user.get_username()


class CommissionViewSet(viewsets.ReadOnlyModelViewSet):
    """Commission, clawback and rejection lines, each with the trace it was made with, its
    status and when it is payable (SPEC §11). Staff approve a pending line early or reject
    one with a reason; a session needs the right to change commissions."""

    serializer_class = CommissionSerializer
    filterset_class = CommissionListFilter
    write_permission = "commissions.change_commission"

    def get_queryset(self) -> QuerySet[Commission]:
        return lifecycle.with_status(
            commissions_by_id(),
            at=timezone.now(),
        )

    def _line(self, pk) -> Commission:
        line = self.get_object()
        if line.entry != CommissionEntry.COMMISSION:
            message = "Only a commission line can be approved or rejected."
            raise ValidationError({"entry": [message]})
        return line

    @extend_schema(request=None, responses=CommissionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None, format=None):
        """Make a pending commission payable now (early approval)."""
        line = self._line(pk)
        if not lifecycle.commissions_approve(ids=[line.pk], by=_actor(request)):
            status_now = lifecycle.commission_status(line, at=timezone.now())
            message = f"Only a pending commission can be approved; this one is {status_now}."
            raise ValidationError({"status": [message]})
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=RejectSerializer, responses=CommissionSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None, format=None):
        """Reject a commission with a reason: a rejection entry takes back what is left of
        it, and the partner is told (unless notifications are skipped)."""
        line = self._line(pk)
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors():
            lifecycle.commissions_reject(
                ids=[line.pk], reason=body.validated_data["reason"], by=_actor(request)
            )
        return Response(self.get_serializer(self.get_object()).data)


class NotificationFilter(CommissionFilter):
    order = None

    class Meta:
        model = Notification
        fields = ("partner", "status", "kind")


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    """The log of partner emails: queued, sent, or skipped and why."""

    queryset = notifications_list()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter


class ReferralFilter(django_filters.FilterSet):
    contact = django_filters.CharFilter(method="filter_contact", help_text="A contact's email.")
    partner = django_filters.CharFilter(method="filter_partner", help_text="A partner code.")

    class Meta:
        model = Referral
        fields = ("contact", "partner", "source")

    def filter_contact(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(contact__email=normalise_email(value))

    filter_partner = CommissionFilter.filter_partner


class ReferralViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Contacts' referral history; POST adds a manual entry (a referral by phone or email)."""

    queryset = referrals_list()
    serializer_class = ReferralSerializer
    filterset_class = ReferralFilter
    write_permission = "commissions.add_referral"

    def perform_create(self, serializer: ReferralSerializer) -> None:
        data = serializer.validated_data
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        actor = f"api key {key.name}" if key else self.request.user.get_username()
        with service_errors():
            serializer.instance = referral_add_manual(
                email=data["contact"]["email"],
                partner=data["partner"],
                at=data.get("occurred_at"),
                created_by=actor,
            )


def ledger_entries(partner, *, start, end) -> list[dict]:
    """The commission, clawback and payment entries of the range, by time."""
    rows = [
        {
            "entry": c.entry,
            "id": c.pk,
            "at": c.occurred_at,
            "amount": c.amount,
            "currency": c.currency,
            "order_id": c.order.order_id,
            "level": c.level,
            "kind": c.kind,
            "batch": None,
            "payable_at": c.payable_at,
            "reason": c.reason if c.entry == CommissionEntry.REJECTION else "",
        }
        for c in ledger_commissions(partner, start=start, end=end)
    ] + [
        {
            "entry": "payment_returned" if p.reverses_id else "payment",
            "id": p.pk,
            "at": p.paid_at,
            "amount": -p.amount,
            "currency": p.currency,
            "order_id": None,
            "level": None,
            "kind": None,
            "batch": p.batch_id,
            "payable_at": None,
            "reason": "",
        }
        for p in ledger_payments(partner, start=start, end=end)
    ]
    return sorted(rows, key=lambda row: (row["at"], row["entry"].startswith("payment"), row["id"]))


@extend_schema(parameters=[LedgerQuerySerializer], responses=LedgerSerializer)
class LedgerView(APIView):
    """A partner's ledger for a date range (SPEC §5.5); all time when no dates are given."""

    def get(self, request, code: str):
        partner = partner_by_code(code).first()
        if partner is None:
            raise NotFound({"code": [f"No partner has the code {code}."]})
        query = LedgerQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data.get("start"), query.validated_data.get("end")
        currency = query.validated_data.get("currency", settings.DEFAULT_CURRENCY).upper()
        summary = partner_ledger(partner, start=start, end=end, currency=currency)
        entries = [
            e for e in ledger_entries(partner, start=start, end=end) if e["currency"] == currency
        ]
        return Response(
            LedgerSerializer(
                {
                    **vars(summary),
                    "partner": partner.code,
                    "ending_balance": summary.ending_balance,
                    "entries": entries,
                }
            ).data
        )


class PayoutBatchViewSet(
    mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Payout batches: POST runs "Create Referral Partner Payments" for a date range and
    records it at once (SPEC §6); with `"draft": true` it answers a preview that records
    nothing until `POST .../{id}/confirm/`; a draft can be deleted (SPEC §11)."""

    queryset = payout_batches_with_payments()
    serializer_class = PayoutBatchSerializer
    write_permission = "commissions.add_payoutbatch"

    def _actor(self) -> str:
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        return f"api key {key.name}" if key else self.request.user.get_username()

    def perform_create(self, serializer: PayoutBatchSerializer) -> None:
        data = serializer.validated_data
        query = {
            "start": data["start"],
            "end": data["end"],
            "method": data["method"],
            "minimum": data.get("minimum") or Decimal(0),
            "created_by": self._actor(),
        }
        require = data.get("require_payout_details")
        with service_errors():
            if data.get("draft"):
                if require is False:
                    raise ValidationError(
                        {"require_payout_details": ["A draft always leaves them out."]}
                    )
                batch = payout_draft_create(**query)
            else:
                batch = payout_batch_create(**query, require_payout_details=bool(require))
        serializer.instance = self.get_queryset().get(pk=batch.pk)

    def destroy(self, request, *args, **kwargs) -> Response:
        batch = self.get_object()
        with service_errors():
            payout_draft_discard(batch_id=batch.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: PayoutBatchSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None, format=None) -> Response:
        """Record a draft's payments, as previewed. When what is owed changed since, nothing
        is recorded or changed: 409, and a new draft shows the new amounts."""
        batch = self.get_object()
        with service_errors():
            try:
                payout_draft_confirm(batch_id=batch.pk, confirmed_by=self._actor())
            except PayoutDraftStale as error:
                return Response(
                    serializers.as_serializer_error(error), status=status.HTTP_409_CONFLICT
                )
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)

    def _mark(self, request, pk, payment_id, mark) -> Response:
        batch = self.get_object()
        if not batch_has_payment(batch_id=batch.pk, payment_id=payment_id, reversals=False):
            raise NotFound({"payment_id": [f"Batch {batch.pk} has no payment {payment_id}."]})
        body = PaymentMarkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors():
            mark(int(payment_id), body.validated_data["reference"], self._actor())
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(request=PaymentMarkSerializer, responses={200: PayoutBatchSerializer})
    @action(detail=True, methods=["post"], url_path=r"payments/(?P<payment_id>\d+)/paid")
    def paid(self, request, pk=None, payment_id=None, format=None) -> Response:
        """Mark one payment paid, with the bank's or PayPal's reference."""
        return self._mark(
            request,
            pk,
            payment_id,
            lambda pid, ref, by: payment_mark_paid(payment_id=pid, reference=ref, marked_by=by),
        )

    @extend_schema(request=PaymentMarkSerializer, responses={200: PayoutBatchSerializer})
    @action(detail=True, methods=["post"], url_path=r"payments/(?P<payment_id>\d+)/failed")
    def failed(self, request, pk=None, payment_id=None, format=None) -> Response:
        """Mark one payment failed: its amount goes back on the partner's balance."""
        return self._mark(
            request,
            pk,
            payment_id,
            lambda pid, ref, by: payment_mark_failed(payment_id=pid, reason=ref, marked_by=by),
        )


class SimulationView(APIView):
    """What-if replay: every stored event of the range (web forms, orders,
    refunds, payments), replayed in the order they were recorded through the same
    attribution and calculation under the proposed defaults and programs, compared with
    what is recorded (`now`). Writes nothing: the proposal is never saved. `start`/`end`:
    days (the end day included) or ISO 8601 times (the end excluded)."""

    # Staff who may read commissions may see what a change would pay them; it saves nothing.
    write_permission = "commissions.view_commission"

    @extend_schema(
        request=SimulationSerializer,
        parameters=[SimulationQuerySerializer],
        responses=SimulationAnswerSerializer,
    )
    def post(self, request):
        query = SimulationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = SimulationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors():
            answer = simulation_run(
                **body.validated_data, detail=query.validated_data.get("orders") == "changed"
            )
        return Response(SimulationAnswerSerializer(answer).data)
