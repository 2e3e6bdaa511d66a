"""The events intake (SPEC §6) and the engine's read resources.

An event already recorded answers 200 with its first result and `"duplicate": true`,
before any validation, so a retry gets the same answer even if the data changed since.
"""

from collections.abc import Callable

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from partners.api import service_errors
from partners.models import ApiKey, Partner

from . import services
from .models import Commission, EventKind, Notification, Referral
from .serializers import (
    CommissionSerializer,
    NotificationSerializer,
    OrderEventSerializer,
    OrderResultSerializer,
    ReferralSerializer,
    RefundEventSerializer,
    RefundResultSerializer,
    WebFormEventSerializer,
    WebFormResultSerializer,
)


class EventView(APIView):
    kind: str
    serializer_class: type
    record: Callable[..., services.Intake]

    def post(self, request):
        event_id = request.data.get("event_id") if isinstance(request.data, dict) else None
        if isinstance(event_id, str):
            first = services.event_result(kind=self.kind, event_id=event_id)
            if first is not None:
                return Response({**first, "duplicate": True}, status=status.HTTP_200_OK)
        serializer = self.serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with service_errors():
                intake = type(self).record(data=serializer.validated_data, payload=request.data)
        except services.UnknownOrder as error:
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
    serializer_class = WebFormEventSerializer
    record = staticmethod(services.web_form_record)


@_event_schema(OrderEventSerializer, OrderResultSerializer)
class OrderEventView(EventView):
    """An order: the lead and sale partners credited and their commissions."""

    kind = EventKind.ORDER
    serializer_class = OrderEventSerializer
    record = staticmethod(services.order_record)


@extend_schema(
    request=RefundEventSerializer,
    responses={201: RefundResultSerializer, 200: RefundResultSerializer, 404: None},
)
class RefundEventView(EventView):
    """A refund or cancellation of an order: proportional clawbacks of its commissions."""

    kind = EventKind.REFUND
    serializer_class = RefundEventSerializer
    record = staticmethod(services.refund_record)


class CommissionFilter(django_filters.FilterSet):
    partner = django_filters.CharFilter(method="filter_partner", help_text="A partner code.")
    order = django_filters.CharFilter(field_name="order__order_id", help_text="An order_id.")

    class Meta:
        model = Commission
        fields = ("partner", "order", "kind", "entry")

    def filter_partner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(partner__in=Partner.objects.by_code(value).values("pk"))


class CommissionViewSet(viewsets.ReadOnlyModelViewSet):
    """Commission and clawback lines, each with the trace it was made with."""

    queryset = Commission.objects.select_related("partner", "order").order_by("id")
    serializer_class = CommissionSerializer
    filterset_class = CommissionFilter


class NotificationFilter(CommissionFilter):
    order = None

    class Meta:
        model = Notification
        fields = ("partner", "status", "kind")


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    """The log of partner emails: queued, sent, or skipped and why."""

    queryset = Notification.objects.select_related("partner", "event").order_by("-id")
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter


class ReferralFilter(django_filters.FilterSet):
    contact = django_filters.CharFilter(method="filter_contact", help_text="A contact's email.")
    partner = django_filters.CharFilter(method="filter_partner", help_text="A partner code.")

    class Meta:
        model = Referral
        fields = ("contact", "partner", "source")

    def filter_contact(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(contact__email=services.normalise_email(value))

    filter_partner = CommissionFilter.filter_partner


class ReferralViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Contacts' referral history; POST adds a manual entry (a referral by phone or email)."""

    queryset = Referral.objects.select_related("contact", "partner").order_by("id")
    serializer_class = ReferralSerializer
    filterset_class = ReferralFilter
    write_permission = "commissions.add_referral"

    def perform_create(self, serializer: ReferralSerializer) -> None:
        data = serializer.validated_data
        key = self.request.auth if isinstance(self.request.auth, ApiKey) else None
        actor = f"api key {key.name}" if key else self.request.user.get_username()
        with service_errors():
            serializer.instance = services.referral_add_manual(
                email=data["contact"]["email"],
                partner=data["partner"],
                at=data.get("occurred_at"),
                created_by=actor,
            )


