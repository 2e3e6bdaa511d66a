"""The Django admin (SPEC §7 "Admins").

Every save, import and bulk action goes through `partners.services`: the admin validates
with its forms and calls the service; it never calls `.save()` on a model itself. There
is no deleting in the admin: partners are made inactive, API keys revoked.
"""

import csv
import io
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import ngettext
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV

from . import privacy
from .models import (
    DEFAULTS_FIELDS,
    GUARD_FIELDS,
    LIFECYCLE_FIELDS,
    SIGNUP_FIELDS,
    STRUCTURAL_FIELDS,
    ApiKey,
    ClickFlag,
    Coupon,
    DefaultsChange,
    Partner,
    PartnerOverride,
    PartnerSignup,
    PartnerStatus,
    Program,
    ProgramRate,
    ReferralDefaults,
    RenewalRate,
    TrackingLink,
)
from .resources import PartnerResource
from .services.api_keys import api_keys_revoke
from .services.clicks import click_flags_review
from .services.coupons import coupon_delete, coupon_save, coupons_import
from .services.defaults import defaults_ensure, defaults_update, programs_apply_defaults
from .services.enrollment import partners_enroll, partners_unenroll
from .services.links import tracking_link_save
from .services.overrides import partner_override_delete, partner_override_save
from .services.partners import (
    PARTNER_FIELDS,
    partner_create,
    partner_login_set_password,
    partner_update,
    partners_assign_program,
    partners_set_notifications,
    partners_set_parent,
    partners_set_status,
)
from .services.privacy import partner_erase, partner_erased_code, partner_export
from .services.programs import (
    NOT_GIVEN,
    PROGRAM_FIELDS,
    RATE_FIELDS,
    program_create,
    program_update,
)
from .services.signup import partners_approve, partners_reject
from .views import signup_decision_message

BULK_ACTION_TEMPLATE = "admin/partners/partner/bulk_action.html"
# How many of the selected partners the bulk action page lists by name.
BULK_ACTION_LISTED = 50


def _adopt(obj: Model, saved: Model) -> None:
    """Make the admin's unsaved object the row a service just created (pk, defaults...)."""
    vars(obj).update(vars(saved))


def _form_data(form: forms.BaseForm, names: tuple[str, ...]) -> dict[str, Any]:
    """The cleaned values of the named fields the form has."""
    return {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}


def _updated(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural} updated."


class NoDeleteMixin:
    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyMixin(NoDeleteMixin):
    """Rows listed, never added or edited here; an action may still change them through a
    service for staff who hold the model's change permission (`may_change`)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def may_change(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


# --- Referral Partner Defaults -----------------------------------------------------------


@admin.register(ReferralDefaults)
class ReferralDefaultsAdmin(NoDeleteMixin, admin.ModelAdmin):
    """The singleton. Saving goes through `defaults_update`, which copies the structural
    fields onto every program and keeps a history (DefaultsChange)."""

    list_display = ("__str__", "updated_at")
    fieldsets = (
        ("Partner links", {"fields": ("code_prefix", "earlier_prefixes", "link_url")}),
        (
            "Tracking and attribution",
            {"fields": ("tracking_method", "partner_selection", "use_ip_address")},
        ),
        ("Commissions (saved onto every program)", {"fields": STRUCTURAL_FIELDS}),
        ("Commission lifecycle", {"fields": LIFECYCLE_FIELDS}),
        ("Notifications", {"fields": ("skip_notifications",)}),
        ("Guards", {"fields": GUARD_FIELDS}),
        ("Partner sign-up", {"fields": SIGNUP_FIELDS}),
    )
    readonly_fields = ("earlier_prefixes",)
    autocomplete_fields = ("signup_parent_partner",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ReferralDefaults.objects.exists() and super().has_add_permission(request)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            defaults_ensure()
        data = _form_data(form, DEFAULTS_FIELDS)
        result = defaults_update(data=data, acting_user=request.user)
        if result.changed:
            message = f"Saved. {result.programs_updated} referral partner program records updated."
            self.message_user(request, message, messages.SUCCESS)
        else:
            self.message_user(request, "Nothing changed.", messages.INFO)

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(self._change_url(obj))

    def response_change(self, request, obj):
        if IS_POPUP_VAR in request.POST:
            return super().response_change(request, obj)
        # A settings page: back to the form, with save_model's message only.
        return HttpResponseRedirect(self._change_url(obj))

    def _change_url(self, obj: ReferralDefaults) -> str:
        return reverse("admin:partners_referraldefaults_change", args=[obj.pk])


@admin.register(DefaultsChange)
class DefaultsChangeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The history of defaults saves: read only."""

    list_display = ("at", "actor", "changes_summary", "programs_updated")
    list_filter = ("actor",)
    date_hierarchy = "at"
    fields = ("at", "actor", "user", "changes_summary", "programs_updated")
    readonly_fields = fields

    @admin.display(description="changes")
    def changes_summary(self, change: DefaultsChange) -> str:
        return "; ".join(
            f"{name}: {values.get('old')!r} → {values.get('new')!r}"
            for name, values in change.changes.items()
        )


# --- Programs ------------------------------------------------------------------------------


class ProgramRateInline(admin.TabularInline):
    """The rates per level. The rows are made with the program (levels 1..3); here they
    are only edited."""

    model = ProgramRate
    fields = ("level", *RATE_FIELDS)
    readonly_fields = ("level",)
    extra = 0
    max_num = 3
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Program | None = None) -> bool:
        return False


class RenewalRateInline(admin.TabularInline):
    """What a subscription's renewals earn per level (SPEC §10); none: the program's rates.
    Saved with the program by `program_update` (levels left out pay 0)."""

    model = RenewalRate
    fields = ("level", *RATE_FIELDS)
    extra = 0
    max_num = 3
    verbose_name = "renewal rate"
    verbose_name_plural = "Renewal rates (empty: renewals earn the rates above)"


@admin.register(Program)
class ProgramAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("name", "priority", *STRUCTURAL_FIELDS)
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "notes", "priority", "hold_days", "pays_default", "credit_on")}),
        (
            "Subscription renewals",
            {
                "fields": ("renewal_cycles",),
                "description": "A renewal (cycle 2 and on) is credited to the partners of "
                "the subscription's first order; its rates are the renewal rates below.",
            },
        ),
        (
            "Pay if unused",
            {
                "fields": (
                    "unused_lead_amount",
                    "unused_lead_percent",
                    "unused_sale_amount",
                    "unused_sale_percent",
                ),
                "description": "Paid to the credited partner instead of the level 1 rate "
                "when they have nobody above them (with 'Pay if unused' on in the defaults).",
            },
        ),
        (
            "Structure (follows the Referral Partner Defaults)",
            {"fields": STRUCTURAL_FIELDS},
        ),
    )
    readonly_fields = STRUCTURAL_FIELDS
    inlines = [ProgramRateInline, RenewalRateInline]
    actions = ["apply_defaults"]

    def get_inlines(self, request, obj):
        # A new program gets its rate rows from program_create; they are edited after.
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return  # saved in save_related, with its rates, in one service call
        _adopt(obj, program_create(data=self._program_data(form), acting_user=request.user))

    def save_related(self, request, form, formsets, change):
        if not change:
            return
        changed = [
            rate_form
            for formset in formsets
            for rate_form in formset.forms
            if rate_form.has_changed() and formset.model is ProgramRate
        ]
        rates = [
            {"level": rate_form.instance.level, **_form_data(rate_form, RATE_FIELDS)}
            for rate_form in changed
        ]
        renewal_rates = NOT_GIVEN
        for formset in formsets:
            if formset.model is RenewalRate and formset.has_changed():
                renewal_rates = [
                    _form_data(rate_form, ("level", *RATE_FIELDS))
                    for rate_form in formset.forms
                    if rate_form.cleaned_data and not rate_form.cleaned_data.get("DELETE")
                ] or None
        program_update(
            program=form.instance,
            data=self._program_data(form),
            rates=rates or None,
            renewal_rates=renewal_rates,
            acting_user=request.user,
        )
        for formset in formsets:
            # What formset.save() would have noted, for the admin's change message.
            formset.new_objects, formset.deleted_objects = [], []
            formset.changed_objects = [
                (rate_form.instance, rate_form.changed_data)
                for rate_form in formset.forms
                if rate_form in changed
            ]

    def response_post_save_add(self, request, obj):
        self.message_user(request, "Its rates for levels 1 to 3 are 0: set them below.")
        return HttpResponseRedirect(reverse("admin:partners_program_change", args=[obj.pk]))

    @staticmethod
    def _program_data(form: forms.ModelForm) -> dict[str, Any]:
        return _form_data(form, PROGRAM_FIELDS)

    @admin.action(description="Apply the current Referral Partner Defaults", permissions=["change"])
    def apply_defaults(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        count = programs_apply_defaults(programs=queryset, acting_user=request.user)
        self.message_user(request, _updated(count, "program", "programs"), messages.SUCCESS)


# --- Partners ------------------------------------------------------------------------------


class PartnerAdminForm(forms.ModelForm):
    # Not named `programs`: the admin's checks refuse a many-to-many field with its own
    # table in `fields` (admin.E013), even when the form declares it.
    enrolled_programs = forms.ModelMultipleChoiceField(
        Program.objects.all(),
        required=False,
        initial=[],
        label="Programs",
        help_text="The programs the partner is enrolled in: each order item is paid by the "
        "first (by priority) that covers it. Changing these sets 'Program' to the first.",
    )

    class Meta:
        model = Partner
        fields = PARTNER_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["code"].required = False  # made from the name by partner_create
        else:
            self.fields["enrolled_programs"].initial = list(
                self.instance.enrollments.values_list("program_id", flat=True)
            )

    def programs_changed(self) -> list[Program] | None:
        """The programs chosen, when they were changed (else None: `program` decides)."""
        if "enrolled_programs" not in self.changed_data:
            return None
        return list(self.cleaned_data["enrolled_programs"])


class EnrollProgramForm(forms.Form):
    program = forms.ModelChoiceField(Program.objects.all())


class AssignProgramForm(forms.Form):
    program = forms.ModelChoiceField(
        Program.objects.all(),
        required=False,
        empty_label="No program (they get the default program)",
    )


class SetParentForm(forms.Form):
    parent = forms.CharField(
        label="Parent partner code",
        required=False,
        max_length=32,
        help_text="The code of the partner who recruited them. Empty: no parent.",
    )

    def clean_parent(self) -> Partner | None:
        code = self.cleaned_data["parent"].strip()
        if not code:
            return None
        parent = Partner.objects.by_code(code).first()
        if parent is None:
            raise ValidationError(f"No partner with code {code!r}.")
        return parent


class SetStatusForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(PartnerStatus.ACTIVE, "Active"), (PartnerStatus.INACTIVE, "Inactive")],
        help_text="Sign-ups are approved or rejected with their own actions, which email them.",
    )


class RejectSignupsForm(forms.Form):
    note = forms.CharField(
        label="Note for the email",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: added to the email of the partners you reject.",
    )


SWITCH_CHOICES = [("", "Leave as it is"), ("on", "On"), ("off", "Off")]


def _switch_field(label: str) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=SWITCH_CHOICES,
        coerce=lambda value: value == "on",
        empty_value=None,
        required=False,
    )


class SetNotificationsForm(forms.Form):
    notify_lead = _switch_field("Email on leads")
    notify_sale = _switch_field("Email on sales")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("notify_lead") is None and cleaned.get("notify_sale") is None:
            raise ValidationError("Choose at least one switch to change.")
        return cleaned


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(label="New password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="The same again", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("password1") != cleaned.get("password2"):
            raise ValidationError("The two passwords differ.")
        return cleaned


class PartnerSignupInline(admin.StackedInline):
    """What a partner who signed up told us, and the decision: read only."""

    model = PartnerSignup
    fk_name = "partner"
    fields = (
        "website",
        "promotion",
        "referred_by",
        "ip",
        "user_agent",
        "created_at",
        "email_confirmed_at",
        "decided_at",
        "decided_by",
        "decision_note",
    )
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Partner | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Partner | None = None) -> bool:
        return False


def _set_one_password(data: dict[str, Any], partners: QuerySet[Partner]) -> int:
    if partners.count() != 1:
        raise ValidationError("Choose exactly one partner to set a password for.")
    partner_login_set_password(partner=partners.get(), password=data["password1"])
    return 1


@admin.register(Partner)
class PartnerAdmin(NoDeleteMixin, ImportExportModelAdmin):
    form = PartnerAdminForm
    list_display = (
        "code",
        "name",
        "email",
        "parent",
        "program",
        "status",
        "notify_lead",
        "notify_sale",
    )
    list_filter = ("status", "program")
    search_fields = ("code", "name", "email")
    list_select_related = ("parent", "program")
    autocomplete_fields = ("parent", "program")
    fields = (*PARTNER_FIELDS, "enrolled_programs", "user", "created_at")
    readonly_fields = ("user", "created_at")
    actions = [
        "approve_signups",
        "reject_signups",
        "assign_program",
        "enroll_in_program",
        "remove_from_program",
        "set_parent",
        "set_status",
        "set_notifications",
        "set_password",
        "export_personal_data",
        "erase_personal_data",
    ]
    inlines = [PartnerSignupInline]

    resource_classes = [PartnerResource]
    formats = import_formats = export_formats = [CSV]
    import_template_name = "admin/partners/partner/import.html"

    def save_model(self, request, obj, form, change):
        data = _form_data(form, PARTNER_FIELDS)
        programs = form.programs_changed()
        if change:
            partner_update(partner=obj, data=data, programs=programs)
        else:
            _adopt(obj, partner_create(data=data, programs=programs))

    def has_import_permission(self, request: HttpRequest) -> bool:
        # An import creates and changes partners.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_or_change_permission(request)

    def process_result(self, result, request):
        # The confirm step imports the file again; if the data changed since the preview
        # and a row fails now, the resource rolled the whole file back: say so.
        if result.has_errors() or result.has_validation_errors():
            numbers = sorted(
                {number for number, _ in result.row_errors()}
                | {row.number for row in result.invalid_rows}
            )
            lines = ", ".join(str(number + 1) for number in numbers) or "1"
            self.message_user(
                request,
                f"Nothing was imported: the file has errors on line(s) {lines} (line 1 is the "
                "header). Upload it again to see them.",
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:partners_partner_import"))
        return super().process_result(result, request)

    # Bulk actions: each shows a small form for the selected partners, then calls a service.

    def _bulk_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Partner],
        *,
        form_class: type[forms.Form],
        title: str,
        apply: Callable[[dict[str, Any], QuerySet[Partner]], int],
    ) -> HttpResponse | None:
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                try:
                    count = apply(form.cleaned_data, queryset)
                except ValidationError as error:
                    form.add_error(None, error.messages)
                else:
                    message = _updated(count, "partner", "partners")
                    self.message_user(request, message, messages.SUCCESS)
                    return None
        else:
            form = form_class()
        count = queryset.count()
        listed = list(queryset.order_by("code")[:BULK_ACTION_LISTED])
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "opts": self.model._meta,
            "partner_count": count,
            "partners": listed,
            "more": count - len(listed),
            "action": request.POST.get("action", ""),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, BULK_ACTION_TEMPLATE, context)

    @admin.action(description="Approve selected sign-ups (emails them)", permissions=["change"])
    def approve_signups(self, request, queryset):
        result = partners_approve(
            partners=queryset, actor=request.user.get_username(), at=timezone.now()
        )
        level = messages.SUCCESS if result.decided else messages.WARNING
        self.message_user(request, signup_decision_message("approve", result), level)

    @admin.action(description="Reject selected sign-ups (emails them)", permissions=["change"])
    def reject_signups(self, request, queryset):
        return self._bulk_action(
            request,
            queryset,
            form_class=RejectSignupsForm,
            title="Reject sign-ups",
            apply=lambda data, partners: (
                partners_reject(
                    partners=partners,
                    actor=request.user.get_username(),
                    at=timezone.now(),
                    note=data["note"],
                ).decided
            ),
        )

    @admin.action(description="Assign a program to selected partners", permissions=["change"])
    def assign_program(self, request, queryset):
        return self._bulk_action(
            request,
            queryset,
            form_class=AssignProgramForm,
            title="Assign a program",
            apply=lambda data, partners: partners_assign_program(
                partners=partners, program=data["program"]
            ),
        )

    @admin.action(description="Enroll in program", permissions=["change"])
    def enroll_in_program(self, request, queryset):
        return self._enrollment_action(request, queryset, "Enroll in program", partners_enroll)

    @admin.action(description="Remove from program", permissions=["change"])
    def remove_from_program(self, request, queryset):
        return self._enrollment_action(request, queryset, "Remove from program", partners_unenroll)

    def _enrollment_action(self, request, queryset, title: str, change: Callable[..., int]):
        """Add the selected partners to one program, or remove them from it (SPEC §10)."""
        return self._bulk_action(
            request,
            queryset,
            form_class=EnrollProgramForm,
            title=title,
            apply=lambda data, partners: change(partners=partners, program=data["program"]),
        )

    @admin.action(description="Set the parent of selected partners", permissions=["change"])
    def set_parent(self, request, queryset):
        return self._bulk_action(
            request,
            queryset,
            form_class=SetParentForm,
            title="Set the parent",
            apply=lambda data, partners: partners_set_parent(
                partners=partners, parent=data["parent"]
            ),
        )

    @admin.action(description="Set the status of selected partners", permissions=["change"])
    def set_status(self, request, queryset):
        return self._bulk_action(
            request,
            queryset,
            form_class=SetStatusForm,
            title="Set the status",
            apply=lambda data, partners: partners_set_status(
                partners=partners, status=data["status"]
            ),
        )

    @admin.action(description="Set the email switches of selected partners", permissions=["change"])
    def set_notifications(self, request, queryset):
        return self._bulk_action(
            request,
            queryset,
            form_class=SetNotificationsForm,
            title="Set the email switches",
            apply=lambda data, partners: partners_set_notifications(
                partners=partners,
                notify_lead=data["notify_lead"],
                notify_sale=data["notify_sale"],
            ),
        )

    @admin.action(
        description="Set the Partner Center password (one partner)", permissions=["change"]
    )
    def set_password(self, request, queryset):
        """Staff set or reset a partner's login; the login is made when missing."""
        return self._bulk_action(
            request,
            queryset,
            form_class=SetPasswordForm,
            title="Set the Partner Center password",
            apply=_set_one_password,
        )

    # Personal data (issue 7, docs/privacy.md): one partner at a time, like a data request.

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(privacy.ERASE_PERMISSION)

    def _one_partner(self, request: HttpRequest, queryset: QuerySet[Partner]) -> Partner | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one partner.", messages.ERROR)
            return None
        return queryset.get()

    @admin.action(description="Export the personal data (one partner, JSON)", permissions=["view"])
    def export_personal_data(self, request, queryset):
        partner = self._one_partner(request, queryset)
        if partner is None:
            return None
        data = partner_export(partner=partner, acting_user=request.user, at=timezone.now())
        return privacy.export_response(data, filename_code=partner.code)

    @admin.action(description="Erase the personal data (one partner)", permissions=["erase"])
    def erase_personal_data(self, request, queryset):
        partner = self._one_partner(request, queryset)
        if partner is None:
            return None
        if "apply" in request.POST:
            form = privacy.EraseConfirmForm(request.POST, partner=partner)
            if form.is_valid():
                erased = partner_erase(partner=partner, acting_user=request.user)
                self.message_user(
                    request,
                    f"The personal data of partner {partner.code} is erased; they are now "
                    f"{erased.code}.",
                    messages.SUCCESS,
                )
                return None
        else:
            form = privacy.EraseConfirmForm(partner=partner)
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase the personal data",
            "form": form,
            "opts": self.model._meta,
            "partner": partner,
            "erased_code": partner_erased_code(partner),
            "action": request.POST.get("action", ""),
            "selected": [partner.pk],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/partners/partner/erase.html", context)


# --- Click volume flags (SPEC §9 "Guards") ------------------------------------------------


@admin.register(ClickFlag)
class ClickFlagAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Flags are raised by the `flag_click_volume` task: read only here, but for marking
    them reviewed (the staff's Click flags page also takes a note)."""

    list_display = (
        "partner",
        "window_start",
        "window_end",
        "clicks",
        "threshold",
        "created_at",
        "reviewed_at",
        "reviewed_by",
    )
    list_filter = (("reviewed_at", admin.EmptyFieldListFilter),)
    list_select_related = ("partner",)
    search_fields = ("partner__code", "partner__name")
    date_hierarchy = "window_start"
    fields = (
        "partner",
        "window_start",
        "window_end",
        "clicks",
        "threshold",
        "created_at",
        "reviewed_at",
        "reviewed_by",
        "note",
    )
    readonly_fields = fields
    actions = ["mark_reviewed"]

    def has_review_permission(self, request: HttpRequest) -> bool:
        return self.may_change(request)

    @admin.action(description="Mark selected flags reviewed", permissions=["review"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[ClickFlag]) -> None:
        count = click_flags_review(
            flags=queryset, actor=request.user.get_username(), at=timezone.now()
        )
        message = ngettext(
            "%(count)d flag marked reviewed.", "%(count)d flags marked reviewed.", count
        ) % {"count": count}
        self.message_user(request, message, messages.SUCCESS if count else messages.WARNING)


# --- Tracking links and API keys -----------------------------------------------------------


class TrackingLinkForm(forms.ModelForm):
    class Meta:
        model = TrackingLink
        fields = ("code", "name", "destination", "is_default")

    def validate_constraints(self):
        # The model's one constraint is "one default link"; tracking_link_save keeps it by
        # unsetting the previous default, so making this link the default is no error.
        pass


@admin.register(TrackingLink)
class TrackingLinkAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = TrackingLinkForm
    list_display = ("code", "name", "destination", "is_default")
    list_filter = ("is_default",)
    search_fields = ("code", "name", "destination")

    def save_model(self, request, obj, form, change):
        tracking_link_save(link=obj)


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Keys are made with `manage.py create_api_key` (the key is shown once, there); here
    they are listed and revoked. The key's hash is never shown."""

    list_display = ("name", "prefix", "created_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix")
    fields = ("name", "prefix", "created_at", "created_by", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.may_change(request)

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = api_keys_revoke(keys=queryset)
        message = ngettext("%(count)d key revoked.", "%(count)d keys revoked.", count) % {
            "count": count
        }
        self.message_user(request, message, messages.SUCCESS)


class CouponImportForm(forms.Form):
    file = forms.FileField(
        help_text="A CSV file whose first line names the columns: code, partner (the "
        "partner's code), and optionally active (true / false). A known code (in any case) "
        "is updated, a new one added. If any line is wrong, nothing is imported."
    )


@admin.register(PartnerOverride)
class PartnerOverrideAdmin(admin.ModelAdmin):
    """Partners' own rates for a program at one level (SPEC §10), for a sku or every item."""

    list_display = (
        "partner", "program", "level", "sku", "lead_amount", "lead_percent", "sale_amount",
        "sale_percent",
    )  # fmt: skip
    list_filter = ("program", "level")
    search_fields = ("partner__code", "partner__name", "sku")
    list_select_related = ("partner", "program")
    autocomplete_fields = ("partner", "program")

    def save_model(self, request, obj, form, change):
        partner_override_save(override=obj)

    def delete_model(self, request, obj):
        partner_override_delete(override=obj)

    def delete_queryset(self, request, queryset):
        for override in queryset:
            partner_override_delete(override=override)


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    """Partners' coupon codes (SPEC §11); many at once from the shop's CSV."""

    list_display = ("code", "partner", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("code", "partner__code")
    list_select_related = ("partner",)
    autocomplete_fields = ("partner",)
    change_list_template = "admin/partners/coupon/change_list.html"

    def save_model(self, request, obj, form, change):
        coupon_save(coupon=obj)

    def delete_model(self, request, obj):
        coupon_delete(coupon=obj)

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="partners_coupon_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CouponImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
                rows = list(csv.DictReader(io.StringIO(text)))
                missing = {"code", "partner"} - set(rows[0] if rows else ())
                if missing:
                    columns = ", ".join(sorted(missing))
                    raise ValidationError({"file": f"The first line must name {columns}."})
                added, changed = coupons_import(rows=rows)
            except UnicodeDecodeError:
                form.add_error("file", "The file is not UTF-8 text.")
            except ValidationError as error:
                for messages_ in error.message_dict.values():
                    for message in messages_:
                        form.add_error("file", message)
            else:
                self.message_user(
                    request, f"{added} coupon(s) added, {changed} updated.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:partners_coupon_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import coupons (CSV)",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/partners/coupon/import.html", context)
