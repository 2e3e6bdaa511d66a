"""The Partner Center, under /partner/ (SPEC §7). No URL names a partner: the login does."""

from django.urls import path

from partners.invitation_views import InvitationView

from . import partner_center as views
from .link_report_views import PartnerLinkReportCsvView, PartnerLinkReportView
from .partner_program_views import ProgramsView, RecruitsView
from .payout_details_views import PayoutDetailsView
from .resource_views import ResourcesView

app_name = "partner"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("invitation/<uidb64>/<token>/", InvitationView.as_view(), name="invitation"),
    path("links/", views.LinksView.as_view(), name="links"),
    path("programs/", ProgramsView.as_view(), name="programs"),
    path("recruits/", RecruitsView.as_view(), name="recruits"),
    path("resources/", ResourcesView.as_view(), name="resources"),
    path("reports/", PartnerLinkReportView.as_view(), name="link_report"),
    path("reports.csv", PartnerLinkReportCsvView.as_view(), name="link_report_csv"),
    path("ledger/", views.LedgerView.as_view(), name="ledger"),
    path("ledger.csv", views.LedgerCsvView.as_view(), name="ledger_csv"),
    path("commissions/", views.CommissionListView.as_view(), name="commissions"),
    path(
        "commissions/<int:pk>/",
        views.CommissionDetailView.as_view(),
        name="commission_detail",
    ),
    path("profile/", views.ProfileView.as_view(), name="profile"),
    path("profile/payout/", PayoutDetailsView.as_view(), name="payout_details"),
    path("profile/password/", views.PasswordChangeView.as_view(), name="password_change"),
]
