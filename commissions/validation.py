"""The field rules of the events API as plain functions (SPEC §6).

The API's serializers (`commissions.serializers`) and the bulk importer
(`commissions.importing`) both validate events here, so a line of a file and a request get
the same errors under the same field names. A DRF serializer costs about half a millisecond
per order; these rules, a few dozen microseconds, which the importer needs to record
thousands of orders a second. The serializers keep their declared fields for the OpenAPI
schema; their `to_internal_value` calls these rules.

The rules follow DRF's fields exactly (what they accept, how they convert, each message and
the order of the messages): `Text` is a `CharField`, `Money` a `DecimalField`, `Integer` an
`IntegerField`, `When` a `DateTimeField`, `IP` an `IPAddressField`, `Record` a nested
`Serializer`, `ListOf` a `ListSerializer` (errors by the position of each bad item), `PartnerCode`
the API's active-partner field. tests/unit/test_validation.py compares them with DRF's own
fields on generated input.
"""

import contextlib
import functools
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, DecimalException, getcontext
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email, validate_ipv46_address
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.encoding import smart_str
from django.utils.ipv6 import clean_ipv6_address

from partners.choices import PartnerStatus
from referral_program.parsers import token_kept

from .money import minor_units

NON_FIELD_ERRORS = "non_field_errors"
MAX_ITEMS = 1000
# Up to a trillion in the currency, with the cents; what the ledger columns hold.
MONEY_DIGITS = 14
MONEY_PLACES = 2
ACTIVE = PartnerStatus.ACTIVE

REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
NOT_TEXT = "Not a valid string."
NUL_CHARACTERS = "Null characters are not allowed."
NOT_A_DICT = "Invalid data. Expected a dictionary, but got {datatype}."
EMAIL = "Enter a valid email address."
IP_ADDRESS = "Enter a valid IPv4 or IPv6 address."
WHEN = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)
ISO_8601 = "iso-8601"  # DRF's only input format, also tried literally with strptime as DRF does
OUT_OF_RANGE = "Datetime value out of range."
TOO_FAR_AHEAD = "Must not be more than a day in the future."
NEGATIVE_ZERO = 'Must not be negative ("-0" has a minus sign).'
INVALID_RELATION = "Invalid value."
NO_SUCH_PARTNER = "No partner has the code {value}."
INACTIVE_PARTNER = "Partner {value} is not active."
MAX_STRING_LENGTH = 1000  # DRF's guard on numbers given as long strings
RE_DECIMAL = re.compile(r"\.0*\s*$")  # DRF's IntegerField: '1.0' is an int, '1.2' is not

event_id_validator = RegexValidator(
    r"^[\x21-\x7e]{1,100}\Z", "Use 1 to 100 visible ASCII characters (no spaces)."
)


class Invalid(Exception):
    """A field's errors: a list of messages, or for a record a dict of them by field."""

    def __init__(self, detail: list | dict):
        super().__init__(detail)
        self.detail = detail


class _Skip(Exception):
    """An optional field left out: nothing goes into the validated data."""


MISSING = object()  # a field the data leaves out


def _messages(error: ValidationError) -> list[str]:
    """A Django validator's messages as DRF renders them."""
    return [(e.message % e.params) if e.params else str(e.message) for e in error.error_list]


def _surrogate(text: str) -> str | None:
    if text.isascii():
        return None
    for character in text:
        if 0xD800 <= ord(character) <= 0xDFFF:
            return f"Surrogate characters are not allowed: U+{ord(character):X}."
    return None


class Field(ABC):
    """What every field does with a missing value and with null (DRF's `Field`): a missing
    value is refused when required, else skipped (a `Record` skips it without calling
    `clean`); each kind of field says how it converts a value in `convert`. `help_text` is
    what the API docs say about it (`commissions.event_schema` writes the OpenAPI schema
    from these fields)."""

    def __init__(self, *, required: bool = True, allow_null: bool = False, help_text: str = ""):
        self.required = required
        self.allow_null = allow_null
        self.help_text = help_text

    def clean(self, value: Any, partners: Mapping) -> Any:
        if value is MISSING:
            if self.required:
                raise Invalid([REQUIRED])
            raise _Skip
        if value is None:
            if not self.allow_null:
                raise Invalid([NULL])
            return None
        return self.convert(value, partners)

    @abstractmethod
    def convert(self, value: Any, partners: Mapping) -> Any:
        """The value checked and converted, or `Invalid` with its messages."""


class Text(Field):
    """DRF's `CharField`: numbers are read as text, surrounding spaces trimmed, blank refused
    unless allowed; then every check runs and all their messages are kept, in DRF's order
    (the `checks` given, length, NUL characters, surrogates, then the subclass's own)."""

    invalid = NOT_TEXT

    def __init__(
        self,
        *,
        max_length: int | None = None,
        min_length: int | None = None,
        allow_blank: bool = False,
        trim: bool = True,
        checks: Iterable[Callable[[str], None]] = (),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_length, self.min_length = max_length, min_length
        self.allow_blank, self.trim = allow_blank, trim
        self.checks = tuple(checks)
        # Regular expressions that the value must match: tried directly on the fast path.
        # Compiled here: a validator's own `regex` is a lazy object, a proxy on every call.
        self.patterns = tuple(
            re.compile(check.regex.pattern, check.regex.flags)
            for check in self.checks
            if isinstance(check, RegexValidator) and not check.inverse_match
        )
        self.only_patterns = len(self.patterns) == len(self.checks)
        # The length bounds as the fast path compares them (no bound: 0 and sys.maxsize).
        self.shortest = min_length or 0
        self.longest = sys.maxsize if max_length is None else max_length

    def clean(self, value: Any, partners: Mapping) -> Any:
        if type(value) is str:  # the usual case, first
            text = value.strip() if self.trim else value
            if not text:  # blank ("" or, trimmed, only spaces)
                if not self.allow_blank:
                    raise Invalid([BLANK])
                return ""
            return self.validated(self.read(value, text))
        if (
            value is not MISSING
            and value is not None
            and (value == "" or (self.trim and str(value).strip() == ""))
        ):
            if not self.allow_blank:
                raise Invalid([BLANK])
            return ""
        return super().clean(value, partners)

    def read(self, value: str, text: str) -> str:
        return text

    def convert(self, value: Any, partners: Mapping) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid([self.invalid])
        text = str(value)
        return self.validated(self.read(text, text.strip() if self.trim else text))

    def validated(self, text: str) -> str:
        if (
            self.only_patterns
            and self.shortest <= len(text) <= self.longest
            and text.isascii()
            and "\x00" not in text
            and (not self.patterns or all(pattern.search(text) for pattern in self.patterns))
            and self.fine(text)
        ):
            return text
        errors = []
        for check in self.checks:
            try:
                check(text)
            except ValidationError as error:
                errors += _messages(error)
        if self.max_length is not None and len(text) > self.max_length:
            errors.append(f"Ensure this field has no more than {self.max_length} characters.")
        if self.min_length is not None and len(text) < self.min_length:
            errors.append(f"Ensure this field has at least {self.min_length} characters.")
        if "\x00" in text:
            errors.append(NUL_CHARACTERS)
        if surrogate := _surrogate(text):
            errors.append(surrogate)
        errors += self.problems(text)
        if errors:
            raise Invalid(errors)
        return text

    def fine(self, text: str) -> bool:
        """The subclass's own checks pass (the fast path)."""
        return True

    def problems(self, text: str) -> list[str]:
        """The messages of the subclass's own checks."""
        return []


# Django's email validator's own patterns, compiled here (its are lazy proxies).
EMAIL_USER = re.compile(validate_email.user_regex.pattern, validate_email.user_regex.flags)
EMAIL_DOMAIN = re.compile(validate_email.domain_regex.pattern, validate_email.domain_regex.flags)
EMAIL_MAX_LENGTH = 320  # the validator's own limit (RFC 3696)


@functools.lru_cache(maxsize=1024)
def email_domain_plain(domain: str) -> bool:
    """A host name Django's email validator takes, by its own pattern; kept by domain, as
    the orders of a shop's customers share a few domains."""
    return EMAIL_DOMAIN.match(domain) is not None


def email_plainly_valid(text: str) -> bool:
    """Django's email validator's own tests without its rarer ways to pass (the allowlist,
    an address literal): true only where the validator takes the text too."""
    user, at, domain = text.rpartition("@")
    return (
        at == "@"
        and len(text) <= EMAIL_MAX_LENGTH
        and EMAIL_USER.match(user) is not None
        and email_domain_plain(domain)
    )


class Email(Text):
    """DRF's `EmailField` (Django's email validator). The common address passes on its
    fast path (`email_plainly_valid`); any other goes through the validator itself."""

    invalid = EMAIL

    def fine(self, text: str) -> bool:
        return email_plainly_valid(text) or not self.problems(text)

    def problems(self, text: str) -> list[str]:
        try:
            validate_email(text)
        except ValidationError:
            return [EMAIL]
        return []


class IP(Text):
    """DRF's `IPAddressField` (IPv4 or IPv6; an IPv4-mapped IPv6 address is unpacked)."""

    invalid = IP_ADDRESS

    def read(self, value: str, text: str) -> str:
        if ":" in value:
            try:
                return clean_ipv6_address(value, True)
            except ValidationError:
                raise Invalid([IP_ADDRESS]) from None
        return text

    def convert(self, value: Any, partners: Mapping) -> Any:
        raise Invalid([IP_ADDRESS])  # not a string

    def fine(self, text: str) -> bool:
        return not self.problems(text)

    def problems(self, text: str) -> list[str]:
        try:
            validate_ipv46_address(text)
        except ValidationError as error:
            return _messages(error)
        return []


class Integer(Field):
    """DRF's `IntegerField`."""

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    def convert(self, value: Any, partners: Mapping) -> int:
        if type(value) is not int:
            if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
                raise Invalid(["String value too large."])
            try:
                value = int(RE_DECIMAL.sub("", str(value)))
            except (ValueError, TypeError):
                raise Invalid(["A valid integer is required."]) from None
        errors = []
        if self.max_value is not None and value > self.max_value:
            errors.append(f"Ensure this value is less than or equal to {self.max_value}.")
        if self.min_value is not None and value < self.min_value:
            errors.append(f"Ensure this value is greater than or equal to {self.min_value}.")
        if errors:
            raise Invalid(errors)
        return value


_CENTS = Decimal(1).scaleb(-MONEY_PLACES)
_MONEY_CONTEXT = getcontext().copy()
_MONEY_CONTEXT.prec = MONEY_DIGITS
_INFINITIES = (Decimal("Inf"), Decimal("-Inf"))
# A plain amount, which every check of `Money` takes as it is: ASCII digits, as many as the
# columns hold before the point, and at most their places after it.
PLAIN_AMOUNT = re.compile(
    rf"[0-9]{{1,{MONEY_DIGITS - MONEY_PLACES}}}(?:\.[0-9]{{1,{MONEY_PLACES}}})?\Z"
)


class Money(Field):
    """An amount: DRF's `DecimalField(max_digits=14, decimal_places=2, min_value=0)` that
    also refuses "-0"; a blank string is null where null is allowed."""

    def clean(self, value: Any, partners: Mapping) -> Any:
        if self.allow_null and value is not MISSING and smart_str(value).strip() == "":
            return None
        return super().clean(value, partners)

    def convert(self, value: Any, partners: Mapping) -> Decimal:
        if type(value) is str and PLAIN_AMOUNT.match(text := value.strip()):
            return Decimal(text).quantize(_CENTS, context=_MONEY_CONTEXT)  # the fast path
        text = smart_str(value).strip()
        if len(text) > MAX_STRING_LENGTH:
            raise Invalid(["String value too large."])
        try:
            number = Decimal(text)
        except DecimalException:
            raise Invalid(["A valid number is required."]) from None
        if number.is_nan() or number in _INFINITIES:
            raise Invalid(["A valid number is required."])
        _, digits, exponent = number.as_tuple()
        if exponent >= 0:
            total = whole = len(digits) + exponent
            places = 0
        elif len(digits) > -exponent:
            total, places = len(digits), -exponent
            whole = total - places
        else:
            total = places = -exponent
            whole = 0
        if total > MONEY_DIGITS:
            raise Invalid([f"Ensure that there are no more than {MONEY_DIGITS} digits in total."])
        if places > MONEY_PLACES:
            raise Invalid([f"Ensure that there are no more than {MONEY_PLACES} decimal places."])
        if whole > MONEY_DIGITS - MONEY_PLACES:
            raise Invalid(
                [
                    "Ensure that there are no more than "
                    f"{MONEY_DIGITS - MONEY_PLACES} digits before the decimal point."
                ]
            )
        number = number.quantize(_CENTS, context=_MONEY_CONTEXT)
        errors = []
        if number == 0 and number.is_signed():
            errors.append(NEGATIVE_ZERO)
        if number < 0:
            errors.append("Ensure this value is greater than or equal to 0.")
        if errors:
            raise Invalid(errors)
        return number


class When(Field):
    """DRF's `DateTimeField` (ISO 8601, made aware in UTC), at most a day ahead."""

    def convert(self, value: Any, partners: Mapping) -> datetime:
        try:
            # The fast path: what `parse_datetime` tries first, and returns when it works.
            parsed = datetime.fromisoformat(value)
        except (ValueError, TypeError):
            parsed = self.parsed(value)
        zone = timezone.get_current_timezone()
        if timezone.is_aware(parsed):
            try:
                parsed = parsed.astimezone(zone)
            except OverflowError:
                raise Invalid([OUT_OF_RANGE]) from None
        else:
            parsed = timezone.make_aware(parsed, zone)
        return not_too_far_ahead(parsed)

    def parsed(self, value: Any) -> datetime:
        """`value` read as DRF reads it (`parse_datetime`, then the format's name literally
        as `strptime` takes it), naive or aware as given."""
        parsed = None
        with contextlib.suppress(ValueError, TypeError):
            parsed = parse_datetime(value)
        if parsed is None:
            try:
                parsed = datetime.strptime(value, ISO_8601)  # noqa: DTZ007 (made aware below)
            except (ValueError, TypeError):
                raise Invalid([WHEN]) from None
        return parsed


A_DAY = timedelta(days=1)


def not_too_far_ahead(value: datetime) -> datetime:
    """An event's (or a referral's) time: at most a day ahead of now."""
    if value > timezone.now() + A_DAY:
        raise Invalid([TOO_FAR_AHEAD])
    return value


class PartnerCode(Field):
    """A partner named by code, without regard to case, who must be active. `partners` maps
    the lower-cased codes the data names to the partners (`partners_named` reads them); a
    partner is anything with `code` and `status`. An empty string is null."""

    def clean(self, value: Any, partners: Mapping) -> Any:
        return super().clean(None if value == "" else value, partners)

    def convert(self, value: Any, partners: Mapping) -> Any:
        if not isinstance(value, str):
            raise Invalid([INVALID_RELATION])
        partner = partners.get(value.lower())
        if partner is None:
            raise Invalid([NO_SUCH_PARTNER.format(value=value)])
        return active_partner(partner)


def active_partner(partner: Any) -> Any:
    """Inactive partners are never credited (nor pending or rejected ones)."""
    if partner.status != ACTIVE:
        raise Invalid([INACTIVE_PARTNER.format(value=partner.code)])
    return partner


class Record(Field):
    """A JSON object of named fields (DRF's `Serializer`): every field is checked and the
    errors come by field name, in the order of the fields. `checks` run on a field's value
    once it is valid (DRF's `validate_<field>`); `final` on the whole once every field is
    (DRF's `validate`). `name` names its schema component (a nested record's)."""

    def __init__(
        self,
        fields: dict[str, Field],
        *,
        name: str = "",
        checks: Mapping[str, Callable[[Any], Any]] | None = None,
        final: Callable[[dict], dict] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.name = name
        self.fields = fields
        self.checks = checks or {}
        self.final = final
        # What `convert` needs of each field, in the fields' order, looked up once.
        self.steps = tuple(
            (name, field.required, field.clean, self.checks.get(name))
            for name, field in fields.items()
        )

    def convert(self, value: Any, partners: Mapping) -> dict:
        if type(value) is not dict and not isinstance(value, Mapping):
            message = NOT_A_DICT.format(datatype=type(value).__name__)
            raise Invalid({NON_FIELD_ERRORS: [message]})
        result, errors = {}, {}
        get = value.get
        for name, required, clean, check in self.steps:
            given = get(name, MISSING)
            if given is MISSING and not required:
                continue  # what every field's `clean` does (raising _Skip), without raising
            try:
                cleaned = clean(given, partners)
                if check is not None:
                    cleaned = check(cleaned)
            except Invalid as error:
                errors[name] = error.detail
            except _Skip:
                pass
            else:
                result[name] = cleaned
        if errors:
            raise Invalid(errors)
        if self.final is not None:
            result = self.final(result)
        return result

    def validate(self, data: Any, partners: Mapping | None = None) -> dict:
        """The validated data of a whole event; raises Invalid with a dict of errors."""
        if type(data) is not dict and not isinstance(data, Mapping):
            message = NOT_A_DICT.format(datatype=type(data).__name__)
            raise Invalid({NON_FIELD_ERRORS: [message]})
        return self.convert(data, partners or {})

    @functools.cached_property
    def partner_fields(self) -> tuple[str, ...]:
        """The names of its fields that name a partner by code."""
        return tuple(n for n, f in self.fields.items() if isinstance(f, PartnerCode))


class ListOf(Field):
    """A JSON array of records (DRF's `ListSerializer`); item errors come by the position
    of each bad item (DRF's LIST_SERIALIZER_ERRORS_AS_DICT, its default)."""

    def __init__(self, child: Field, *, min_length: int, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.child, self.min_length, self.max_length = child, min_length, max_length

    def convert(self, value: Any, partners: Mapping) -> list:
        if not isinstance(value, list):
            message = f'Expected a list of items but got type "{type(value).__name__}".'
            raise Invalid({NON_FIELD_ERRORS: [message]})
        if len(value) > self.max_length:
            message = f"Ensure this field has no more than {self.max_length} elements."
            raise Invalid({NON_FIELD_ERRORS: [message]})
        if len(value) < self.min_length:
            message = f"Ensure this field has at least {self.min_length} elements."
            raise Invalid({NON_FIELD_ERRORS: [message]})
        result, errors = [], {}
        for position, item in enumerate(value):
            try:
                result.append(self.child.clean(item, partners))
            except Invalid as error:
                errors[position] = error.detail
        if errors:
            raise Invalid(errors)
        return result


def places(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


def program_currency(value: str) -> str:
    value = value.upper()
    if value != settings.DEFAULT_CURRENCY:
        raise Invalid([f"Only {settings.DEFAULT_CURRENCY}, the program currency, is accepted."])
    return value


# The largest amount the money columns hold (14 digits, 2 of them decimals).
MONEY_MAX = Decimal("999999999999.99")


def order_total(attrs: Mapping) -> Decimal:
    items = sum(item["quantity"] * item["unit_price"] for item in attrs["items"])
    return items + (attrs.get("shipping") or 0) + (attrs.get("tax") or 0)


def order_amounts(attrs: dict) -> dict:
    """Once every field is valid: no amount with more decimals than the currency has, and
    a total the money columns can hold."""
    allowed = minor_units(attrs.get("currency") or settings.DEFAULT_CURRENCY)
    errors: dict[str, Any] = {}
    items = {}
    if allowed < MONEY_PLACES:  # the fields themselves allow no more than MONEY_PLACES
        for name in ("discount", "shipping", "tax"):
            if name in attrs and places(attrs[name]) > allowed:
                errors[name] = [f"At most {allowed} decimal places."]
        items = {
            str(n): {"unit_price": [f"At most {allowed} decimal places."]}
            for n, item in enumerate(attrs["items"])
            if places(item["unit_price"]) > allowed
        }
    if items:
        errors["items"] = items
    elif order_total(attrs) > MONEY_MAX:
        errors["items"] = [
            f"The order's total (items, shipping and tax) may be at most {MONEY_MAX:,}."
        ]
    if errors:
        raise Invalid(errors)
    return attrs


EVENT_FIELDS: dict[str, Field] = {
    "event_id": Text(max_length=100, checks=[event_id_validator]),
    "occurred_at": When(
        required=False, help_text="ISO 8601; now when left out; at most a day ahead."
    ),
}
CONTACT = Record(
    {
        "email": Email(max_length=254),
        "first_name": Text(max_length=100, required=False, allow_blank=True),
        "last_name": Text(max_length=100, required=False, allow_blank=True),
    },
    name="Contact",
)
PARTNER_CODE = "A partner's code (any case)."
COUPON_CODE = (
    "A coupon code the customer used (any case): its partner is credited after an explicit"
    " partner and before the cookie; an unknown or inactive coupon is ignored and traced."
)


class Token(Field):
    """The visitor's rp_ref value: never an error, whatever it holds (`token_kept`)."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def clean(self, value: Any, partners: Mapping) -> Any:
        if value is MISSING:
            raise _Skip
        return token_kept(value)

    def convert(self, value: Any, partners: Mapping) -> str:
        return token_kept(value)


TRACKED_FIELDS: dict[str, Field] = {
    **EVENT_FIELDS,
    "contact": CONTACT,
    "tracking_token": Token(
        help_text=(
            "The rp_ref value the visitor carried (cookie or landing-page query), passed on "
            "as it is. Never refused: a value that is not a valid token counts as none."
        )
    ),
    "ip": IP(required=False, allow_null=True),
}
WEB_FORM = Record(
    {
        **TRACKED_FIELDS,
        "form": Text(max_length=100, required=False, allow_blank=True),
        "lead_partner": PartnerCode(required=False, allow_null=True, help_text=PARTNER_CODE),
    },
    name="WebFormEvent",
)
ITEM = Record(
    {
        "sku": Text(max_length=100),
        "description": Text(max_length=500, required=False, allow_blank=True),
        "quantity": Integer(min_value=1, max_value=1_000_000),
        "unit_price": Money(),
    },
    name="Item",
)
SUBSCRIPTION = Record(
    {
        "id": Text(max_length=100, help_text="The subscription's id in the shop."),
        "cycle": Integer(
            min_value=1, max_value=1_000_000, help_text="1: the first payment; 2, 3, ...: renewals."
        ),
    },
    name="Subscription",
    required=False,
    allow_null=True,
    help_text=(
        "The subscription this order pays: a renewal (cycle 2 and on) is credited"
        " to the partners of the subscription's first order, and earns what the program pays"
        " renewals."
    ),
)
ORDER = Record(
    {
        **TRACKED_FIELDS,
        "currency": Text(min_length=3, max_length=3, required=False),
        "items": ListOf(ITEM, min_length=1, max_length=MAX_ITEMS),
        "discount": Money(required=False),
        "shipping": Money(required=False),
        "tax": Money(required=False),
        "sale_partner": PartnerCode(required=False, allow_null=True, help_text=PARTNER_CODE),
        "lead_partner": PartnerCode(required=False, allow_null=True, help_text=PARTNER_CODE),
        # Never an error beyond its length: an unknown coupon is ignored, and traced.
        "coupon": Text(
            max_length=64,
            required=False,
            allow_blank=True,
            allow_null=True,
            help_text=COUPON_CODE,
        ),
        "subscription": SUBSCRIPTION,
    },
    name="OrderEvent",
    checks={"currency": program_currency},
    final=order_amounts,
)
REFUND = Record(
    {
        **EVENT_FIELDS,
        "order_id": Text(max_length=100, help_text="The order's event_id."),
        "amount": Money(
            required=False, allow_null=True, help_text="Left out: all that is not yet refunded."
        ),
    },
    name="RefundEvent",
)
PAYMENT = Record(
    {
        **EVENT_FIELDS,
        "order_id": Text(max_length=100, help_text="The order's event_id."),
        "amount": Money(help_text="What the customer paid; at most what is left to pay."),
    },
    name="PaymentEvent",
)


def codes_named(record: Record, data: Any) -> set[str]:
    """The lower-cased partner codes an event names, to read before validating it."""
    if not isinstance(data, Mapping):
        return set()
    return {
        value.lower()
        for name in record.partner_fields
        if isinstance(value := data.get(name), str) and value
    }
