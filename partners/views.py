"""Staff pages (SPEC §7): validate with a form, call a service, redirect or re-show.

Every page needs a staff login (anonymous visitors go to the login page, other users get
403). Pages that write also need the model's Django permission, like the admin.
"""

import copy
import csv
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import UserPassesTestMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.module_loading import import_string
from django.utils.text import capfirst
from django.views import View
from django.views.generic import ListView, TemplateView

from referral_program.csv_cells import csv_text, csv_text_read

from . import privacy
from .forms import (
    TABLE_MAX_ROWS,
    ClickFlagReviewForm,
    CouponForm,
    PartnerForm,
    PartnerOverrideTable,
    PreviewRangeForm,
    ProgramForm,
    ReferralDefaultsForm,
    SignupDecisionForm,
    TrackingLinkForm,
    add_service_errors,
    product_rate_table,
    program_edit_form,
    rate_text,
)
from .links import partner_url
from .lockout import IDENTITY_MAX, locked_logins, login_unlock
from .models import (
    DEFAULTS_FIELDS,
    Coupon,
    Partner,
    PartnerStatus,
    Program,
    ReferralDefaults,
    TrackingLink,
    TrackingMethod,
)
from .selectors import (
    HISTORY_SHOWN,
    PRODUCT_RATE_COLUMNS,
    ClickFlagList,
    SignupList,
    click_flags_counts,
    click_flags_list,
    click_flags_open_count,
    default_program,
    defaults_changes_list,
    defaults_get,
    partner_access,
    partner_alone,
    partner_by_code,
    partner_links,
    partner_overrides,
    partners_list,
    program_history,
    program_product_rate_rows,
    programs_count,
    programs_list,
    signups_counts,
    signups_list,
    tracking_links_list,
)
from .services.clicks import click_flags_review
from .services.coupons import coupon_save
from .services.defaults import DefaultsUpdateResult, defaults_update
from .services.links import tracking_link_save
from .services.overrides import partner_overrides_save
from .services.partners import partner_create, partner_update
from .services.privacy import partner_erase, partner_export, partner_is_erased
from .services.programs import (
    RATE_FIELDS,
    product_rate_given,
    program_create,
    program_product_rates_import,
    program_set_product_rates,
    program_update,
)
from .services.signup import SignupDecision, partners_approve, partners_reject

CHANGE_DEFAULTS_PERMISSION = "partners.change_referraldefaults"
PAGE_SIZE = 50


class StaffRequiredMixin(UserPassesTestMixin):
    """Staff only; with `permission_required`, also that permission, for every method.

    `section` names the top menu entry the page belongs to.
    """

    permission_required: str | None = None
    section = ""

    def test_func(self) -> bool:
        user = self.request.user
        if not user.is_staff:
            return False
        return self.permission_required is None or user.has_perm(self.permission_required)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["section"] = self.section
        return context


class StaffFormView(StaffRequiredMixin, View, ABC):
    """GET shows the form; POST validates it and calls `save()`, which calls a service.

    A ValidationError from the service goes onto the form, which is shown again.
    """

    template_name = ""

    def get_object(self) -> Any:
        return None

    @abstractmethod
    def get_form(self, data: Any = None) -> Any:
        """The page's form, bound to `data` on POST."""

    @abstractmethod
    def save(self, form: Any) -> HttpResponse:
        """Call the service with the valid form's data; answer the redirect."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"section": self.section, "object": self.object, **kwargs}

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()
        return render(request, self.template_name, self.get_context_data(form=self.get_form()))

    def post(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                return self.save(form)
            except ValidationError as error:
                add_service_errors(form, error)
        return render(request, self.template_name, self.get_context_data(form=form))


# --- Settings --------------------------------------------------------------------------


class SettingsView(StaffRequiredMixin, TemplateView):
    template_name = "staff/settings/index.html"
    section = "settings"


def defaults_saved_message(result: DefaultsUpdateResult) -> str:
    if not result.changed:
        return "Nothing changed."
    return f"Saved. {result.programs_updated} referral partner program records updated."


class DefaultsView(StaffRequiredMixin, View):
    """CRM > Settings > Referral Partner Defaults. Any staff may look; saving needs the
    change permission."""

    template_name = "staff/settings/defaults.html"
    section = "settings"

    def get(self, request: HttpRequest) -> HttpResponse:
        can_change = request.user.has_perm(CHANGE_DEFAULTS_PERMISSION)
        form = ReferralDefaultsForm(instance=defaults_get(), read_only=not can_change)
        return self.render_page(form, can_change=can_change)

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(CHANGE_DEFAULTS_PERMISSION):
            raise PermissionDenied("You may look at the defaults but not change them.")
        form = ReferralDefaultsForm(request.POST, instance=defaults_get())
        if form.is_valid():
            try:
                result = defaults_update(data=form.cleaned_data, acting_user=request.user)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                level = messages.SUCCESS if result.changed else messages.INFO
                messages.add_message(request, level, defaults_saved_message(result))
                return redirect("staff:defaults")
        return self.render_page(form, can_change=True)

    def render_page(
        self, form: ReferralDefaultsForm, *, can_change: bool, **extra: Any
    ) -> HttpResponse:
        """The page; `extra` is what a preview adds (`preview_form`, the run `preview`)."""
        defaults = defaults_get()
        context = {
            "section": self.section,
            "form": form,
            "can_change": can_change,
            "preview_form": PreviewRangeForm.last_days(today=timezone.now().date()),
            **extra,
            "cookies_only": form["tracking_method"].value() == TrackingMethod.COOKIES_ONLY,
            "example_link": partner_url(
                code="CODE", prefix=defaults.code_prefix, link_url=defaults.link_url
            ),
            "program_count": programs_count(),
        }
        return render(self.request, self.template_name, context)


def _display_value(field: Any, value: Any) -> str:
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "On" if value else "Off"
    if value in ("", None):
        return "(empty)"
    return str(value)


def describe_defaults_changes(changes: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """A DefaultsChange's changes as labelled 'old' and 'new' texts, in the form's order.

    (jsonb keeps no key order, so the order comes from DEFAULTS_FIELDS.)
    """
    fields = {field.name: field for field in ReferralDefaults._meta.get_fields()}
    order = {name: position for position, name in enumerate(DEFAULTS_FIELDS)}
    rows = []
    for name in sorted(changes, key=lambda name: (order.get(name, len(order)), name)):
        values = changes[name]
        field = fields.get(name)
        rows.append(
            {
                "label": capfirst(field.verbose_name) if field is not None else name,
                "old": _display_value(field, values.get("old")),
                "new": _display_value(field, values.get("new")),
            }
        )
    return rows


class DefaultsHistoryView(StaffRequiredMixin, ListView):
    template_name = "staff/settings/defaults_history.html"
    section = "settings"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        return defaults_changes_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = [
            {"change": change, "rows": describe_defaults_changes(change.changes)}
            for change in context["object_list"]
        ]
        return context


# --- Partners -------------------------------------------------------------------------------


def partner_figures(partners: QuerySet[Partner]) -> QuerySet[Partner]:
    """The partners with their figures (click_count, order_count, earned_total, balance),
    by the function settings.PARTNER_FIGURES names (commissions: partners never imports it)."""
    return import_string(settings.PARTNER_FIGURES)(partners)


@dataclass(frozen=True)
class SortColumn:
    key: str  # in ?sort=
    label: str
    field: str
    number: bool  # numbers sort biggest first on the first click


PARTNER_COLUMNS = (
    SortColumn("code", "Code", "code", False),
    SortColumn("name", "Name", "name", False),
    SortColumn("clicks", "Clicks", "click_count", True),
    SortColumn("orders", "Orders", "order_count", True),
    SortColumn("earned", "Earned", "earned_total", True),
    SortColumn("balance", "Balance", "balance", True),
)


def sort_choice(value: str, columns: tuple[SortColumn, ...]) -> tuple[SortColumn, bool]:
    """The column `?sort=` names (`-` first: descending) and whether it is descending; the
    first column, ascending, when it names none."""
    descending = value.startswith("-")
    by_key = {column.key: column for column in columns}
    column = by_key.get(value.removeprefix("-"))
    return (column, descending) if column else (columns[0], False)


def sort_headers(columns: tuple[SortColumn, ...], chosen: SortColumn, descending: bool) -> list:
    """Each column's label, the ?sort= value its header link sets, and its aria-sort."""
    headers = []
    for column in columns:
        if column is chosen:
            next_value = column.key if descending else f"-{column.key}"
            state = "descending" if descending else "ascending"
        else:
            next_value = f"-{column.key}" if column.number else column.key
            state = ""
        headers.append({"column": column, "sort": next_value, "state": state})
    return headers


class PartnerListView(StaffRequiredMixin, ListView):
    """Partners with their all-time figures, searchable, filtered by status, sortable by any
    column (`?sort=earned`, `?sort=-earned`)."""

    template_name = "staff/partners/list.html"
    section = "partners"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        self.sort, self.descending = sort_choice(self.request.GET.get("sort", ""), PARTNER_COLUMNS)
        partners = partners_list()
        query = self.request.GET.get("q", "").strip()
        if query:
            partners = partners.filter(
                Q(code__icontains=query) | Q(name__icontains=query) | Q(email__icontains=query)
            )
        status = self.request.GET.get("status", "")
        if status in PartnerStatus.values:
            partners = partners.filter(status=status)
        field = f"-{self.sort.field}" if self.descending else self.sort.field
        return partner_figures(partners).order_by(field, "code")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            query=self.request.GET.get("q", "").strip(),
            status=self.request.GET.get("status", ""),
            status_choices=PartnerStatus.choices,
            headers=sort_headers(PARTNER_COLUMNS, self.sort, self.descending),
            currency=settings.DEFAULT_CURRENCY,
            **kwargs,
        )


def staff_partner_or_404(code: str) -> Partner:
    """The partner of a staff page's URL (any case), with what the pages show; else 404."""
    return get_object_or_404(partner_by_code(code))


class PartnerDetailView(StaffRequiredMixin, TemplateView):
    template_name = "staff/partners/detail.html"
    section = "partners"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        partner = staff_partner_or_404(self.kwargs["code"])
        return super().get_context_data(
            partner=partner,
            children=partner.children.order_by("code"),
            links=partner_links(partner),
            program=partner.program or default_program(),
            programs=partner.programs.all(),  # by priority, then id
            open_click_flags=click_flags_open_count(partner=partner),
            figures=partner_figures(partner_alone(partner)).get(),
            currency=settings.DEFAULT_CURRENCY,
            coupons=partner.coupons.order_by("code"),
            overrides=partner_overrides(partner),
            coupon_form=kwargs.pop("coupon_form", None) or CouponForm(),
            can_add_coupon=self.request.user.has_perm("partners.add_coupon"),
            access=partner_access(partner),
            invite_days=settings.PARTNER_INVITE_DAYS,
            **kwargs,
        )


class PartnerCouponAddView(StaffRequiredMixin, View):
    """POST: a new coupon of the partner (SPEC §11); errors show on the partner page."""

    permission_required = "partners.add_coupon"

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        form = CouponForm(request.POST)
        if form.is_valid():
            coupon = Coupon(partner=partner, **form.cleaned_data)
            try:
                coupon_save(coupon=coupon)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"Coupon {coupon.code} added.")
                return redirect("staff:partner_detail", code=partner.code)
        view = PartnerDetailView(request=request, kwargs={"code": partner.code})
        return render(
            request, view.template_name, view.get_context_data(coupon_form=form), status=400
        )


class PartnerOverridesView(StaffRequiredMixin, View):
    """The partner's overrides (SPEC §10) as a table: a row per override, "Add a row",
    a "Remove" box per row; saved all or nothing by the overrides service."""

    template_name = "staff/partners/overrides.html"
    section = "partners"
    permission_required = "partners.change_partneroverride"

    def table(self, partner: Partner, data: Any = None) -> PartnerOverrideTable:
        return PartnerOverrideTable(data, queryset=partner_overrides(partner), prefix="overrides")

    def page(self, partner: Partner, table: PartnerOverrideTable, status: int = 200):
        context = {"section": self.section, "partner": partner, "formset": table}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        return self.page(partner, self.table(partner))

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        table = self.table(partner, request.POST)
        if table.is_valid():
            save, delete = table.rows_to_save()
            for override in save:
                override.partner = partner
            try:
                partner_overrides_save(save=save, delete=delete)
            except ValidationError as error:
                table.non_form_errors().extend(error.messages)
            else:
                messages.success(request, f"Overrides of {partner.code} saved.")
                return redirect(f"{reverse('staff:partner_detail', args=[partner.code])}#overrides")
        return self.page(partner, table, status=400)


class PartnerCreateView(StaffFormView):
    template_name = "staff/partners/form.html"
    section = "partners"
    permission_required = "partners.add_partner"

    def get_form(self, data: Any = None) -> PartnerForm:
        return PartnerForm(data)

    def save(self, form: PartnerForm) -> HttpResponse:
        partner = partner_create(data=form.partner_data(), programs=form.programs_changed())
        messages.success(self.request, f"Partner {partner.code} created.")
        return redirect("staff:partner_detail", code=partner.code)


class PartnerUpdateView(StaffFormView):
    template_name = "staff/partners/form.html"
    section = "partners"
    permission_required = "partners.change_partner"

    def get_object(self) -> Partner:
        return staff_partner_or_404(self.kwargs["code"])

    def get_form(self, data: Any = None) -> PartnerForm:
        # The form works on a copy, so a refused save leaves the page's partner as it was.
        return PartnerForm(data, instance=copy.copy(self.object))

    def save(self, form: PartnerForm) -> HttpResponse:
        partner = partner_update(
            partner=self.object, data=form.partner_data(), programs=form.programs_changed()
        )
        messages.success(self.request, f"Partner {partner.code} saved.")
        return redirect("staff:partner_detail", code=partner.code)


# --- Sign-ups ------------------------------------------------------------------------------


def signup_decision_message(action: str, result: SignupDecision) -> str:
    """E.g. "2 partners approved. 1 not approved: email not confirmed yet." """
    done = "approved" if action == "approve" else "rejected"
    parts = [f"{result.decided} partner{'' if result.decided == 1 else 's'} {done}."]
    if result.unconfirmed:
        parts.append(f"{result.unconfirmed} not approved: email not confirmed yet.")
    if result.not_pending:
        waiting = "pending or rejected" if action == "approve" else "pending"
        parts.append(f"{result.not_pending} left as they were: not {waiting}.")
    return " ".join(parts)


class SignupListView(StaffRequiredMixin, ListView):
    """Partners who signed up, by tab; approve or reject them one by one or in bulk.

    Any staff may look; deciding needs the change permission on partners.
    """

    template_name = "staff/signups/list.html"
    section = "signups"
    paginate_by = PAGE_SIZE
    decide_permission = "partners.change_partner"

    @property
    def show(self) -> str:
        show = self.request.GET.get("show", "")
        return show if show in SignupList.ALL else SignupList.REVIEW

    def get_queryset(self):
        return signups_list(show=self.show)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        counts = signups_counts()
        tabs = [
            (SignupList.REVIEW, "Waiting for approval", counts[SignupList.REVIEW]),
            (SignupList.UNCONFIRMED, "Email not confirmed", counts[SignupList.UNCONFIRMED]),
            (SignupList.REJECTED, "Rejected", counts[SignupList.REJECTED]),
        ]
        return super().get_context_data(
            show=self.show,
            tabs=tabs,
            can_decide=self.request.user.has_perm(self.decide_permission),
            decision_form=kwargs.pop("decision_form", None) or SignupDecisionForm(),
            **kwargs,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(self.decide_permission):
            raise PermissionDenied("You may look at sign-ups but not decide on them.")
        form = SignupDecisionForm(request.POST)
        if form.is_valid():
            action, chosen = form.cleaned_data["action"], form.cleaned_data["chosen"]
            actor, at = request.user.get_username(), timezone.now()
            try:
                if action == "approve":
                    result = partners_approve(partners=chosen, actor=actor, at=at)
                else:
                    note = form.cleaned_data["note"]
                    result = partners_reject(partners=chosen, actor=actor, at=at, note=note)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                level = messages.SUCCESS if result.decided else messages.WARNING
                messages.add_message(request, level, signup_decision_message(action, result))
                return redirect(f"{reverse('staff:signups')}?show={self.show}")
        self.object_list = self.get_queryset()
        context = self.get_context_data(decision_form=form)
        return self.render_to_response(context, status=400)


# --- Click volume flags (SPEC §9 "Guards") ------------------------------------------------


class ClickFlagListView(StaffRequiredMixin, ListView):
    """Partners flagged for unusual click volume, open or reviewed, optionally one
    partner's (`?partner=<code>`); mark them reviewed one by one or in bulk.

    Any staff may look; marking needs the change permission on click flags.
    """

    template_name = "staff/click_flags/list.html"
    section = "click_flags"
    paginate_by = PAGE_SIZE
    review_permission = "partners.change_clickflag"

    @property
    def show(self) -> str:
        show = self.request.GET.get("show", "")
        return show if show in ClickFlagList.ALL else ClickFlagList.OPEN

    @property
    def partner(self) -> Partner | None:
        if not hasattr(self, "_partner"):
            code = self.request.GET.get("partner", "").strip()
            self._partner = staff_partner_or_404(code) if code else None
        return self._partner

    def page_url(self, **params: str) -> str:
        query = {"show": self.show, **params}
        if self.partner is not None:
            query["partner"] = self.partner.code
        return f"{reverse('staff:click_flags')}?{urlencode(query)}"

    def get_queryset(self):
        return click_flags_list(show=self.show, partner=self.partner)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        counts = click_flags_counts(partner=self.partner)
        tabs = [
            (self.page_url(show=ClickFlagList.OPEN), ClickFlagList.OPEN, "Open", counts["open"]),
            (
                self.page_url(show=ClickFlagList.REVIEWED),
                ClickFlagList.REVIEWED,
                "Reviewed",
                counts["reviewed"],
            ),
        ]
        return super().get_context_data(
            show=self.show,
            tabs=tabs,
            partner=self.partner,
            action_url=self.page_url(),
            threshold=defaults_get().click_flag_per_hour,
            can_review=self.request.user.has_perm(self.review_permission),
            review_form=kwargs.pop("review_form", None) or ClickFlagReviewForm(),
            **kwargs,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(self.review_permission):
            raise PermissionDenied("You may look at click flags but not mark them reviewed.")
        form = ClickFlagReviewForm(request.POST)
        if form.is_valid():
            try:
                count = click_flags_review(
                    flags=form.cleaned_data["chosen"],
                    actor=request.user.get_username(),
                    at=timezone.now(),
                    note=form.cleaned_data["note"],
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                if count:
                    marked = f"{count} flag{'' if count == 1 else 's'} marked reviewed."
                    messages.success(request, marked)
                else:
                    messages.warning(request, "Nothing to mark: those flags were reviewed before.")
                return redirect(self.page_url())
        self.object_list = self.get_queryset()
        context = self.get_context_data(review_form=form)
        return self.render_to_response(context, status=400)


# --- Programs -------------------------------------------------------------------------------


class ProgramListView(StaffRequiredMixin, ListView):
    template_name = "staff/programs/list.html"
    section = "programs"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        return programs_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        default = default_program()
        return super().get_context_data(
            default_program_id=default.pk if default else None, **kwargs
        )


def _program_rate_rows(program: Program, rates: str = "rates") -> list[dict[str, Any]]:
    return [
        {
            "level": rate.level,
            "paid": rate.level <= program.levels,
            **{name: rate_text(name, getattr(rate, name)) for name in RATE_FIELDS},
        }
        for rate in getattr(program, rates).order_by("level")
    ]


class ProgramDetailView(StaffRequiredMixin, TemplateView):
    template_name = "staff/programs/detail.html"
    section = "programs"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        program = get_object_or_404(Program, pk=self.kwargs["pk"])
        default = default_program()
        return super().get_context_data(
            program=program,
            rate_rows=_program_rate_rows(program),
            renewal_rate_rows=_program_rate_rows(program, "renewal_rates"),
            unused={
                name: rate_text(name, getattr(program, f"unused_{name}")) for name in RATE_FIELDS
            },
            is_default=default is not None and default.pk == program.pk,
            partner_count=program.enrollments.count(),
            product_rate_columns=PRODUCT_RATE_COLUMNS,
            product_rate_rows=program_product_rate_rows(program),
            history=program_history(program.pk),
            history_shown=HISTORY_SHOWN,
            **kwargs,
        )


class ProgramProductRatesExportView(StaffRequiredMixin, View):
    """A program's product rates as CSV (SPEC §10), one line per sku."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        program = get_object_or_404(Program, pk=pk)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="program-{pk}-product-rates.csv"'
        writer = csv.writer(response)
        writer.writerow(PRODUCT_RATE_COLUMNS)
        for row in program_product_rate_rows(program):
            writer.writerow([csv_text(row[0]), *row[1:]])
        return response


class ProgramProductRatesImportView(StaffRequiredMixin, View):
    """Replace a program's product rates with a CSV file (the export's columns); all or
    nothing."""

    permission_required = "partners.change_program"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        program = get_object_or_404(Program, pk=pk)
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationError({"file": "Choose a CSV file."})
            text = upload.read().decode("utf-8-sig")
            rows = [
                {k: csv_text_read(v or "") for k, v in row.items() if k is not None}
                for row in csv.DictReader(io.StringIO(text))
            ]
            count = program_product_rates_import(
                program=program, rows=rows, acting_user=request.user
            )
        except UnicodeDecodeError:
            messages.error(request, "The file is not UTF-8 text.")
        except ValidationError as error:
            for problem in error.messages:
                messages.error(request, problem)
        else:
            messages.success(request, f"{count} product rate(s) imported.")
        return redirect("staff:program_detail", pk=program.pk)


class ProgramProductRatesView(StaffRequiredMixin, View):
    """A program's product rates as a table (SPEC §10): a row per sku, "Add a row", a
    "Remove" box per row; saving replaces them all. Past TABLE_MAX_ROWS skus: the CSV."""

    template_name = "staff/programs/product_rates.html"
    section = "programs"
    permission_required = "partners.change_program"

    def page(self, program: Program, table: Any, rows: list, status: int = 200):
        context = {
            "section": self.section,
            "program": program,
            "formset": table,
            "too_many": len(rows) > TABLE_MAX_ROWS,
            "table_max_rows": TABLE_MAX_ROWS,
        }
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        program = get_object_or_404(Program, pk=pk)
        rows = program_product_rate_rows(program)
        return self.page(program, product_rate_table(program, rows), rows)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        program = get_object_or_404(Program, pk=pk)
        rows = program_product_rate_rows(program)
        if len(rows) > TABLE_MAX_ROWS:  # a table of part of them would drop the rest
            return self.page(program, None, rows, status=400)
        table = product_rate_table(program, rows, request.POST)
        if table.is_valid():
            try:
                program_set_product_rates(
                    program=program,
                    product_rates=[product_rate_given(f.cleaned_data) for f in table.kept_forms()],
                    acting_user=request.user,
                )
            except ValidationError as error:
                table.non_form_errors().extend(error.messages)
            else:
                messages.success(request, f"Product rates of {program.name} saved.")
                return redirect(f"{reverse('staff:program_detail', args=[pk])}#product-rates")
        return self.page(program, table, rows, status=400)


class ProgramCreateView(StaffFormView):
    template_name = "staff/programs/form.html"
    section = "programs"
    permission_required = "partners.add_program"

    def get_form(self, data: Any = None) -> ProgramForm:
        return ProgramForm(data)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(structure=defaults_get(), **kwargs)

    def save(self, form: ProgramForm) -> HttpResponse:
        program = program_create(**form.service_arguments(), acting_user=self.request.user)
        messages.success(self.request, f"Program {program.name} created.")
        return redirect("staff:program_detail", pk=program.pk)


class ProgramUpdateView(StaffFormView):
    template_name = "staff/programs/form.html"
    section = "programs"
    permission_required = "partners.change_program"

    def get_object(self) -> Program:
        return get_object_or_404(Program, pk=self.kwargs["pk"])

    def get_form(self, data: Any = None) -> ProgramForm:
        return program_edit_form(self.object, data)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """With the range of *Preview the effect* (SPEC §13; a preview passes its own)."""
        kwargs.setdefault("preview_form", PreviewRangeForm.last_days(today=timezone.now().date()))
        return super().get_context_data(structure=self.object, **kwargs)

    def save(self, form: ProgramForm) -> HttpResponse:
        program = program_update(
            program=self.object, **form.service_arguments(), acting_user=self.request.user
        )
        messages.success(self.request, f"Program {program.name} saved.")
        return redirect("staff:program_detail", pk=program.pk)


# --- Tracking links ---------------------------------------------------------------------------


class TrackingLinkListView(StaffRequiredMixin, ListView):
    template_name = "staff/tracking_links/list.html"
    section = "tracking_links"
    paginate_by = PAGE_SIZE

    def get_queryset(self):
        return tracking_links_list()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        defaults = defaults_get()
        context = super().get_context_data(**kwargs)
        context["rows"] = [
            {
                "link": link,
                "example": partner_url(
                    code="CODE",
                    prefix=defaults.code_prefix,
                    link_url=defaults.link_url,
                    link_code=link.code,
                ),
            }
            for link in context["object_list"]
        ]
        return context


class TrackingLinkCreateView(StaffFormView):
    template_name = "staff/tracking_links/form.html"
    section = "tracking_links"
    permission_required = "partners.add_trackinglink"

    def get_form(self, data: Any = None) -> TrackingLinkForm:
        return TrackingLinkForm(data)

    def save(self, form: TrackingLinkForm) -> HttpResponse:
        link = tracking_link_save(link=form.instance)
        messages.success(self.request, f"Tracking link {link.code} created.")
        return redirect("staff:tracking_links")


class TrackingLinkUpdateView(StaffFormView):
    template_name = "staff/tracking_links/form.html"
    section = "tracking_links"
    permission_required = "partners.change_trackinglink"

    def get_object(self) -> TrackingLink:
        return get_object_or_404(TrackingLink, pk=self.kwargs["pk"])

    def get_form(self, data: Any = None) -> TrackingLinkForm:
        return TrackingLinkForm(data, instance=copy.copy(self.object))

    def save(self, form: TrackingLinkForm) -> HttpResponse:
        link = tracking_link_save(link=form.instance)
        messages.success(self.request, f"Tracking link {link.code} saved.")
        return redirect("staff:tracking_links")


# --- Personal data (issue 7, docs/privacy.md) -------------------------------------------------


class PartnerExportView(StaffRequiredMixin, View):
    """GET: what the export holds; POST: the JSON download (recorded in the admin history)."""

    template_name = "staff/partners/export.html"
    section = "partners"

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        return render(request, self.template_name, {"section": self.section, "partner": partner})

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        data = partner_export(partner=partner, acting_user=request.user, at=timezone.now())
        return privacy.export_response(data, filename_code=partner.code)


class PartnerEraseView(StaffRequiredMixin, View):
    """GET: what erasing blanks and keeps, and the confirmation form; POST: erase."""

    template_name = "staff/partners/erase.html"
    section = "partners"
    permission_required = privacy.ERASE_PERMISSION

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        return self.render_page(partner, privacy.EraseConfirmForm(partner=partner))

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        form = privacy.EraseConfirmForm(request.POST, partner=partner)
        if not form.is_valid():
            return self.render_page(partner, form)
        erased = partner_erase(partner=partner, acting_user=request.user)
        messages.success(
            request, f"The personal data of partner {code} is erased; they are now {erased.code}."
        )
        return redirect("staff:partner_detail", code=erased.code)

    def render_page(self, partner: Partner, form: privacy.EraseConfirmForm) -> HttpResponse:
        context = {
            "section": self.section,
            "partner": partner,
            "form": form,
            "erased": partner_is_erased(partner),
        }
        return render(self.request, self.template_name, context)


# --- Locked logins --------------------------------------------------------------------------


class LockedLoginListView(StaffRequiredMixin, TemplateView):
    """Settings > Locked logins: the identities locked out after too many failed logins,
    and a button that unlocks one. Any staff may look; unlocking needs the permission to
    delete failed-login records (`axes.delete_accessattempt`)."""

    template_name = "staff/settings/locked_logins.html"
    section = "settings"
    unlock_permission = "axes.delete_accessattempt"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            locked=locked_logins(at=timezone.now()),
            can_unlock=self.request.user.has_perm(self.unlock_permission),
            failure_limit=settings.AXES_FAILURE_LIMIT,
            cooloff_minutes=int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
            **kwargs,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(self.unlock_permission):
            raise PermissionDenied("You may look at locked logins but not unlock them.")
        identity = request.POST.get("identity", "").strip()[:IDENTITY_MAX]
        if identity and login_unlock(identity=identity):
            messages.success(request, f"{identity} may log in again.")
        else:
            messages.warning(request, "Nothing to unlock: that login was not locked.")
        return redirect("staff:locked_logins")
