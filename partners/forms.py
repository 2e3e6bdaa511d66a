"""Staff forms and the public sign-up form. They only validate: the views hand the cleaned
data to partners.services."""

import copy
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst

from referral_program.dates import DateInput, DayField

from .models import (
    DEFAULTS_FIELDS,
    LEVELS,
    ZERO,
    ClickFlag,
    Coupon,
    CreditOn,
    Partner,
    PartnerOverride,
    ProductRate,
    Program,
    ProgramRate,
    ReferralDefaults,
    RenewalRate,
    SignupParent,
    TrackingLink,
)
from .selectors import PRODUCT_RATE_COLUMNS, PRODUCT_RATE_NAMES
from .services.partners import PARTNER_FIELDS
from .services.programs import PROGRAM_FIELDS, RATE_FIELDS
from .validators import http_url_validator

UNUSED_RATE_FIELDS = tuple(name for name in PROGRAM_FIELDS if name.startswith("unused_"))


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on the field it names, else on top."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def plain_decimal(value: Decimal | None) -> str:
    """12.5000 -> '12.5', 20.0000 -> '20': how people write percentages."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def rate_text(name: str, value: Decimal | None) -> str:
    """A rate as shown and edited: percentages plain, amounts with their cents (5.50)."""
    if value is None:
        return ""
    return plain_decimal(value) if name.endswith("percent") else format(value, "f")


def rate_form_field(model_field: Any, label: str) -> forms.DecimalField:
    """An optional rate input (empty means 0) with the model's bounds: amounts >= 0,
    percentages 0 to 100, and the model's decimal places."""
    percent = model_field.name.endswith("percent")
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=ZERO,
        max_value=Decimal("100") if percent else None,
        max_digits=model_field.max_digits,
        decimal_places=model_field.decimal_places,
    )


@dataclass(frozen=True)
class Choices:
    """Checkboxes shown as one question: a legend, then each box with a short label (its
    field's own label stays for the admin and the history)."""

    legend: str
    labels: dict[str, str]  # field name -> short label


@dataclass(frozen=True)
class BoundChoices:
    legend: str
    name: str  # for the page's ids: the first field's name
    fields: list[forms.BoundField]
    is_group: bool = True

    @property
    def errors(self) -> list[str]:
        return [error for field in self.fields for error in field.errors]


class FieldsetsMixin:
    """`fieldsets = ((title, (field names or Choices...)), ...)`; templates loop over
    `form.fieldset_list`, whose items are bound fields or `BoundChoices`."""

    fieldsets: tuple[tuple[str, tuple[str | Choices, ...]], ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The page's order, so that the error summary lists the errors as the page shows them.
        self.order_fields(
            [
                name
                for _, items in self.fieldsets
                for item in items
                for name in ([item] if isinstance(item, str) else item.labels)
            ]
        )

    def _fieldset_item(self, item: str | Choices) -> forms.BoundField | BoundChoices:
        if isinstance(item, str):
            return self[item]
        fields = []
        for name, label in item.labels.items():
            field = self[name]
            field.label = label
            fields.append(field)
        return BoundChoices(legend=item.legend, name=fields[0].name, fields=fields)

    @property
    def fieldset_list(self) -> list[tuple[str, list[forms.BoundField | BoundChoices]]]:
        return [(title, [self._fieldset_item(i) for i in items]) for title, items in self.fieldsets]


class PartnerByCodeField(forms.CharField):
    """A partner named by code, without regard to case."""

    def clean(self, value: Any) -> Partner | None:
        code = super().clean(value)
        if not code:
            return None
        partner = Partner.objects.by_code(code).first()
        if partner is None:
            raise ValidationError(
                "No partner has the code %(code)s.", code="unknown", params={"code": code}
            )
        return partner


class ReferralDefaultsForm(FieldsetsMixin, forms.ModelForm):
    """CRM > Settings > Referral Partner Defaults (SPEC §2), grouped like Keap's page."""

    fieldsets = (
        ("Referral partner links", ("code_prefix", "link_url")),
        ("Notifications", ("skip_notifications",)),
        ("Tracking", ("partner_selection", "tracking_method", "use_ip_address")),
        (
            "Payouts",
            (
                "levels",
                Choices(
                    "Pay commissions on",
                    {"payout_on_lead": "Leads", "payout_on_sale": "Sales"},
                ),
                Choices(
                    "Pay them as",
                    {"payout_amount": "A flat amount", "payout_percent": "A percentage"},
                ),
                "pay_if_unused",
                "hold_days",
            ),
        ),
        ("Guards", ("duplicate_click_minutes", "self_referral_guard", "click_flag_per_hour")),
        (
            "Partner sign-up",
            ("signup_enabled", "signup_auto_approve", "signup_parent", "signup_parent_partner"),
        ),
    )
    signup_parent_partner = PartnerByCodeField(
        required=False,
        max_length=32,
        label=capfirst(ReferralDefaults._meta.get_field("signup_parent_partner").verbose_name),
        help_text=ReferralDefaults._meta.get_field("signup_parent_partner").help_text,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    class Meta:
        model = ReferralDefaults
        fields = DEFAULTS_FIELDS
        widgets = {
            "code_prefix": forms.TextInput(
                attrs={"placeholder": "e.g. vip-", "autocomplete": "off", "spellcheck": "false"}
            ),
            "link_url": forms.TextInput(
                attrs={"placeholder": "https://go.example.com", "inputmode": "url"}
            ),
            "click_flag_per_hour": forms.NumberInput(attrs={"placeholder": "Off"}),
            "partner_selection": forms.RadioSelect,
            "tracking_method": forms.RadioSelect,
            "signup_parent": forms.RadioSelect,
        }

    def __init__(self, *args: Any, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A prefix goes into URLs: " vip" is refused rather than quietly trimmed.
        self.fields["code_prefix"].strip = False
        if self.instance.signup_parent_partner_id is not None:
            self.initial["signup_parent_partner"] = self.instance.signup_parent_partner.code
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("signup_parent", SignupParent.FIXED) != SignupParent.FIXED:
            # The chosen parent is hidden unless "One chosen partner" is picked: whatever it
            # holds is not checked, and the stored one is kept.
            self.errors.pop("signup_parent_partner", None)
            cleaned["signup_parent_partner"] = self.instance.signup_parent_partner
        elif "signup_parent_partner" in self.errors:
            # The code is wrong: say that alone, not also that "one chosen partner" lacks one.
            cleaned.pop("signup_parent", None)
        return cleaned


class PartnerForm(forms.ModelForm):
    parent = PartnerByCodeField(
        required=False,
        max_length=32,
        label="Parent",
        help_text="The code of the partner who recruited this one (paid at level 2). "
        "Leave empty for none.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    programs = forms.ModelMultipleChoiceField(
        Program.objects.all(),
        required=False,
        initial=[],
        label="Programs",
        widget=forms.CheckboxSelectMultiple,
        help_text="The programs the partner is enrolled in: each order item is paid by the "
        "first (by priority) that covers it. Changing these sets 'Program' to the first.",
    )

    class Meta:
        model = Partner
        fields = PARTNER_FIELDS
        widgets = {
            "code": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].required = False
        self.fields["program"].empty_label = "The default program (lowest priority)"
        if self.instance.parent_id is not None:
            self.initial["parent"] = self.instance.parent.code
        if self.instance.pk is not None:
            self.initial["programs"] = list(
                self.instance.enrollments.values_list("program_id", flat=True)
            )

    def partner_data(self) -> dict[str, Any]:
        """The partner's fields, for `partner_create` / `partner_update`."""
        return {name: self.cleaned_data[name] for name in PARTNER_FIELDS}

    def programs_changed(self) -> list[Program] | None:
        """The programs chosen, when they were changed (else None: `program` decides)."""
        return list(self.cleaned_data["programs"]) if "programs" in self.changed_data else None


class ProgramForm(forms.ModelForm):
    """A program's name, notes, priority, pay-if-unused rates and per-level rates, and what
    a subscription's renewals earn (SPEC §10).

    The rates of level N are the fields `rate_N_lead_amount`, `rate_N_lead_percent`,
    `rate_N_sale_amount`, `rate_N_sale_percent`; its renewal rates `renewal_N_...`, used
    when `own_renewal_rates` is ticked. An empty rate means 0.
    """

    own_renewal_rates = forms.BooleanField(
        label="Renewals earn their own rates",
        required=False,
        help_text="Off: a subscription's renewals earn the rates per level above.",
    )

    class Meta:
        model = Program
        fields = PROGRAM_FIELDS
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(
        self,
        *args: Any,
        rates: list[ProgramRate] | tuple[()] = (),
        renewal_rates: list[RenewalRate] | tuple[()] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["own_renewal_rates"].initial = bool(renewal_rates)
        # Left out of a post (a script's, an older page's): the program keeps its timing.
        self.fields["credit_on"].required = False
        self.fields["credit_on"].choices = CreditOn.choices
        for name in UNUSED_RATE_FIELDS:
            model_field = Program._meta.get_field(name)
            self.fields[name] = rate_form_field(model_field, capfirst(model_field.verbose_name))
            self.initial[name] = rate_text(name, self.initial.get(name))
        for prefix, given, label in (("rate", rates, ""), ("renewal", renewal_rates, "renewal ")):
            by_level = {rate.level: rate for rate in given}
            for level in LEVELS:
                for name in RATE_FIELDS:
                    model_field = ProgramRate._meta.get_field(name)
                    field = rate_form_field(
                        model_field, f"Level {level} {label}{model_field.verbose_name}"
                    )
                    rate = by_level.get(level)
                    field.initial = rate_text(name, getattr(rate, name) if rate else ZERO)
                    self.fields[self.rate_field_name(level, name, prefix)] = field

    @staticmethod
    def rate_field_name(level: int, name: str, prefix: str = "rate") -> str:
        return f"{prefix}_{level}_{name}"

    def _rows(self, prefix: str) -> list[tuple[int, list[forms.BoundField]]]:
        return [
            (level, [self[self.rate_field_name(level, name, prefix)] for name in RATE_FIELDS])
            for level in LEVELS
        ]

    @property
    def rate_rows(self) -> list[tuple[int, list[forms.BoundField]]]:
        return self._rows("rate")

    @property
    def renewal_rate_rows(self) -> list[tuple[int, list[forms.BoundField]]]:
        return self._rows("renewal")

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        rate_names = [
            *UNUSED_RATE_FIELDS,
            *(
                self.rate_field_name(level, name, prefix)
                for prefix in ("rate", "renewal")
                for level in LEVELS
                for name in RATE_FIELDS
            ),
        ]
        for name in rate_names:
            if name in cleaned_data and cleaned_data[name] is None:
                cleaned_data[name] = ZERO
        if not cleaned_data.get("credit_on"):
            cleaned_data["credit_on"] = self.instance.credit_on
        return cleaned_data

    def program_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in PROGRAM_FIELDS}

    def rates_data(self, prefix: str = "rate") -> list[dict[str, Any]]:
        return [
            {
                "level": level,
                **{
                    name: self.cleaned_data[self.rate_field_name(level, name, prefix)]
                    for name in RATE_FIELDS
                },
            }
            for level in LEVELS
        ]

    def renewal_rates_data(self) -> list[dict[str, Any]] | None:
        """The renewal rates (SPEC §10), or None: renewals earn the program's rates."""
        return self.rates_data("renewal") if self.cleaned_data["own_renewal_rates"] else None

    def service_arguments(self) -> dict[str, Any]:
        """What the valid form hands `program_create` and `program_update` (and what a
        preview of the edit replays, SPEC §13: the same values, unsaved)."""
        return {
            "data": self.program_data(),
            "rates": self.rates_data(),
            "renewal_rates": self.renewal_rates_data(),
        }


def program_edit_form(program: Program, data: Any = None) -> ProgramForm:
    """The program page's form for `program` (bound to `data` when given): its Save and its
    preview read the posted values the same way. The form works on a copy, so validating it
    never changes `program`."""
    return ProgramForm(
        data,
        instance=copy.copy(program),
        rates=list(program.rates.all()),
        renewal_rates=list(program.renewal_rates.all()),
    )


PREVIEW_DAYS = 30  # the range a preview replays unless staff choose another: the last 30 days


class PreviewRangeForm(forms.Form):
    """The range *Preview the effect* replays (SPEC §13), asked on the defaults and program
    pages beside their own fields (hence the prefixed names, which their Save ignores):
    whole UTC days, both included."""

    preview_start = DayField(label="Replay from", widget=DateInput())
    preview_end = DayField(
        label="Replay to", widget=DateInput(), help_text="Whole UTC days, both included."
    )

    @classmethod
    def last_days(cls, *, today: date) -> "PreviewRangeForm":
        """The unbound form with the default range: the last PREVIEW_DAYS days, today in."""
        start = today - timedelta(days=PREVIEW_DAYS - 1)
        return cls(initial={"preview_start": start, "preview_end": today})

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        start, end = cleaned_data.get("preview_start"), cleaned_data.get("preview_end")
        if start and end and start > end:
            self.add_error("preview_end", "The end must not be before the start.")
        return cleaned_data


class TrackingLinkForm(forms.ModelForm):
    class Meta:
        model = TrackingLink
        fields = ("code", "name", "destination", "is_default")
        widgets = {
            "code": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "destination": forms.TextInput(
                attrs={"placeholder": "https://shop.example/hair", "inputmode": "url"}
            ),
        }

    def validate_constraints(self) -> None:
        # The model's one constraint is "one default link", and saving a new default
        # unsets the old one (tracking_link_save), so it is no reason to refuse the form.
        # The unique code is checked by validate_unique().
        return None


# --- Partner sign-up (SPEC §9) ------------------------------------------------------------


class PartnerSignupForm(forms.Form):
    """The public sign-up page. The password's strength is checked by `partner_signup`
    (its validators compare it with the partner code the service makes)."""

    name = forms.CharField(label="Your name", max_length=200)
    email = forms.EmailField(
        label="Email",
        max_length=254,
        help_text="We send a link to confirm it; you also log in with it.",
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password.",
    )
    password2 = forms.CharField(
        label="The same password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    website = forms.URLField(
        label="Your website",
        required=False,
        max_length=200,
        assume_scheme="https",
        validators=[http_url_validator],
        help_text="Where you will share your links.",
    )
    promotion = forms.CharField(
        label="How will you promote us?",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Your audience, newsletter, social media…",
    )
    # The visitor's tracking token when it came in the URL (?rp_ref=) rather than a cookie.
    rp_ref = forms.CharField(required=False, max_length=2048, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password, again = cleaned.get("password"), cleaned.get("password2")
        if password and again and password != again:
            self.add_error("password2", "The two passwords differ.")
        return cleaned

    def signup_data(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data[name]
            for name in ("name", "email", "password", "website", "promotion")
        }


class SignupDecisionForm(forms.Form):
    """Approve or reject sign-ups on the staff's Sign-ups page.

    `decide` is the button pressed: "approve" or "reject" for the ticked partners, or
    "approve-<id>" / "reject-<id>" for one row's own button.
    """

    DECIDE = re.compile(r"(approve|reject)(?:-([0-9]{1,18}))?\Z")

    decide = forms.CharField(max_length=32)
    partners = forms.ModelMultipleChoiceField(
        queryset=Partner.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(
        label="Note for a rejection",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: added to the email of partners you reject.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        match = self.DECIDE.match(cleaned.get("decide") or "")
        if match is None:
            raise ValidationError("Choose Approve or Reject.")
        cleaned["action"] = match.group(1)
        if match.group(2) is not None:
            chosen = Partner.objects.filter(pk=int(match.group(2)))
            if not chosen.exists():
                raise ValidationError("That partner does not exist.")
        else:
            chosen = cleaned.get("partners")
            if "partners" in self.errors:
                return cleaned
            if not chosen:
                self.add_error("partners", "Tick at least one partner.")
                return cleaned
        cleaned["chosen"] = chosen
        return cleaned


# --- Click volume flags (SPEC §9 "Guards") ------------------------------------------------


class ClickFlagReviewForm(forms.Form):
    """Mark flags reviewed on the staff's Click flags page.

    `review` is the button pressed: "ticked" for the ticked flags, or a flag's id for one
    row's own button. The note goes with whichever flags are marked.
    """

    REVIEW = re.compile(r"(?:ticked|([0-9]{1,18}))\Z")

    review = forms.CharField(max_length=32)
    flags = forms.ModelMultipleChoiceField(
        queryset=ClickFlag.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: what you found (kept with the flags you mark reviewed).",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        match = self.REVIEW.match(cleaned.get("review") or "")
        if match is None:
            raise ValidationError("Choose which flags to mark reviewed.")
        if match.group(1) is not None:
            chosen = ClickFlag.objects.filter(pk=int(match.group(1)))
            if not chosen.exists():
                raise ValidationError("That flag does not exist.")
        else:
            chosen = cleaned.get("flags")
            if "flags" in self.errors:
                return cleaned
            if not chosen:
                self.add_error("flags", "Tick at least one flag.")
                return cleaned
        cleaned["chosen"] = chosen
        return cleaned


class CouponForm(forms.ModelForm):
    """A coupon added on the staff partner page: its code and whether it is active."""

    class Meta:
        model = Coupon
        fields = ("code", "active")
        widgets = {"code": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})}

    def validate_unique(self) -> None:
        pass  # the service checks the code without regard to case, naming the field


# --- Tables edited row by row (Django formsets) ------------------------------------------
# A row is removed by ticking its "Remove" box; "Add a row" (static/js/app.js) copies the
# formset's empty row, and without script every save shows one empty row to fill in.

# Past this many rows a table is edited by CSV (each row is 18 fields; Django takes at most
# DATA_UPLOAD_MAX_NUMBER_FIELDS, 1,000, in one request).
TABLE_MAX_ROWS = 50


class ProductRateRowForm(forms.Form):
    """One sku's product rate: the columns of the CSV (`PRODUCT_RATE_COLUMNS`)."""

    sku = forms.CharField(
        max_length=ProductRate._meta.get_field("sku").max_length,
        label="Sku",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for column in PRODUCT_RATE_COLUMNS[1:]:
            name = next(n for n in PRODUCT_RATE_NAMES if column.endswith(n))
            model_field = ProgramRate._meta.get_field(name)
            where = "Unused" if column.startswith("unused_") else f"Level {column[6]}"
            self.fields[column] = rate_form_field(
                model_field, f"{where} {model_field.verbose_name}"
            )

    def clean_sku(self) -> str:
        return self.cleaned_data["sku"].strip()


class TableRows:
    """Of a formset shown as a table: each row's remove box is labelled "Remove"."""

    def add_fields(self, form: forms.BaseForm, index: int | None) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = "Remove"


class ProductRateTableBase(TableRows, forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        seen = set()
        for form in self.kept_forms():
            sku = form.cleaned_data["sku"]
            if sku in seen:
                form.add_error("sku", f"The sku {sku} is on another row too.")
            seen.add(sku)

    def kept_forms(self) -> list[forms.Form]:
        """The rows filled in and not removed."""
        return [f for f in self.forms if f.cleaned_data and not self._should_delete_form(f)]


ProductRateTable = forms.formset_factory(
    ProductRateRowForm,
    formset=ProductRateTableBase,
    extra=1,
    can_delete=True,
    max_num=TABLE_MAX_ROWS,
    validate_max=True,
)


def product_rate_table(program: Program, rows: list[list[str]], data: Any = None):
    """The product-rate table of `program` (its rows as `program_product_rate_rows` reads
    them), bound to `data` on POST."""
    return ProductRateTable(
        data,
        initial=[dict(zip(PRODUCT_RATE_COLUMNS, row, strict=True)) for row in rows],
        prefix="rates",
    )


class PartnerOverrideRowForm(forms.ModelForm):
    """One of a partner's overrides (SPEC §10): program, sku (empty: every item), level and
    the four rates (empty: 0)."""

    class Meta:
        model = PartnerOverride
        fields = ("program", "sku", "level", *RATE_FIELDS)
        widgets = {"sku": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in RATE_FIELDS:
            model_field = PartnerOverride._meta.get_field(name)
            self.fields[name] = rate_form_field(model_field, capfirst(model_field.verbose_name))
            if self.instance.pk:
                self.initial[name] = rate_text(name, getattr(self.instance, name))
        self.fields["sku"].help_text = ""

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        for name in RATE_FIELDS:
            if name in cleaned_data and cleaned_data[name] is None:
                cleaned_data[name] = ZERO
        return cleaned_data

    def validate_unique(self) -> None:
        """The overrides service checks (partner, program, sku, level), naming the sku."""


class PartnerOverrideTableBase(TableRows, forms.BaseModelFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            if not form.cleaned_data or self._should_delete_form(form):
                continue
            data = form.cleaned_data
            key = (data["program"].pk, (data.get("sku") or "").strip(), data["level"])
            if key in seen:
                form.add_error("sku", "Another row has this program, sku and level.")
            seen.add(key)

    def rows_to_save(self) -> tuple[list[PartnerOverride], list[PartnerOverride]]:
        """(saved: the rows added or changed, as unsaved instances; removed)."""
        save, delete = [], []
        for form in self.forms:
            if form.instance.pk and self._should_delete_form(form):
                delete.append(form.instance)
            elif form.has_changed() and not self._should_delete_form(form):
                save.append(form.instance)
        return save, delete

    def validate_unique(self) -> None:
        """As the row's: the service's check, and `clean` for rows of this table."""


PartnerOverrideTable = forms.modelformset_factory(
    PartnerOverride,
    form=PartnerOverrideRowForm,
    formset=PartnerOverrideTableBase,
    extra=1,
    can_delete=True,
    max_num=TABLE_MAX_ROWS,
    validate_max=True,
)
