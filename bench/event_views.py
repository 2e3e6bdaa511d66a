"""The baselines of bench/events.py and bench/ledger.py, in the same project as what they
measure.

`order_baseline` (`POST /bench/events/orders/`) answers what an API view must do at least for
an order event: the same API key authentication and JSON parsing as
`POST /api/v1/events/orders/`, a DRF serializer validating a payload of the same shape
(contact email, items with decimal prices, currency, the partner fields as plain text), and
ONE row inserted: the event, as `commissions.models.Event` of its own kind "bench" (the API
never makes that kind, so the counts cannot mix). No attribution, no commission, no lookup.

`hello` (`GET /bench/hello/`) is the trivial authenticated page of bench/ledger.py: the
session and its user are loaded (as for any logged-in page), then a fixed small HTML page.

`ledger_report_cached_totals` (`GET /bench/staff-ledger-report-cached-totals/`) is a change
under test, not a baseline: the staff ledger report with its grand totals cached.
"""

import hashlib
from typing import Any
from unittest import mock

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_safe
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions import views as crm_views
from commissions.filters import ledger_grand_totals
from commissions.models import Event
from commissions.views import LedgerReportView

BENCH_KIND = "bench"
CACHED_TOTALS_SECONDS = 300


class ContactSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)


class ItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)


class OrderBaselineSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=100)
    contact = ContactSerializer()
    currency = serializers.CharField(min_length=3, max_length=3)
    items = ItemSerializer(many=True, min_length=1, max_length=1000)
    lead_partner = serializers.CharField(max_length=32, required=False)
    sale_partner = serializers.CharField(max_length=32, required=False)
    tracking_token = serializers.CharField(max_length=4096, required=False)


class OrderBaselineView(APIView):
    def post(self, request):
        serializer = OrderBaselineSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        now = timezone.now()
        event = Event.objects.create(
            kind=BENCH_KIND,
            event_id=serializer.validated_data["event_id"],
            payload=request.data,
            received_at=now,
            occurred_at=now,
        )
        body = {"event_id": event.event_id, "id": event.pk}
        return Response(body, status=status.HTTP_201_CREATED)


order_baseline = OrderBaselineView.as_view()


HELLO = "<!doctype html><title>Hello</title><p>Hello, {name}.</p>"


@require_safe
@login_required
def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(format_html(HELLO, name=request.user.get_username()))


# --- A query change under test (bench/ledger.py) -------------------------------------------


def cached_grand_totals(partners, *, start, end):
    """`ledger_grand_totals`, kept for CACHED_TOTALS_SECONDS per partner query and period in
    this process's cache."""
    query = str(partners.order_by().values("pk").query)
    key = "bench-grand-totals:" + hashlib.sha256(f"{query}|{start}|{end}".encode()).hexdigest()
    totals = cache.get(key)
    if totals is None:
        totals = ledger_grand_totals(partners, start=start, end=end)
        cache.set(key, totals, CACHED_TOTALS_SECONDS)
    return totals


class LedgerReportCachedTotalsView(LedgerReportView):
    """The staff ledger report exactly as `/staff/reports/ledger/` makes it, except that its
    grand totals (the sums over every partner the filters choose) come from a cache: what
    the page costs when that one query is not run on every view."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        with mock.patch.object(crm_views, "ledger_grand_totals", cached_grand_totals):
            return super().get_context_data(**kwargs)


ledger_report_cached_totals = LedgerReportCachedTotalsView.as_view()
