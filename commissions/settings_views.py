"""Settings > Webhooks and Settings > Hosted forms (SPEC §9; issue 20), and Settings >
Partner Center and its Resources (SPEC §12): what the admin offered, where a merchant looks
for it. Any staff may look; saving needs the model's add or
change permission, as in the admin; the endpoints' secrets are shown to staff who may view
endpoints. Every write is a service call (`commissions.webhooks`,
`commissions.hosted_forms`, `commissions.webhook_test_event`).
"""

import copy
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View
from django.views.generic import TemplateView

from partners.views import StaffFormView, StaffRequiredMixin

from . import creatives, webhooks
from .creative_forms import ResourceForm, WelcomeMessageForm
from .creative_selectors import banner_path, resources_list, welcome_message
from .hosted_forms import form_html_example, hosted_form_save
from .integration_forms import HostedFormForm, WebhookEndpointForm
from .models import (
    HostedForm,
    Resource,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from .settings_selectors import (
    deliveries_by_pk,
    deliveries_list,
    endpoint_by_pk,
    endpoints_list,
    endpoints_with_counts,
    hosted_forms_list,
)
from .webhook_test_event import webhook_test_send

PAGE_SIZE = 50
VIEW_SECRET_PERMISSION = "commissions.view_webhookendpoint"
CHANGE_ENDPOINT_PERMISSION = "commissions.change_webhookendpoint"
RESEND_PERMISSION = "commissions.change_webhookdelivery"


# --- Webhooks -----------------------------------------------------------------------------


class WebhookListView(StaffRequiredMixin, TemplateView):
    template_name = "staff/settings/webhooks.html"
    section = "settings"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(endpoints=endpoints_with_counts(), **kwargs)


class WebhookFormView(StaffFormView):
    """Add or change an endpoint; the change page also shows its secret (to staff who may
    view endpoints) and the buttons that send a test event and make a new secret."""

    template_name = "staff/settings/webhook_form.html"
    section = "settings"

    def get_object(self) -> WebhookEndpoint | None:
        pk = self.kwargs.get("pk")
        return get_object_or_404(WebhookEndpoint, pk=pk) if pk else None

    def get_form(self, data: Any = None) -> WebhookEndpointForm:
        # A copy: a refused save leaves the page's endpoint as it was.
        return WebhookEndpointForm(data, instance=copy.copy(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        endpoint = self.object
        recent = (
            endpoint.deliveries.order_by("-created_at", "-id")[:5] if endpoint is not None else []
        )
        return super().get_context_data(
            show_secret=self.request.user.has_perm(VIEW_SECRET_PERMISSION),
            recent=recent,
            **kwargs,
        )

    def save(self, form: WebhookEndpointForm) -> HttpResponse:
        data = form.service_data()
        if self.object is None:
            endpoint = webhooks.webhook_endpoint_create(**data)
            messages.success(self.request, f"Webhook endpoint {endpoint.url} added.")
        else:
            endpoint = webhooks.webhook_endpoint_update(endpoint=self.object, data=data)
            messages.success(self.request, f"Webhook endpoint {endpoint.url} saved.")
        return redirect("crm:webhook_update", pk=endpoint.pk)


class WebhookCreateView(WebhookFormView):
    permission_required = "commissions.add_webhookendpoint"


class WebhookUpdateView(WebhookFormView):
    permission_required = CHANGE_ENDPOINT_PERMISSION


class WebhookTestView(StaffRequiredMixin, View):
    """POST: send the endpoint a signed test event now and say how it went."""

    permission_required = CHANGE_ENDPOINT_PERMISSION

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
        delivery = webhook_test_send(endpoint=endpoint)
        last = delivery.log[-1] if delivery.log else {}
        if delivery.status == WebhookDeliveryStatus.DELIVERED:
            messages.success(
                request,
                f"Test event delivered: {endpoint.url} answered {last.get('status')} "
                f"in {last.get('ms')} ms.",
            )
        else:
            problem = last.get("error") or f"HTTP {last.get('status')}"
            messages.error(request, f"The test event was not delivered: {problem}.")
        return redirect("crm:webhook_update", pk=endpoint.pk)


class WebhookSecretView(StaffRequiredMixin, View):
    """POST: make a new random secret (the receiver needs it before the next delivery)."""

    permission_required = CHANGE_ENDPOINT_PERMISSION

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
        webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint)
        messages.success(
            request, "A new secret is made: give it to the receiver, it signs every delivery now."
        )
        return redirect("crm:webhook_update", pk=endpoint.pk)


class DeliveryFilter:
    """The delivery log's choices: one endpoint, and a status (or "troubled": failed or
    being retried)."""

    TROUBLED = "troubled"

    def __init__(self, request: HttpRequest) -> None:
        self.status = request.GET.get("status", "")
        statuses = {*WebhookDeliveryStatus.values, self.TROUBLED}
        if self.status not in statuses:
            self.status = ""
        endpoint = request.GET.get("endpoint", "")
        self.endpoint = endpoint_by_pk(endpoint)

    def apply(self, deliveries: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
        if self.endpoint is not None:
            deliveries = deliveries.filter(endpoint=self.endpoint)
        if self.status == self.TROUBLED:
            return deliveries.filter(
                Q(status=WebhookDeliveryStatus.FAILED)
                | Q(status=WebhookDeliveryStatus.PENDING, attempts__gt=0)
            )
        return deliveries.filter(status=self.status) if self.status else deliveries

    def query(self, **changes: str) -> str:
        values = {"endpoint": str(self.endpoint.pk) if self.endpoint else "", "status": self.status}
        values.update(changes)
        return urlencode({name: value for name, value in values.items() if value})


class DeliveryLogView(StaffRequiredMixin, View):
    """Every delivery with its attempts, newest first; failed ones can be sent again."""

    template_name = "staff/settings/webhook_deliveries.html"
    section = "settings"

    def get(self, request: HttpRequest) -> HttpResponse:
        chosen = DeliveryFilter(request)
        deliveries = chosen.apply(deliveries_list())
        page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
        statuses = [("", "All"), (DeliveryFilter.TROUBLED, "Failed or retrying")]
        statuses += list(WebhookDeliveryStatus.choices)
        context = {
            "section": self.section,
            "page_obj": page,
            "paginator": page.paginator,
            "chosen": chosen,
            "status_links": [
                (value, label, chosen.query(status=value)) for value, label in statuses
            ],
            "endpoints": endpoints_list(),
            "can_resend": request.user.has_perm(RESEND_PERMISSION),
            "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS,
        }
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(RESEND_PERMISSION):
            raise PermissionDenied("You may look at the deliveries but not send them again.")
        ids = [value for value in request.POST.getlist("delivery") if value.isdigit()]
        count = webhooks.webhook_deliveries_resend(deliveries=deliveries_by_pk(ids))
        if count:
            messages.success(
                request, f"{count} deliver{'y' if count == 1 else 'ies'} queued again."
            )
        else:
            messages.warning(request, "Nothing to send again: those were delivered.")
        return redirect(f"{reverse('crm:webhook_deliveries')}?{DeliveryFilter(request).query()}")


# --- Hosted forms ----------------------------------------------------------------------------


class HostedFormListView(StaffRequiredMixin, TemplateView):
    template_name = "staff/settings/hosted_forms.html"
    section = "settings"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            forms=hosted_forms_list(), site_url=settings.SITE_URL, **kwargs
        )


class HostedFormFormView(StaffFormView):
    template_name = "staff/settings/hosted_form_form.html"
    section = "settings"

    def get_object(self) -> HostedForm | None:
        pk = self.kwargs.get("pk")
        return get_object_or_404(HostedForm, pk=pk) if pk else None

    def get_form(self, data: Any = None) -> HostedFormForm:
        return HostedFormForm(data, instance=copy.copy(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        hosted_form = self.object
        return super().get_context_data(
            post_address=f"{settings.SITE_URL}/f/{hosted_form.code}/" if hosted_form else "",
            html_example=form_html_example(hosted_form) if hosted_form else "",
            **kwargs,
        )

    def save(self, form: HostedFormForm) -> HttpResponse:
        hosted_form = hosted_form_save(hosted_form=form.instance)
        messages.success(self.request, f"Hosted form {hosted_form.code} saved.")
        return redirect("crm:hosted_form_update", pk=hosted_form.pk)


class HostedFormCreateView(HostedFormFormView):
    permission_required = "commissions.add_hostedform"


class HostedFormUpdateView(HostedFormFormView):
    permission_required = "commissions.change_hostedform"


# --- Partner Center: the welcome message and the resources (SPEC §12) ------------------------


class WelcomeMessageView(StaffFormView):
    """The welcome message every partner reads on their Partner Center home."""

    template_name = "staff/settings/partner_center.html"
    section = "settings"
    permission_required = "commissions.change_partnercentersettings"

    def get_form(self, data: Any = None) -> WelcomeMessageForm:
        return WelcomeMessageForm(data, initial={"welcome_message": welcome_message()})

    def save(self, form: WelcomeMessageForm) -> HttpResponse:
        changed = creatives.welcome_message_update(
            text=form.cleaned_data["welcome_message"], acting_user=self.request.user
        )
        if changed:
            messages.success(self.request, "The welcome message is saved.")
        else:
            messages.info(self.request, "Nothing changed.")
        return redirect("crm:partner_center_settings")


class ResourceListView(StaffRequiredMixin, TemplateView):
    """Every banner and text partners are given, in the order they see them."""

    template_name = "staff/settings/resources.html"
    section = "settings"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        resources = [
            {"resource": r, "image_path": banner_path(r) if r.image else ""}
            for r in resources_list()
        ]
        return super().get_context_data(resources=resources, **kwargs)


class ResourceFormView(StaffFormView):
    template_name = "staff/settings/resource_form.html"
    section = "settings"

    def get_object(self) -> Resource | None:
        pk = self.kwargs.get("pk")
        return get_object_or_404(Resource, pk=pk) if pk else None

    def get_form(self, data: Any = None) -> ResourceForm:
        files = self.request.FILES if data is not None else None
        # A copy: a refused save leaves the page's resource as it was.
        return ResourceForm(data, files, instance=copy.copy(self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        resource = self.object
        image_path = banner_path(resource) if resource is not None and resource.image else ""
        return super().get_context_data(image_path=image_path, **kwargs)

    def save(self, form: ResourceForm) -> HttpResponse:
        data = form.service_data()
        if self.object is None:
            resource = creatives.resource_create(data=data, image=form.banner)
            messages.success(self.request, f"Resource “{resource.title}” added.")
        else:
            resource = creatives.resource_update(resource=self.object, data=data, image=form.banner)
            messages.success(self.request, f"Resource “{resource.title}” saved.")
        return redirect("crm:resources")


class ResourceCreateView(ResourceFormView):
    permission_required = "commissions.add_resource"


class ResourceUpdateView(ResourceFormView):
    permission_required = "commissions.change_resource"


class ResourceDeleteView(StaffRequiredMixin, TemplateView):
    """GET asks; POST deletes the resource and its image."""

    template_name = "staff/settings/resource_delete.html"
    section = "settings"
    permission_required = "commissions.delete_resource"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        resource = get_object_or_404(Resource, pk=self.kwargs["pk"])
        return super().get_context_data(object=resource, **kwargs)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        resource = get_object_or_404(Resource, pk=pk)
        creatives.resource_delete(resource=resource)
        messages.success(request, f"Resource “{resource.title}” deleted.")
        return redirect("crm:resources")
