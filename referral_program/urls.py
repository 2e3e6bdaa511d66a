from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from commissions.resource_views import banner_image

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("partners.urls")),
    path("staff/", include("commissions.staff_urls")),
    path("go/", include("partners.tracker_urls")),
    path("f/", include("commissions.hosted_form_urls")),
    path("partner/signup/", include("partners.signup_urls")),
    path("partner/", include("commissions.partner_urls")),
    # Banners' images: public, partners put them on their own sites (SPEC §12).
    path("media/banners/<str:name>", banner_image, name="banner_image"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("referral_program.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs' script is served from /api/docs/?script= (no inline script: CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]


def not_found(request, exception):
    """Under /api/, a path no route matches answers JSON like the API's own 404s (its
    schema documents JSON); elsewhere, Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found
