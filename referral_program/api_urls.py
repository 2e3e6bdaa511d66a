"""The JSON API (SPEC §6), one router for both apps."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from commissions import api as commissions_api
from partners import api as partners_api

router = DefaultRouter()
router.register("partners", partners_api.PartnerViewSet, basename="partner")
router.register("programs", partners_api.ProgramViewSet, basename="program")
router.register("tracking-links", partners_api.TrackingLinkViewSet, basename="tracking-link")
router.register("coupons", partners_api.CouponViewSet, basename="coupon")
router.register("referrals", commissions_api.ReferralViewSet, basename="referral")
router.register("commissions", commissions_api.CommissionViewSet, basename="commission")
router.register("payouts", commissions_api.PayoutBatchViewSet, basename="payout")
router.register("notifications", commissions_api.NotificationViewSet, basename="notification")

overrides = partners_api.PartnerOverrideViewSet
urlpatterns = [
    path(
        "partners/<str:code>/rates/",
        overrides.as_view({"get": "list", "post": "create"}),
        name="api-partner-rates",
    ),
    path(
        "partners/<str:code>/rates/<int:pk>/",
        overrides.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="api-partner-rate",
    ),
    path("defaults/", partners_api.DefaultsView.as_view(), name="api-defaults"),
    path("partners/<str:code>/ledger/", commissions_api.LedgerView.as_view(), name="api-ledger"),
    path("events/web-forms/", commissions_api.WebFormEventView.as_view(), name="api-web-forms"),
    path("events/orders/", commissions_api.OrderEventView.as_view(), name="api-orders"),
    path("events/refunds/", commissions_api.RefundEventView.as_view(), name="api-refunds"),
    path("events/payments/", commissions_api.PaymentEventView.as_view(), name="api-payments"),
    path("simulations/", commissions_api.SimulationView.as_view(), name="api-simulations"),
    *router.urls,
]
