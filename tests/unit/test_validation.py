"""The plain field rules (commissions.validation) answer exactly as DRF's fields did.

The reference serializers below are the events' serializers as they were declared before
the rules moved out of DRF (DRF fields, `validate_<field>` and `validate` methods). On
generated events, valid and not, both must give the same validated data or the same errors
under the same names, in the same order.
"""

import json
from datetime import UTC, datetime, timedelta
from datetime import timezone as zones
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.validators import validate_email
from django.utils import timezone
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework import serializers

from commissions import validation
from commissions.money import minor_units
from commissions.validation import MAX_ITEMS, MONEY_DIGITS, event_id_validator
from partners.serializers import PartnerCodeField
from referral_program.parsers import token_kept

PARTNERS = {
    "jane": SimpleNamespace(pk=1, code="Jane", status="active"),
    "gone": SimpleNamespace(pk=2, code="gone", status="inactive"),
    "newbie": SimpleNamespace(pk=3, code="newbie", status="pending"),
}


# --- The reference: DRF's fields, as the serializers declared them -------------------------


class RefPartnerField(PartnerCodeField):
    def to_internal_value(self, data):
        found = self.parent.partners_by_code
        if not isinstance(data, str):
            partner = super().to_internal_value(data)  # "Invalid value." without a query
        else:
            partner = found.get(data.lower())
            if partner is None:
                self.fail("does_not_exist", slug_name="code", value=data)
        if partner.status != "active":
            raise serializers.ValidationError(f"Partner {partner.code} is not active.")
        return partner


class RefCodes:
    partners_by_code = PARTNERS


def _no_negative_zero(value) -> None:
    if value == 0 and value.is_signed():
        raise serializers.ValidationError('Must not be negative ("-0" has a minus sign).')


def money(**kwargs):
    return serializers.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=2,
        min_value=0,
        validators=[_no_negative_zero],
        **kwargs,
    )


class RefContact(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)


class RefEvent(serializers.Serializer):
    event_id = serializers.CharField(max_length=100, validators=[event_id_validator])
    occurred_at = serializers.DateTimeField(required=False)

    def validate_occurred_at(self, value):
        if value > timezone.now() + timedelta(days=1):
            raise serializers.ValidationError("Must not be more than a day in the future.")
        return value


class RefToken(serializers.Field):
    """Any value, never an error: text as `token_kept` keeps it, anything else none."""

    def validate_empty_values(self, data):
        if data is None:
            return True, ""
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        return token_kept(data)


class RefTracked(RefEvent):
    contact = RefContact()
    tracking_token = RefToken(required=False)
    ip = serializers.IPAddressField(required=False, allow_null=True)


class RefWebForm(RefCodes, RefTracked):
    form = serializers.CharField(max_length=100, required=False, allow_blank=True)
    lead_partner = RefPartnerField(required=False, allow_null=True)


class RefItem(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    unit_price = money()


MONEY_MAX = Decimal("999999999999.99")


def _places(value) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


class RefOrder(RefCodes, RefTracked):
    currency = serializers.CharField(min_length=3, max_length=3, required=False)
    items = RefItem(many=True, min_length=1, max_length=MAX_ITEMS)
    discount = money(required=False)
    shipping = money(required=False)
    tax = money(required=False)
    sale_partner = RefPartnerField(required=False, allow_null=True)
    lead_partner = RefPartnerField(required=False, allow_null=True)

    def validate_currency(self, value):
        value = value.upper()
        if value != settings.DEFAULT_CURRENCY:
            raise serializers.ValidationError(
                f"Only {settings.DEFAULT_CURRENCY}, the program currency, is accepted."
            )
        return value

    def validate(self, attrs):
        places = minor_units(attrs.get("currency") or settings.DEFAULT_CURRENCY)
        errors = {}
        for name in ("discount", "shipping", "tax"):
            if name in attrs and _places(attrs[name]) > places:
                errors[name] = [f"At most {places} decimal places."]
        items = {
            str(n): {"unit_price": [f"At most {places} decimal places."]}
            for n, item in enumerate(attrs["items"])
            if _places(item["unit_price"]) > places
        }
        if items:
            errors["items"] = items
        else:
            total = sum(i["quantity"] * i["unit_price"] for i in attrs["items"])
            if total + (attrs.get("shipping") or 0) + (attrs.get("tax") or 0) > MONEY_MAX:
                errors["items"] = [
                    f"The order's total (items, shipping and tax) may be at most {MONEY_MAX:,}."
                ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class RefRefund(RefEvent):
    order_id = serializers.CharField(max_length=100)
    amount = money(required=False, allow_null=True)


# --- Generated events ------------------------------------------------------------------------

odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=6),
    st.just(""),
    st.just("   "),
)
tricky_text = st.sampled_from(
    ["a\x00b", "\ud800x", " padded ", "é", "x" * 101, "x" * 254, "y" * 4097, "1.0", "0"]
)


def sometimes(good):
    return st.one_of(good, good, odd, tricky_text)


event_ids = sometimes(
    st.one_of(st.from_regex(r"[\x21-\x7e]{1,12}", fullmatch=True), st.just("has space"))
)
emails = sometimes(
    st.sampled_from(
        [
            "ada@example.com",
            " Ada@Example.com ",
            "a..b@example.com",
            "a@localhost",
            "a@[127.0.0.1]",
            "no-at.example.com",
            "a@b",
            "x" * 250 + "@example.com",
            '"quoted"@example.com',
        ]
    )
)
names = sometimes(st.text(max_size=5))
whens = sometimes(
    st.sampled_from(
        [
            "2026-10-01T10:00:00Z",
            "2026-10-01T10:00:00.123456+05:30",
            "2026-10-01",
            "2026-10-01 10:00",
            "2026-13-01T00:00:00Z",
            "iso-8601",
            "2999-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "yesterday",
        ]
    )
)
ips = sometimes(
    st.sampled_from(
        ["192.0.2.1", " 192.0.2.1 ", "::ffff:192.0.2.1", "2001:DB8::1", "1.2.3", "::1", "x:y"]
    )
)
amounts = sometimes(
    st.one_of(
        st.sampled_from(
            [
                "10.00",
                "1.5",
                "1.005",
                "1.000",
                "-1",
                "-0",
                "-0.00",
                "1e2",
                "1E+20",
                "NaN",
                "sNaN",
                "-inf",
                " 7 ",
                "1_000",
                "999999999999.99",
                "9999999999999",
                "0.001",
                "1" * 1001,
                10,
                10.5,
            ]
        ),
        st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    )
)
quantities = sometimes(
    st.one_of(
        st.sampled_from([1, 0, 1_000_000, 1_000_001, "2", "2.0", " 3 ", "2.5", 2.0, "1" * 1001]),
        st.integers(min_value=-5, max_value=2_000_000),
    )
)
codes = sometimes(st.sampled_from(["jane", "JANE", "gone", "newbie", "nobody", ""]))
currencies = sometimes(st.sampled_from(["USD", "usd", " usd ", "EUR", "US", "USDX"]))
contacts = sometimes(
    st.fixed_dictionaries(
        {"email": emails}, optional={"first_name": names, "last_name": names, "extra": odd}
    )
)
items = st.fixed_dictionaries(
    {"sku": sometimes(st.text(min_size=1, max_size=4)), "quantity": quantities},
    optional={"description": names, "unit_price": amounts},
)
item_lists = sometimes(st.lists(sometimes(items), max_size=3))
base = {"event_id": event_ids}
tracked = {"contact": contacts}
tracked_optional = {"occurred_at": whens, "tracking_token": names, "ip": ips}

web_forms = st.fixed_dictionaries(
    {**base, **tracked}, optional={**tracked_optional, "form": names, "lead_partner": codes}
)
orders = st.fixed_dictionaries(
    {**base, **tracked, "items": item_lists},
    optional={
        **tracked_optional,
        "currency": currencies,
        "discount": amounts,
        "shipping": amounts,
        "tax": amounts,
        "sale_partner": codes,
        "lead_partner": codes,
    },
)
refunds = st.fixed_dictionaries(
    {**base, "order_id": event_ids}, optional={"occurred_at": whens, "amount": amounts}
)


def plain(value):
    """Errors as the API's JSON shows them (DRF's ErrorDetail and Return* types are str,
    dict and list underneath)."""
    return json.loads(json.dumps(value))


def compare(reference_class, rules, data):
    reference = reference_class(data=data)
    if reference.is_valid():
        assert rules.validate(data, PARTNERS) == reference.validated_data
        return
    with pytest.raises(validation.Invalid) as raised:
        rules.validate(data, PARTNERS)
    assert plain(raised.value.detail) == plain(reference.errors)
    # the same fields in the same order (the importer reports them in this order)
    assert list(plain(raised.value.detail)) == list(plain(reference.errors))


examples = hypothesis_settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@examples
@given(web_forms)
def test_web_forms_validate_as_drf_did(data):
    compare(RefWebForm, validation.WEB_FORM, data)


@examples
@given(orders)
def test_orders_validate_as_drf_did(data):
    compare(RefOrder, validation.ORDER, data)


@examples
@given(refunds)
def test_refunds_validate_as_drf_did(data):
    compare(RefRefund, validation.REFUND, data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([], id="a-list"),
        pytest.param("order", id="a-string"),
        pytest.param({"items": [{"sku": "A", "quantity": 1}] * (MAX_ITEMS + 1)}, id="too-many"),
        pytest.param(
            {
                "event_id": "o1",
                "contact": {"email": "a@example.com"},
                "items": [{"sku": "A", "quantity": 1_000_000, "unit_price": "999999999.99"}],
            },
            id="total-too-large",
        ),
        pytest.param(
            {
                "event_id": "o1",
                "contact": {"email": "a@example.com"},
                "items": [{"sku": "A", "quantity": 2, "unit_price": "1.10"}, None, "x"],
            },
            id="items-null-and-text",
        ),
    ],
)
def test_edge_cases_validate_as_drf_did(data):
    compare(RefOrder, validation.ORDER, data)


def test_the_one_currency_with_fewer_places_is_checked_like_drf(settings):
    settings.DEFAULT_CURRENCY = "JPY"
    data = {
        "event_id": "o1",
        "contact": {"email": "a@example.com"},
        "currency": "jpy",
        "discount": "1.50",
        "tax": "2",
        "items": [{"sku": "A", "quantity": 1, "unit_price": "100.10"}],
    }
    compare(RefOrder, validation.ORDER, data)
    with pytest.raises(validation.Invalid) as raised:
        validation.ORDER.validate(data, PARTNERS)
    assert raised.value.detail == {
        "discount": ["At most 0 decimal places."],
        "items": {"0": {"unit_price": ["At most 0 decimal places."]}},
    }


# --- The fast paths: each answers as the full rule (DRF's field) does -------------------------


def exactly(value):
    """A value with its type and its form: 1.5 and 1.50, or the same time in two zones,
    differ."""
    return (type(value), repr(value), getattr(value, "tzinfo", None))


plain_amounts = st.tuples(
    st.sampled_from(["", " ", "\t"]),
    st.from_regex(r"[0-9]{1,13}(\.[0-9]{0,3})?", fullmatch=True),
    st.sampled_from(["", " ", "\n"]),
).map("".join)


@examples
@given(plain_amounts)
def test_an_amount_is_converted_as_drf_converts_it(text):
    field = validation.Money()
    if validation.PLAIN_AMOUNT.match(text.strip()):  # on the fast path
        assert exactly(field.clean(text, {})) == exactly(money().run_validation(text))
        return
    try:
        expected = exactly(money().run_validation(text))
    except serializers.ValidationError as error:
        with pytest.raises(validation.Invalid) as raised:
            field.clean(text, {})
        assert raised.value.detail == plain(error.detail)
    else:
        assert exactly(field.clean(text, {})) == expected


def test_the_usual_amounts_take_the_fast_path():
    assert all(validation.PLAIN_AMOUNT.match(text) for text in ["0", "4.99", "151.25", "7.5"])
    assert not any(validation.PLAIN_AMOUNT.match(text) for text in ["1e2", "-1", "1.005", "٣"])


email_texts = st.one_of(
    st.emails().map(lambda text: text[:330]),
    st.tuples(
        st.one_of(
            st.from_regex(r"[a-zA-Z0-9.+\-\"@ _\\]{0,12}", fullmatch=True),
            st.text(max_size=6),
        ),
        st.one_of(
            st.sampled_from(
                [
                    "example.com",
                    "EXAMPLE.COM",
                    "buyers.example",
                    "localhost",
                    "[127.0.0.1]",
                    "b",
                    "xn--bcher-kva.example",
                    "-a.com",
                    "a-.com",
                    "a.b-",
                    "a..com",
                    "é.example",
                ]
            ),
            st.from_regex(r"[a-z0-9.\-\[\]:]{0,20}", fullmatch=True),
        ),
    ).map("@".join),
    st.text(max_size=20),
)


@examples
@given(email_texts)
def test_an_email_the_fast_path_takes_the_validator_takes(text):
    if validation.email_plainly_valid(text):
        validate_email(text)  # raises if it does not take it


def test_the_usual_emails_take_the_fast_path():
    assert validation.email_plainly_valid("ada@example.com")
    assert validation.email_plainly_valid("v-0@buyers.example")
    for text in ["a@localhost", "a@[127.0.0.1]", "a..b@example.com", "a@b", "no-at"]:
        assert not validation.email_plainly_valid(text)  # the validator itself decides


def _offsets():
    return st.one_of(
        st.none(),
        st.just(UTC),
        st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
            lambda minutes: zones(timedelta(minutes=minutes))
        ),
    )


times = st.one_of(
    st.builds(
        lambda at, sep, spec: at.isoformat(sep=sep, timespec=spec).replace("+00:00", "Z"),
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(2025, 12, 31),
            timezones=_offsets(),
        ),
        st.sampled_from(["T", " "]),
        st.sampled_from(["auto", "minutes", "seconds", "milliseconds", "microseconds"]),
    ),
    st.text(alphabet="0123456789-:T .+Z", max_size=26),
)


@examples
@given(times)
def test_a_time_is_read_as_drf_reads_it(text):
    field = validation.When()
    try:
        expected = serializers.DateTimeField().run_validation(text)
    except serializers.ValidationError as error:
        with pytest.raises(validation.Invalid) as raised:
            field.clean(text, {})
        assert raised.value.detail == plain(error.detail)
    else:
        assume(expected <= timezone.now() + timedelta(days=1))  # else too far ahead: ours only
        assert exactly(field.clean(text, {})) == exactly(expected)
