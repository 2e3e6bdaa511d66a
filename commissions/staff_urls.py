"""Staff pages of the commissions engine, under the "crm" namespace, included at /staff/."""

from django.urls import path

from . import (
    dashboard_views,
    link_report_views,
    payout_views,
    settings_views,
    simulation_views,
    views,
)

app_name = "crm"

urlpatterns = [
    path("", dashboard_views.DashboardView.as_view(), name="dashboard"),
    # Preview the effect (SPEC §13): the defaults and program pages' forms post here.
    path(
        "settings/referral-partner-defaults/preview/",
        simulation_views.DefaultsPreviewView.as_view(),
        name="defaults_preview",
    ),
    path(
        "programs/<int:pk>/preview/",
        simulation_views.ProgramPreviewView.as_view(),
        name="program_preview",
    ),
    path(
        "simulations/<uuid:pk>/", simulation_views.SimulationDetailView.as_view(), name="simulation"
    ),
    path(
        "simulations/<uuid:pk>/status/",
        simulation_views.SimulationStatusView.as_view(),
        name="simulation_status",
    ),
    path(
        "simulations/<uuid:pk>/csv/",
        simulation_views.SimulationCsvView.as_view(),
        name="simulation_csv",
    ),
    path("orders/", views.OrderListView.as_view(), name="orders"),
    path("commissions/", views.CommissionListView.as_view(), name="commissions"),
    path("commissions/review/", views.CommissionReviewView.as_view(), name="commission_review"),
    # An order is named by its event's event_id, which may hold any visible character.
    path("orders/<path:order_id>/", views.OrderDetailView.as_view(), name="order_detail"),
    path("contacts/", views.ContactListView.as_view(), name="contacts"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="contact_detail"),
    path(
        "crm/partners/<str:code>/activity/",
        views.PartnerActivityView.as_view(),
        name="partner_activity",
    ),
    path("reports/", views.ReportsView.as_view(), name="reports"),
    path("reports/ledger/", views.LedgerReportView.as_view(), name="report_ledger"),
    path("reports/ledger/csv/", views.LedgerReportCsvView.as_view(), name="report_ledger_csv"),
    path("reports/activity/", views.ActivityReportView.as_view(), name="report_activity"),
    path(
        "reports/activity/csv/",
        views.ActivityReportCsvView.as_view(),
        name="report_activity_csv",
    ),
    path("reports/links/", link_report_views.StaffLinkReportView.as_view(), name="report_links"),
    path(
        "reports/links/csv/",
        link_report_views.StaffLinkReportCsvView.as_view(),
        name="report_links_csv",
    ),
    path("reports/payments/", views.PaymentReportView.as_view(), name="report_payments"),
    path(
        "reports/payments/csv/",
        views.PaymentReportCsvView.as_view(),
        name="report_payments_csv",
    ),
    path("payouts/", payout_views.PayoutListView.as_view(), name="payouts"),
    path("payouts/<int:pk>/", payout_views.PayoutDetailView.as_view(), name="payout_detail"),
    path(
        "payouts/<int:pk>/confirm/", payout_views.PayoutConfirmView.as_view(), name="payout_confirm"
    ),
    path(
        "payouts/<int:pk>/discard/", payout_views.PayoutDiscardView.as_view(), name="payout_discard"
    ),
    path(
        "payouts/<int:pk>/payments/<int:payment_id>/<str:outcome>/",
        payout_views.PaymentMarkView.as_view(),
        name="payment_mark",
    ),
    path("payouts/<int:pk>/csv/", payout_views.PayoutCsvView.as_view(), name="payout_csv"),
    path(
        "payouts/<int:pk>/paypal.csv",
        payout_views.PayoutPaypalFileView.as_view(),
        name="payout_paypal",
    ),
    path(
        "payouts/<int:pk>/wise.csv", payout_views.PayoutWiseFileView.as_view(), name="payout_wise"
    ),
    path("settings/webhooks/", settings_views.WebhookListView.as_view(), name="webhooks"),
    path(
        "settings/webhooks/new/", settings_views.WebhookCreateView.as_view(), name="webhook_create"
    ),
    path(
        "settings/webhooks/<int:pk>/",
        settings_views.WebhookUpdateView.as_view(),
        name="webhook_update",
    ),
    path(
        "settings/webhooks/<int:pk>/test/",
        settings_views.WebhookTestView.as_view(),
        name="webhook_test",
    ),
    path(
        "settings/webhooks/<int:pk>/secret/",
        settings_views.WebhookSecretView.as_view(),
        name="webhook_secret",
    ),
    path(
        "settings/webhooks/deliveries/",
        settings_views.DeliveryLogView.as_view(),
        name="webhook_deliveries",
    ),
    path(
        "settings/hosted-forms/", settings_views.HostedFormListView.as_view(), name="hosted_forms"
    ),
    path(
        "settings/hosted-forms/new/",
        settings_views.HostedFormCreateView.as_view(),
        name="hosted_form_create",
    ),
    path(
        "settings/hosted-forms/<int:pk>/",
        settings_views.HostedFormUpdateView.as_view(),
        name="hosted_form_update",
    ),
    path(
        "settings/partner-center/",
        settings_views.WelcomeMessageView.as_view(),
        name="partner_center_settings",
    ),
    path("settings/resources/", settings_views.ResourceListView.as_view(), name="resources"),
    path(
        "settings/resources/new/",
        settings_views.ResourceCreateView.as_view(),
        name="resource_create",
    ),
    path(
        "settings/resources/<int:pk>/",
        settings_views.ResourceUpdateView.as_view(),
        name="resource_update",
    ),
    path(
        "settings/resources/<int:pk>/delete/",
        settings_views.ResourceDeleteView.as_view(),
        name="resource_delete",
    ),
]
