"""Hosted web forms, under /f/ (SPEC §9)."""

from django.urls import path

from . import hosted_form_views

urlpatterns = [
    path("<str:code>/", hosted_form_views.hosted_form_post, name="hosted-form"),
    path("<str:code>/thanks/", hosted_form_views.hosted_form_thanks, name="hosted-form-thanks"),
]
