"""Forms of the Partner Center (SPEC §7). They validate only; writes go through services."""

from collections.abc import Iterator
from datetime import date
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.db.models import Q

from partners.models import Partner, PartnerStatus
from partners.services.partners import PROFILE_FIELDS
from partners.tracking import AD_CODE_MAX
from referral_program.dates import DateInput, DayField

from .models import BankAccountType, CommissionKind, PayoutDetailsMethod

DEFAULT_LINK = ""  # the link generator's choice for the partner's default URL


class PartnerLoginForm(AuthenticationForm):
    """Partner code or email, and password. Only logins that belong to a partner pass."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The partner code or email and the password do not match. "
        "The password is case-sensitive.",
        "not_partner": "This login does not belong to a partner. Staff log in on the staff "
        "login page.",
        PartnerStatus.PENDING: "Your application is waiting for the merchant's approval. "
        "You can log in once it is approved: we will email you. If you have not confirmed "
        "your email address yet, use the link in the email we sent when you applied.",
        PartnerStatus.REJECTED: "Your application was not approved, so this login cannot be "
        "used. The email we sent says more.",
    }

    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "Partner code or email"
        self.fields["username"].max_length = 254
        self.fields["username"].widget.attrs.update(maxlength=254, autocomplete="username")

    def get_invalid_login_error(self) -> forms.ValidationError:
        """A partner whose application is pending or was turned down, who gave the right
        password, is told so (`partners.auth`); anyone else hears that the two do not
        match."""
        refused = getattr(self.request, "partner_login_refused", None)
        if refused in self.error_messages:
            return forms.ValidationError(self.error_messages[refused], code=refused)
        return super().get_invalid_login_error()

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if getattr(user, "partner", None) is None:
            raise forms.ValidationError(self.error_messages["not_partner"], code="not_partner")


class PartnerPasswordResetForm(PasswordResetForm):
    """Sends the reset link to partners whose partner email matches (not staff), at that
    email; a partner's login may have an older address of its own."""

    def get_users(self, email: str) -> Iterator[Any]:
        partners = (
            Partner.objects.filter(Q(email__iexact=email), user__isnull=False, user__is_active=True)
            .select_related("user")
            .order_by("pk")
        )
        for partner in partners:
            if partner.user.has_usable_password():
                yield partner.user

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        partner = context["user"].partner
        context = {**context, "email": partner.email, "partner": partner}
        super().send_mail(
            subject_template_name,
            email_template_name,
            context,
            from_email,
            partner.email,
            html_email_template_name=html_email_template_name,
        )


class LinkGeneratorForm(forms.Form):
    """A tracking link and an ad code: the partner URL that records that ad code."""

    link = forms.ChoiceField(label="Tracking link", required=False)
    ad = forms.CharField(
        label="Ad code",
        required=False,
        max_length=AD_CODE_MAX,
        help_text="A name for where you put the link, e.g. newsletter-june. It is recorded "
        "with every click.",
    )

    def __init__(self, *args: Any, links: list[dict], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["link"].choices = [
            (
                link["tracking_link"].code if link["tracking_link"] else DEFAULT_LINK,
                link["tracking_link"].name if link["tracking_link"] else "Default destination",
            )
            for link in links
        ]


class PartnerProfileForm(forms.ModelForm):
    class Meta:
        model = Partner
        fields = PROFILE_FIELDS
        labels = {
            "notify_lead": "Email me when someone I referred fills out a form",
            "notify_sale": "Email me when someone I referred buys",
        }
        help_texts = {
            "email": "Where we write to you; you can also log in with it.",
            "notify_lead": "",
            "notify_sale": "",
        }


class LedgerRangeForm(forms.Form):
    """The ledger's date range (whole UTC days, both ends included); empty ends: all time."""

    start = DayField(label="From", required=False, widget=DateInput())
    end = DayField(label="To", required=False, widget=DateInput())
    currency = forms.CharField(required=False, max_length=3)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start: date | None = data.get("start")
        end: date | None = data.get("end")
        if start and end and start > end:
            self.add_error("end", "The end must not be before the start.")
        data["currency"] = (data.get("currency") or "").upper()
        return data


class CommissionFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind",
        required=False,
        choices=[("", "All kinds"), *CommissionKind.choices],
    )


class PayoutDetailsForm(forms.Form):
    """How the partner is paid (SPEC §11); `commissions.payout_details` checks and stores."""

    method = forms.ChoiceField(
        label="Pay me by",
        choices=PayoutDetailsMethod.choices,
        widget=forms.RadioSelect,
    )
    paypal_email = forms.CharField(
        label="PayPal email", required=False, max_length=254, help_text="PayPal only."
    )
    holder_name = forms.CharField(
        label="Account holder", required=False, max_length=140, help_text="As the bank has it."
    )
    iban = forms.CharField(
        label="IBAN", required=False, max_length=42, help_text="Banks in Europe and beyond."
    )
    bic = forms.CharField(
        label="BIC / SWIFT",
        required=False,
        max_length=14,
        help_text="Optional with an IBAN; with an account number instead of a routing number.",
    )
    account_number = forms.CharField(
        label="Account number", required=False, max_length=34, help_text="Without an IBAN."
    )
    routing_number = forms.CharField(
        label="ABA routing number", required=False, max_length=12, help_text="US banks: 9 digits."
    )
    account_type = forms.ChoiceField(
        label="Account type",
        required=False,
        choices=[("", "—"), *BankAccountType.choices],
        help_text="US banks.",
    )
    address_line = forms.CharField(
        label="Holder's address", required=False, max_length=140, help_text="US banks need it."
    )
    city = forms.CharField(required=False, max_length=80)
    state = forms.CharField(label="State", required=False, max_length=40)
    postcode = forms.CharField(label="Postcode / ZIP", required=False, max_length=20)
    country = forms.CharField(
        label="Bank's country",
        required=False,
        max_length=2,
        help_text="Two letters, e.g. US, DE, GB (with an IBAN: the IBAN's).",
    )
