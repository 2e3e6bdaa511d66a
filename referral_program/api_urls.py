"""The JSON API (SPEC §6), one router for both apps."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()

urlpatterns = [
    *router.urls,
]
