"""The project's URLs plus the baselines the /go/ tracker is measured against."""

from django.urls import path

from referral_program.urls import urlpatterns as project_urlpatterns

from . import views

urlpatterns = [
    *project_urlpatterns,
    path("bench/baseline/<str:code>/", views.baseline, name="bench-baseline"),
    path("bench/bare/<str:code>/", views.bare, name="bench-bare"),
]

# The baselines of bench/events.py and bench/ledger.py, and a change under test.
from . import event_views  # noqa: E402

urlpatterns += [
    path("bench/events/orders/", event_views.order_baseline, name="bench-order-baseline"),
    path("bench/hello/", event_views.hello, name="bench-hello"),
    path(
        "bench/staff-ledger-report-cached-totals/",
        event_views.ledger_report_cached_totals,
        name="bench-ledger-report-cached-totals",
    ),
]
