"""Partners' payout details (SPEC §11): checking, masking, and the one write.

IBAN and BIC/SWIFT are checked with schwifty (country, length, structure, check digits);
a US account needs an account number and an ABA routing number (its check digit is
checked here: 3-7-1 weights, a multiple of 10) or a SWIFT code, and the holder's address,
which Wise asks for on US transfers. A refused change names the field and writes nothing.
Every change is logged (`PayoutDetailsChange`: who, when, which fields, the new details
masked) and the partner is emailed, whatever skip notifications says: a changed payout
address is the classic fraud, and the partner is the one who can tell it was not them.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from partners.models import Partner
from referral_program.background import task_queue_on_commit

from .models import (
    BankAccountType,
    Notification,
    NotificationKind,
    NotificationStatus,
    PayoutDetails,
    PayoutDetailsChange,
    PayoutDetailsMethod,
)

BANK_FIELDS = (
    "holder_name",
    "iban",
    "bic",
    "account_number",
    "routing_number",
    "account_type",
    "address_line",
    "city",
    "state",
    "postcode",
    "country",
)
PAYPAL_FIELDS = ("paypal_email",)
FIELDS = ("method", *PAYPAL_FIELDS, *BANK_FIELDS)
LABELS = {
    "method": "payout method",
    "paypal_email": "PayPal email",
    "holder_name": "account holder",
    "iban": "IBAN",
    "bic": "BIC / SWIFT",
    "account_number": "account number",
    "routing_number": "routing number",
    "account_type": "account type",
    "address_line": "address",
    "city": "city",
    "state": "state",
    "postcode": "postcode",
    "country": "country",
}


# Free text that goes into the payout files as it is (PayPal and Wise read the values, so
# they are not escaped there): refused when a spreadsheet would run it as a formula.
TYPED_FIELDS = ("holder_name", "address_line", "city", "state", "postcode")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def aba_routing_valid(number: str) -> bool:
    """An ABA routing number: 9 digits whose 3-7-1 weighted sum is a multiple of 10."""
    if len(number) != 9 or not number.isdigit():
        return False
    digits = [int(d) for d in number]
    return sum(d * w for d, w in zip(digits, (3, 7, 1) * 3, strict=True)) % 10 == 0


def payout_details_clean(data: dict) -> dict[str, str]:
    """The details as stored (every field of FIELDS, "" where unused), or ValidationError
    naming each wrong field."""
    value = {name: str(data.get(name) or "").strip() for name in FIELDS}
    method = value["method"]
    errors: dict[str, str] = {}
    if method not in PayoutDetailsMethod.values:
        raise ValidationError({"method": "Choose PayPal or bank transfer."})
    if method == PayoutDetailsMethod.PAYPAL:
        cleaned = dict.fromkeys(FIELDS, "")
        cleaned.update(method=method, paypal_email=value["paypal_email"].lower())
        try:
            validate_email(cleaned["paypal_email"])
            if cleaned["paypal_email"][:1] in FORMULA_STARTS:
                raise ValidationError("starts like a spreadsheet formula")
        except ValidationError:
            errors["paypal_email"] = "Enter the email address of your PayPal account."
        if errors:
            raise ValidationError(errors)
        return cleaned

    cleaned = {name: value[name] for name in FIELDS}
    cleaned["paypal_email"] = ""
    for name in TYPED_FIELDS:
        if cleaned[name][:1] in FORMULA_STARTS:
            errors[name] = f"The {LABELS[name]} must not start with {cleaned[name][:1]}."
    for name in ("iban", "bic", "account_number", "routing_number", "country"):
        cleaned[name] = _compact(cleaned[name])
    if not cleaned["holder_name"]:
        errors["holder_name"] = "Enter the name on the bank account."
    if cleaned["iban"]:
        try:
            iban = IBAN(cleaned["iban"])
        except SchwiftyException as error:
            errors["iban"] = f"This IBAN is not valid ({error}): check it against your bank's."
        else:
            cleaned["iban"] = iban.compact
            cleaned["country"] = iban.country_code  # the IBAN says where the bank is
            cleaned["account_number"] = cleaned["routing_number"] = ""
    if cleaned["bic"]:
        try:
            cleaned["bic"] = BIC(cleaned["bic"]).compact
        except SchwiftyException as error:
            errors["bic"] = f"This BIC / SWIFT code is not valid ({error})."
    if not cleaned["iban"] and "iban" not in errors:
        if not cleaned["account_number"]:
            errors["iban"] = "Enter an IBAN, or an account number with its routing or SWIFT code."
        elif not cleaned["account_number"].isalnum():
            errors["account_number"] = "Use the letters and digits of the account number."
        if cleaned["routing_number"] and not aba_routing_valid(cleaned["routing_number"]):
            errors["routing_number"] = (
                "This routing number is not valid: 9 digits whose check digit matches."
            )
        if not cleaned["routing_number"] and not cleaned["bic"] and "bic" not in errors:
            errors["routing_number"] = "Enter the bank's ABA routing number or its SWIFT code."
    if "iban" in errors:
        pass  # the country comes from a valid IBAN
    elif len(cleaned["country"]) != 2 or not cleaned["country"].isalpha():
        errors["country"] = "Enter the bank's country as two letters (e.g. US, DE)."
    if cleaned["account_type"] and cleaned["account_type"] not in BankAccountType.values:
        errors["account_type"] = "Choose checking or savings."
    if cleaned["country"] == "US" and not cleaned["iban"]:
        cleaned["account_type"] = cleaned["account_type"] or BankAccountType.CHECKING
        for name in ("address_line", "city", "state", "postcode"):
            if not cleaned[name]:
                errors[name] = f"A US account needs the holder's {LABELS[name]}."
    if errors:
        raise ValidationError(errors)
    return cleaned


def _mask_tail(value: str, *, keep: int = 4) -> str:
    if not value:
        return ""
    return "•" * max(len(value) - keep, 2) + value[-keep:]


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else _mask_tail(value)


@dataclass(frozen=True)
class MaskedDetails:
    """What staff see of a partner's payout details: enough to tell them apart."""

    method: str
    method_label: str
    lines: tuple[tuple[str, str], ...]

    @property
    def summary(self) -> str:
        return ", ".join(f"{label} {value}" for label, value in self.lines)


def masked(details: PayoutDetails | None) -> MaskedDetails | None:
    if details is None:
        return None
    if details.method == PayoutDetailsMethod.PAYPAL:
        lines = (("PayPal", mask_email(details.paypal_email)),)
    else:
        pairs = [
            ("Holder", details.holder_name[:1] + "•••" if details.holder_name else ""),
            ("IBAN", f"{details.iban[:4]} •••• {details.iban[-4:]}" if details.iban else ""),
            ("Account", _mask_tail(details.account_number)),
            ("Routing", _mask_tail(details.routing_number, keep=3)),
            ("BIC", details.bic[:4] + "•••" if details.bic else ""),
            ("Country", details.country),
        ]
        lines = tuple((label, value) for label, value in pairs if value)
    return MaskedDetails(
        method=details.method, method_label=details.get_method_display(), lines=lines
    )


def payout_details_of(partner: Partner) -> PayoutDetails | None:
    return PayoutDetails.objects.filter(partner=partner).first()


def details_values(details: PayoutDetails | None) -> dict[str, str]:
    if details is None:
        return dict.fromkeys(FIELDS, "")
    return {name: getattr(details, name) or "" for name in FIELDS}


@transaction.atomic
def payout_details_update(
    *, partner: Partner, data: dict, changed_by: str, at: datetime
) -> PayoutDetailsChange | None:
    """Check and store a partner's payout details; log the change and email the partner.
    Nothing changed: nothing written, None. Refused: ValidationError, nothing written."""
    cleaned = payout_details_clean(data)
    # Serialises two saves of one partner's details (the log would miss one otherwise).
    Partner.objects.select_for_update().filter(pk=partner.pk).values_list("pk").first()
    current = payout_details_of(partner)
    before = details_values(current)
    changed = [name for name in FIELDS if before[name] != cleaned[name]]
    if not changed:
        return None
    if current is None:
        current = PayoutDetails(partner=partner)
    for name, value in cleaned.items():
        setattr(current, name, value)
    current.updated_at = at
    current.save()
    change = PayoutDetailsChange.objects.create(
        partner=partner,
        changed_at=at,
        changed_by=changed_by,
        method=cleaned["method"],
        fields=changed,
        summary=masked(current).summary[:300],
    )
    notification = Notification.objects.create(
        partner=partner,
        details_change=change,
        kind=NotificationKind.PAYOUT_DETAILS,
        status=NotificationStatus.QUEUED,
        created_at=at,
    )
    task_queue_on_commit("commissions.tasks.send_notification", notification.pk)
    return change


def change_description(change: PayoutDetailsChange) -> str:
    """ "IBAN and BIC / SWIFT changed" (what kind of change, never the numbers)."""
    names = [LABELS.get(name, name) for name in change.fields]
    if len(names) > 1:
        return f"{', '.join(names[:-1])} and {names[-1]} changed"
    return f"{names[0]} changed" if names else "saved"
