"""Settings > API keys (SPEC §6; issue 20): the keys of the events API, made and revoked by
staff. A new key is shown once, on the page that answers its creation (never stored, never
in a URL); only its SHA-256 is kept, as with `manage.py create_api_key`. Any staff may look;
making a key needs the add permission on API keys, revoking the change permission.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from .forms import add_service_errors
from .models import ApiKey
from .services.api_keys import api_key_create, api_keys_revoke
from .views import StaffRequiredMixin

ADD_PERMISSION = "partners.add_apikey"
REVOKE_PERMISSION = "partners.change_apikey"


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What uses the key, e.g. “shop” or “CRM sync”: it is listed by this name.",
    )


class ApiKeyListView(StaffRequiredMixin, View):
    template_name = "staff/settings/api_keys.html"
    section = "settings"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render_page(ApiKeyForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(ADD_PERMISSION):
            raise PermissionDenied("You may look at the API keys but not make one.")
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, raw_key = api_key_create(
                    name=form.cleaned_data["name"], created_by=request.user
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                response = self.render_page(ApiKeyForm(), new_key=key, raw_key=raw_key)
                response["Cache-Control"] = "no-store"  # the key is on this page only
                return response
        return self.render_page(form)

    def render_page(self, form: ApiKeyForm, **extra: Any) -> HttpResponse:
        context = {
            "section": self.section,
            "form": form,
            "keys": ApiKey.objects.select_related("created_by").order_by(
                "revoked_at", "-created_at"
            ),
            "can_add": self.request.user.has_perm(ADD_PERMISSION),
            "can_revoke": self.request.user.has_perm(REVOKE_PERMISSION),
            **extra,
        }
        return render(self.request, self.template_name, context)


class ApiKeyRevokeView(StaffRequiredMixin, View):
    """POST: revoke one key; requests with it are refused (401) from then on."""

    permission_required = REVOKE_PERMISSION

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = get_object_or_404(ApiKey, pk=pk)
        if api_keys_revoke(keys=ApiKey.objects.filter(pk=key.pk)):
            messages.success(request, f"API key {key.name} ({key.prefix}…) revoked.")
        else:
            messages.info(request, f"API key {key.name} was revoked before.")
        return redirect("staff:api_keys")
