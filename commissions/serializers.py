"""JSON shapes of the events intake and the engine's resources (SPEC §6).

Serializers validate and render; the views hand `validated_data` to `commissions.services`.
"""

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

from partners.models import Partner, PartnerStatus
from partners.serializers import PartnerCodeField

from .models import Commission, Notification, Payment, PayoutBatch, Referral
from .money import minor_units

MAX_ITEMS = 1000
# Up to a trillion in the currency, with the cents; what the ledger columns hold.
MONEY_DIGITS = 14
event_id_validator = RegexValidator(
    r"^[\x21-\x7e]{1,100}\Z", "Use 1 to 100 visible ASCII characters (no spaces)."
)


class ActivePartnerCodeField(PartnerCodeField):
    """A partner named by code that is active: inactive partners are never credited.

    In a `PartnerCodesMixin` serializer the partners come from the one query it makes for
    all its codes; anywhere else this field looks its code up itself.
    """

    default_error_messages = {"inactive": "Partner {value} is not active."}

    def to_internal_value(self, data):
        found = getattr(self.parent, "partners_by_code", None)
        if found is None or not isinstance(data, str):
            partner = super().to_internal_value(data)
        else:
            partner = found.get(data.lower())
            if partner is None:
                self.fail("does_not_exist", slug_name="code", value=data)
        if partner.status != PartnerStatus.ACTIVE:
            self.fail("inactive", value=partner.code)
        return partner


class PartnerCodesMixin:
    """Reads every partner its code fields name in one query, before the fields run."""

    partners_by_code: dict[str, Partner] | None = None

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            names = [n for n, f in self.fields.items() if isinstance(f, ActivePartnerCodeField)]
            codes = {data[n].lower() for n in names if isinstance(data.get(n), str)}
            self.partners_by_code = {}
            if codes:
                # Raw SQL (a third of the ORM's CPU; the unique index on LOWER(code) serves it).
                found = Partner.objects.raw(
                    f"SELECT * FROM {Partner._meta.db_table} WHERE LOWER(code) IN "
                    f"({', '.join(['%s'] * len(codes))})",
                    sorted(codes),
                )
                self.partners_by_code = {p.code.lower(): p for p in found}
        return super().to_internal_value(data)


def _no_negative_zero(value) -> None:
    # min_value lets "-0" through; a minus sign on an amount is the sender's mistake.
    if value == 0 and value.is_signed():
        raise serializers.ValidationError('Must not be negative ("-0" has a minus sign).')


def money(**kwargs) -> serializers.DecimalField:
    """A decimal string >= 0, at most 2 decimals (the currency's own limit is checked too)."""
    return serializers.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=2,
        min_value=0,
        validators=[_no_negative_zero],
        **kwargs,
    )


class ContactSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)


class EventSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=100, validators=[event_id_validator])
    occurred_at = serializers.DateTimeField(
        required=False, help_text="ISO 8601; now when left out; at most a day ahead."
    )

    def validate_occurred_at(self, value):
        if value > timezone.now() + timedelta(days=1):
            raise serializers.ValidationError("Must not be more than a day in the future.")
        return value


class TrackedEventSerializer(EventSerializer):
    contact = ContactSerializer()
    tracking_token = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4096,
        trim_whitespace=True,
        help_text="The rp_ref value the visitor carried (cookie or landing-page query).",
    )
    ip = serializers.IPAddressField(required=False, allow_null=True)


class WebFormEventSerializer(PartnerCodesMixin, TrackedEventSerializer):
    form = serializers.CharField(max_length=100, required=False, allow_blank=True)
    lead_partner = ActivePartnerCodeField(required=False, allow_null=True)


class ItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    unit_price = money()


class OrderEventSerializer(PartnerCodesMixin, TrackedEventSerializer):
    currency = serializers.CharField(min_length=3, max_length=3, required=False)
    items = ItemSerializer(many=True, min_length=1, max_length=MAX_ITEMS)
    discount = money(required=False)
    shipping = money(required=False)
    tax = money(required=False)
    sale_partner = ActivePartnerCodeField(required=False, allow_null=True)
    lead_partner = ActivePartnerCodeField(required=False, allow_null=True)

    def validate_currency(self, value: str) -> str:
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
        elif _order_total(attrs) > MONEY_MAX:
            errors["items"] = [
                f"The order's total (items, shipping and tax) may be at most {MONEY_MAX:,}."
            ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


# The largest amount the money columns hold (14 digits, 2 of them decimals).
MONEY_MAX = Decimal("999999999999.99")


def _order_total(attrs) -> Decimal:
    items = sum(item["quantity"] * item["unit_price"] for item in attrs["items"])
    return items + (attrs.get("shipping") or 0) + (attrs.get("tax") or 0)


def _places(value) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


class RefundEventSerializer(EventSerializer):
    order_id = serializers.CharField(max_length=100, help_text="The order's event_id.")
    amount = money(
        required=False, allow_null=True, help_text="Left out: all that is not yet refunded."
    )


class WebFormResultSerializer(serializers.Serializer):
    """For the schema: what a web-form event answers."""

    event_id = serializers.CharField()
    contact_id = serializers.IntegerField()
    lead_partner = serializers.CharField(allow_null=True)
    attribution = serializers.DictField()
    duplicate = serializers.BooleanField()


class CommissionBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    partner = serializers.CharField()
    level = serializers.IntegerField()
    kind = serializers.CharField()
    amount = serializers.CharField()
    currency = serializers.CharField()


class OrderResultSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    order_id = serializers.CharField()
    base = serializers.CharField()
    lead_partner = serializers.CharField(allow_null=True)
    sale_partner = serializers.CharField(allow_null=True)
    attribution = serializers.DictField()
    commissions = CommissionBriefSerializer(many=True)
    duplicate = serializers.BooleanField()


class ClawbackBriefSerializer(serializers.Serializer):
    partner = serializers.CharField()
    level = serializers.IntegerField()
    kind = serializers.CharField()
    amount = serializers.CharField()


class RefundResultSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    order_id = serializers.CharField()
    refunded = serializers.CharField()
    clawbacks = ClawbackBriefSerializer(many=True)
    duplicate = serializers.BooleanField()


class CommissionSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")
    order_id = serializers.CharField(source="order.order_id")

    class Meta:
        model = Commission
        fields = (
            "id",
            "partner",
            "order_id",
            "level",
            "kind",
            "entry",
            "base",
            "amount",
            "currency",
            "trace",
            "occurred_at",
        )


class NotificationSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")
    event_kind = serializers.CharField(source="event.kind")
    event_id = serializers.CharField(source="event.event_id")

    class Meta:
        model = Notification
        fields = (
            "id",
            "partner",
            "event_kind",
            "event_id",
            "kind",
            "status",
            "reason",
            "created_at",
            "sent_at",
        )


class ReferralContactSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class ReferralSerializer(serializers.ModelSerializer):
    """A referral history entry; staff add `manual` ones (SPEC §4)."""

    contact = ReferralContactSerializer()
    partner = ActivePartnerCodeField()
    occurred_at = serializers.DateTimeField(
        write_only=True, required=False, help_text="When the referral happened; now if left out."
    )

    class Meta:
        model = Referral
        fields = (
            "id",
            "contact",
            "partner",
            "source",
            "occurred_at",
            "set_at",
            "expires_at",
            "created_by",
        )
        read_only_fields = ("source", "set_at", "expires_at", "created_by")

    def validate_occurred_at(self, value):
        return EventSerializer.validate_occurred_at(self, value)


class LedgerQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (UTC); empty: all time.")
    end = serializers.DateField(required=False, help_text="Last day (UTC), included.")
    currency = serializers.CharField(required=False, min_length=3, max_length=3)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        return attrs


class LedgerEntrySerializer(serializers.Serializer):
    entry = serializers.CharField(help_text="commission, clawback or payment")
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Signed: what the entry does to the balance."
    )
    currency = serializers.CharField()
    order_id = serializers.CharField(allow_null=True)
    level = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField(allow_null=True)
    batch = serializers.IntegerField(allow_null=True)


class LedgerSerializer(serializers.Serializer):
    partner = serializers.CharField()
    currency = serializers.CharField()
    start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True)
    beginning_balance = serializers.DecimalField(max_digits=14, decimal_places=2)
    earned = serializers.DecimalField(max_digits=14, decimal_places=2)
    clawbacks = serializers.DecimalField(max_digits=14, decimal_places=2)
    payments = serializers.DecimalField(max_digits=14, decimal_places=2)
    ending_balance = serializers.DecimalField(max_digits=14, decimal_places=2)
    entries = LedgerEntrySerializer(many=True)


class PaymentSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")

    class Meta:
        model = Payment
        fields = ("partner", "amount", "currency")


class PayoutBatchSerializer(serializers.ModelSerializer):
    payments = PaymentSerializer(many=True, read_only=True)
    minimum = money(required=False)

    class Meta:
        model = PayoutBatch
        fields = (
            "id",
            "start",
            "end",
            "method",
            "minimum",
            "created_at",
            "created_by",
            "total",
            "payments",
        )
        read_only_fields = ("id", "created_at", "created_by", "total", "payments")

    def validate(self, attrs):
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        return attrs
