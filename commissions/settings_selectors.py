"""Reads of the staff settings pages: webhook endpoints and deliveries, hosted forms, and the
runs of *Preview the effect* (the defaults and program pages, SPEC §13)."""

from django.db.models import Count, Max, Q, QuerySet

from .models import (
    HostedForm,
    SimulationRun,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)


def endpoints_with_counts() -> QuerySet[WebhookEndpoint]:
    """Every endpoint with how its deliveries stand (one query)."""
    return WebhookEndpoint.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=WebhookDeliveryStatus.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=WebhookDeliveryStatus.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=WebhookDeliveryStatus.PENDING)),
        last_delivery=Max("deliveries__created_at"),
    ).order_by("id")


def endpoints_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def endpoint_by_pk(pk: str) -> WebhookEndpoint | None:
    """The endpoint a query parameter names, or None (not a number, or no such endpoint)."""
    return WebhookEndpoint.objects.filter(pk=pk).first() if pk.isdigit() else None


def deliveries_list() -> QuerySet[WebhookDelivery]:
    """The webhook deliveries with their endpoint, newest first."""
    return WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-id")


def deliveries_by_pk(ids: list[str]) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(pk__in=ids)


def hosted_forms_list() -> QuerySet[HostedForm]:
    return HostedForm.objects.order_by("code")


def simulation_runs() -> QuerySet[SimulationRun]:
    """The previews' runs (any staff may look at any: they show what the reports show)."""
    return SimulationRun.objects.select_related("program")
