"""The Django admin for the engine's records: mostly read-only, writes through services.

Commissions, orders and events are the ledger's evidence: they are never edited or deleted
here. Staff add manual referral history entries (source "manual") through
`commissions.services.contacts.referral_add_manual`.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from partners.models import Partner, PartnerStatus

from . import creatives, lifecycle, webhooks
from .creative_forms import ResourceForm
from .creative_selectors import banner_path
from .hosted_forms import form_html_example, hosted_form_save
from .integration_forms import HostedFormForm, WebhookEndpointForm
from .models import (
    Commission,
    Contact,
    Event,
    HostedForm,
    Lead,
    Notification,
    Order,
    PartnerCenterSettings,
    PayoutDetails,
    PayoutDetailsChange,
    Referral,
    Resource,
    WebhookDelivery,
    WebhookEndpoint,
)
from .payout_details import masked
from .services.contacts import referral_add_manual


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReferralInline(admin.TabularInline):
    model = Referral
    fields = ("partner", "source", "set_at", "expires_at", "click_id", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("email", "first_name", "last_name", "lead_partner", "created_at")
    search_fields = ("email", "first_name", "last_name")
    list_select_related = ("lead_partner",)
    readonly_fields = (
        "email",
        "first_name",
        "last_name",
        "lead_partner",
        "lead_partner_set_at",
        "lead_trace",
        "created_at",
    )
    inlines = [ReferralInline]

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff


class ManualReferralForm(forms.ModelForm):
    """A referral by phone or email: the contact by email, an active partner."""

    email = forms.EmailField(help_text="The contact's email; a new contact is made if needed.")
    partner = forms.ModelChoiceField(queryset=Partner.objects.filter(status=PartnerStatus.ACTIVE))
    referred_at = forms.DateTimeField(required=False, help_text="When it happened; empty: now.")

    class Meta:
        model = Referral
        fields = ("partner",)


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ("contact", "partner", "source", "set_at", "expires_at", "created_by")
    list_filter = ("source",)
    search_fields = ("contact__email", "partner__code")
    list_select_related = ("contact", "partner")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ManualReferralForm
            kwargs["fields"] = ("email", "partner", "referred_at")
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("email", "partner", "referred_at")
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "contact",
            "partner",
            "source",
            "click_id",
            "set_at",
            "expires_at",
            "created_by",
            "created_at",
        )

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        try:
            saved = referral_add_manual(
                email=form.cleaned_data["email"],
                partner=form.cleaned_data["partner"],
                at=form.cleaned_data.get("referred_at"),
                created_by=request.user.get_username(),
            )
        except ValidationError as error:  # the partner went inactive meanwhile
            raise ValidationError(error.messages) from error
        vars(obj).update(vars(saved))


class CommissionInline(admin.TabularInline):
    model = Commission
    fk_name = "order"
    fields = ("partner", "level", "kind", "entry", "base", "amount", "currency", "trace")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "order_id",
        "contact",
        "base",
        "total",
        "refunded",
        "currency",
        "lead_partner",
        "sale_partner",
        "occurred_at",
    )
    search_fields = ("order_id", "contact__email")
    list_select_related = ("contact", "lead_partner", "sale_partner")
    date_hierarchy = "occurred_at"
    inlines = [CommissionInline]


@admin.register(Commission)
class CommissionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "partner",
        "order",
        "level",
        "kind",
        "entry",
        "amount",
        "currency",
        "occurred_at",
    )
    list_filter = ("kind", "entry", "level")
    search_fields = ("partner__code", "order__order_id")
    list_select_related = ("partner", "order")
    date_hierarchy = "occurred_at"
    actions = ("approve_early", "reject_selected")

    def has_review_permission(self, request: HttpRequest) -> bool:
        """Approving or rejecting needs the change right (the lines stay read-only here)."""
        return request.user.has_perm("commissions.change_commission")

    @admin.action(
        description="Approve the selected pending commissions now", permissions=["review"]
    )
    def approve_early(self, request: HttpRequest, queryset) -> None:
        count = lifecycle.commissions_approve(
            ids=queryset.values_list("pk", flat=True), by=request.user.get_username()
        )
        if count:
            self.message_user(
                request,
                f"{count} pending commission{pluralize(count)} approved: payable now.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                "Nothing approved: only pending commissions can be approved.",
                messages.WARNING,
            )

    @admin.action(
        description="Reject the selected commissions (asks the reason)", permissions=["review"]
    )
    def reject_selected(self, request: HttpRequest, queryset):
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            try:
                rejected = lifecycle.commissions_reject(
                    ids=queryset.values_list("pk", flat=True),
                    reason=form.cleaned_data["reason"],
                    by=request.user.get_username(),
                )
            except ValidationError as error:
                form.add_error(None, error.messages)
            else:
                count = len(rejected)
                self.message_user(
                    request,
                    f"{count} commission{pluralize(count)} rejected; the partner is told.",
                    messages.SUCCESS,
                )
                return None
        lines = list(queryset.select_related("partner", "order").order_by("pk")[:50])
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject commissions",
            "form": form,
            "opts": self.model._meta,
            "count": queryset.count(),
            "lines": lines,
            "more": queryset.count() - len(lines),
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/commissions/commission/reject.html", context)


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=500, help_text="Why the commissions are rejected; the partners see it."
    )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "kind", "occurred_at", "received_at")
    list_filter = ("kind",)
    search_fields = ("event_id",)


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ("contact", "form", "partner", "occurred_at")
    list_select_related = ("contact", "partner")
    search_fields = ("contact__email", "partner__code")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("partner", "kind", "status", "reason", "created_at", "sent_at")
    list_filter = ("status", "kind")
    list_select_related = ("partner",)


# --- Integration kit (SPEC §9): hosted forms, webhook endpoints, the delivery log ----------


class NoDeleteAdmin(admin.ModelAdmin):
    """Turned off, never deleted: pages and receivers may still point at them."""

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(HostedForm)
class HostedFormAdmin(NoDeleteAdmin):
    """Forms the merchant's pages post to at /f/<code>/; see docs/integration.md."""

    form = HostedFormForm
    list_display = ("code", "name", "is_active", "thank_you_url", "post_address")
    list_filter = ("is_active",)
    search_fields = ("code", "name")
    readonly_fields = ("post_address", "html_example", "created_at")

    @admin.display(description="Posts to")
    def post_address(self, obj: HostedForm) -> str:
        return f"{settings.SITE_URL}/f/{obj.code}/" if obj.code else "-"

    @admin.display(description="HTML for the merchant's page")
    def html_example(self, obj: HostedForm) -> str:
        if not obj.pk:
            return "Shown once the form is saved."
        return format_html("<pre>{}</pre>", form_html_example(obj))

    def save_model(self, request, obj, form, change):
        hosted_form_save(hosted_form=obj)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(NoDeleteAdmin):
    """The merchant's receivers of signed ledger events; their deliveries are logged."""

    form = WebhookEndpointForm
    list_display = ("url", "description", "event_list", "is_active", "delivery_log")
    list_filter = ("is_active",)
    readonly_fields = ("signing_secret", "created_at")
    actions = ("rotate_secret",)

    @admin.display(description="Events")
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    @admin.display(description="Secret in use")
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        return obj.secret or "Made when the endpoint is saved."

    @admin.display(description="Deliveries")
    def delivery_log(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:commissions_webhookdelivery_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">log</a>', url, obj.pk)

    def save_model(self, request, obj, form, change):
        data = form.service_data()
        if change:
            webhooks.webhook_endpoint_update(endpoint=obj, data=data)
        else:
            vars(obj).update(vars(webhooks.webhook_endpoint_create(**data)))

    @admin.action(
        description="Make a new secret for the selected endpoints", permissions=["change"]
    )
    def rotate_secret(self, request: HttpRequest, queryset) -> None:
        for endpoint in queryset:
            webhooks.webhook_endpoint_rotate_secret(endpoint=endpoint)
            self.message_user(request, f"{endpoint}: the new secret is {endpoint.secret}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: each event for each endpoint, with every attempt."""

    list_display = (
        "created_at",
        "event_type",
        "subject_id",
        "endpoint",
        "status",
        "attempts",
        "delivered_at",
        "next_attempt_at",
    )
    list_filter = ("status", "event_type", "endpoint")
    list_select_related = ("endpoint",)
    search_fields = ("uid",)
    date_hierarchy = "created_at"
    fields = (
        "uid",
        "endpoint",
        "event_type",
        "subject_id",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "attempt_log",
        "body",
    )
    readonly_fields = fields
    actions = ("resend",)

    @admin.display(description="Attempts")
    def attempt_log(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.log, indent=2))

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("commissions.change_webhookdelivery")

    @admin.action(description="Send the selected deliveries again now", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset) -> None:
        count = webhooks.webhook_deliveries_resend(deliveries=queryset)
        self.message_user(request, f"{count} queued again (delivered ones are not re-sent).")


# --- Payout details (SPEC §11): masked, read-only ------------------------------------------


@admin.register(PayoutDetails)
class PayoutDetailsAdmin(admin.ModelAdmin):
    """Masked: the full numbers appear only in the payout files. Partners change their own
    details in the Partner Center (each change logged and emailed), never here."""

    list_display = ("partner", "method", "masked_details", "country", "updated_at")
    list_filter = ("method",)
    search_fields = ("partner__code", "partner__name")
    fields = ("partner", "method", "masked_details", "country", "updated_at")
    readonly_fields = fields

    @admin.display(description="details (masked)")
    def masked_details(self, obj: PayoutDetails) -> str:
        return masked(obj).summary

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PayoutDetailsChange)
class PayoutDetailsChangeAdmin(admin.ModelAdmin):
    list_display = ("partner", "changed_at", "changed_by", "fields", "summary")
    search_fields = ("partner__code", "changed_by")
    readonly_fields = ("partner", "changed_at", "changed_by", "method", "fields", "summary")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PartnerCenterSettings)
class PartnerCenterSettingsAdmin(admin.ModelAdmin):
    """The Partner Center's welcome message (one row); also on Settings > Partner Center."""

    fields = ("welcome_message", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not PartnerCenterSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        creatives.welcome_message_update(text=obj.welcome_message, acting_user=request.user)
        obj.pk = 1


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    """Banners and texts partners share (SPEC §12); also on Settings > Partner resources.
    The image is checked as on the staff page (`creatives.banner_image_check`)."""

    form = ResourceForm
    list_display = ("title", "kind", "position", "image_type", "updated_at")
    list_filter = ("kind",)
    search_fields = ("title", "text")
    readonly_fields = ("current_image", "created_at", "updated_at")

    @admin.display(description="Current image")
    def current_image(self, obj: Resource) -> str:
        if not obj.image:
            return "-"
        return format_html(
            '<img src="{}" alt="{}" style="max-width: 300px"> {} x {}',
            banner_path(obj),
            obj.alt_text,
            obj.width,
            obj.height,
        )

    def save_model(self, request, obj, form, change):
        data = form.service_data()
        if change:
            creatives.resource_update(resource=obj, data=data, image=form.banner)
            return
        created = creatives.resource_create(data=data, image=form.banner)
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if k != "_state"})
        obj._state.adding = False

    def delete_model(self, request, obj):
        creatives.resource_delete(resource=obj)

    def delete_queryset(self, request, queryset):
        for resource in queryset:
            creatives.resource_delete(resource=resource)
