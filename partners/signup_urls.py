"""The public partner sign-up, under /partner/signup/ ("signup" namespace)."""

from django.urls import path

from . import signup_views as views

app_name = "signup"

urlpatterns = [
    path("", views.SignupView.as_view(), name="form"),
    path("done/", views.SignupDoneView.as_view(), name="done"),
    path("confirm/<str:token>/", views.SignupConfirmView.as_view(), name="confirm"),
]
