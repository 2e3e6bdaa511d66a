"""Staff pages, under the "staff" namespace; "/" leads to the staff home (the dashboard,
`crm:dashboard`, in commissions: it shows the ledger's figures)."""

from django.urls import path
from django.views.generic import RedirectView

from . import access_views, api_key_views, views

app_name = "staff"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="crm:dashboard", permanent=False), name="root"),
    path("staff/settings/", views.SettingsView.as_view(), name="settings"),
    path(
        "staff/settings/locked-logins/",
        views.LockedLoginListView.as_view(),
        name="locked_logins",
    ),
    path(
        "staff/settings/referral-partner-defaults/",
        views.DefaultsView.as_view(),
        name="defaults",
    ),
    path(
        "staff/settings/referral-partner-defaults/history/",
        views.DefaultsHistoryView.as_view(),
        name="defaults_history",
    ),
    path("staff/settings/api-keys/", api_key_views.ApiKeyListView.as_view(), name="api_keys"),
    path(
        "staff/settings/api-keys/<int:pk>/revoke/",
        api_key_views.ApiKeyRevokeView.as_view(),
        name="api_key_revoke",
    ),
    path("staff/partners/", views.PartnerListView.as_view(), name="partners"),
    # "new" cannot be a partner code: codes have at least 4 characters.
    path("staff/partners/new/", views.PartnerCreateView.as_view(), name="partner_create"),
    path("staff/partners/<str:code>/", views.PartnerDetailView.as_view(), name="partner_detail"),
    path(
        "staff/partners/<str:code>/coupons/",
        views.PartnerCouponAddView.as_view(),
        name="partner_coupon_add",
    ),
    path(
        "staff/partners/<str:code>/rates/",
        views.PartnerOverridesView.as_view(),
        name="partner_overrides",
    ),
    path(
        "staff/partners/<str:code>/invite/",
        access_views.PartnerInviteView.as_view(),
        name="partner_invite",
    ),
    path(
        "staff/partners/<str:code>/revoke-access/",
        access_views.PartnerAccessRevokeView.as_view(),
        name="partner_access_revoke",
    ),
    path(
        "staff/partners/<str:code>/edit/",
        views.PartnerUpdateView.as_view(),
        name="partner_update",
    ),
    path(
        "staff/partners/<str:code>/export/",
        views.PartnerExportView.as_view(),
        name="partner_export",
    ),
    path(
        "staff/partners/<str:code>/erase/", views.PartnerEraseView.as_view(), name="partner_erase"
    ),
    path("staff/signups/", views.SignupListView.as_view(), name="signups"),
    path("staff/click-flags/", views.ClickFlagListView.as_view(), name="click_flags"),
    path("staff/programs/", views.ProgramListView.as_view(), name="programs"),
    path("staff/programs/new/", views.ProgramCreateView.as_view(), name="program_create"),
    path("staff/programs/<int:pk>/", views.ProgramDetailView.as_view(), name="program_detail"),
    path("staff/programs/<int:pk>/edit/", views.ProgramUpdateView.as_view(), name="program_update"),
    path(
        "staff/programs/<int:pk>/product-rates/",
        views.ProgramProductRatesView.as_view(),
        name="program_product_rates",
    ),
    path(
        "staff/programs/<int:pk>/product-rates.csv",
        views.ProgramProductRatesExportView.as_view(),
        name="program_product_rates_export",
    ),
    path(
        "staff/programs/<int:pk>/product-rates/import/",
        views.ProgramProductRatesImportView.as_view(),
        name="program_product_rates_import",
    ),
    path("staff/tracking-links/", views.TrackingLinkListView.as_view(), name="tracking_links"),
    path(
        "staff/tracking-links/new/",
        views.TrackingLinkCreateView.as_view(),
        name="tracking_link_create",
    ),
    path(
        "staff/tracking-links/<int:pk>/edit/",
        views.TrackingLinkUpdateView.as_view(),
        name="tracking_link_update",
    ),
]
