"""JSON shapes of the events intake and the engine's resources (SPEC §6).

Serializers validate and render; the views hand `validated_data` to `commissions.services`.
The events' fields are declared once, as the plain rules of `commissions.validation`, which
the bulk importer shares and from which `commissions.event_schema` writes their schema.
"""

from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from partners.models import Partner
from partners.serializers import PartnerCodeField
from referral_program.dates import ApiDayField, QueryDayField
from referral_program.db import columns, execute, table

from . import validation
from .lifecycle import commission_status
from .models import Commission, Notification, Payment, PayoutBatch, Referral
from .validation import MONEY_DIGITS, NEGATIVE_ZERO


class NamedPartner(NamedTuple):
    """A partner an event names by code: what the rules check and the engine credits."""

    pk: int
    code: str
    status: str


@lru_cache(maxsize=8)
def _partners_named_sql(count: int) -> str:
    partner = table(Partner)
    return (
        f"SELECT {columns(Partner, ('id', 'code', 'status'))} FROM {partner} "
        f"WHERE LOWER({columns(Partner, ('code',))}) IN ({', '.join(['%s'] * count)})"
    )


def partners_named(codes: Iterable[str]) -> dict[str, NamedPartner]:
    """The partners with these lower-cased codes, by lower-cased code, in one query (the
    unique index on LOWER(code) serves it; a prepared statement, as the intake's)."""
    codes = sorted(set(codes))
    if not codes:
        return {}
    found = execute(_partners_named_sql(len(codes)), codes)
    return {code.lower(): NamedPartner(pk, code, status) for pk, code, status in found}


class ActivePartnerCodeField(PartnerCodeField):
    """A partner named by code that is active: inactive partners are never credited."""

    def to_internal_value(self, data):
        partner = super().to_internal_value(data)
        try:
            return validation.active_partner(partner)
        except validation.Invalid as error:
            raise serializers.ValidationError(error.detail) from None


class EventRulesMixin:
    """Validates an event by the plain rules of `commissions.validation` (the importer's
    too), which also give its schema (`commissions.event_schema.EventRecords`)."""

    rules: validation.Record

    def run_validation(self, data=serializers.empty):
        # The rules are the whole validation: DRF's own pass after `to_internal_value`
        # (read-only defaults, serializer validators) would deep-copy every declared field,
        # nested ones too, on every request, and check nothing (there are no validators).
        is_empty, data = self.validate_empty_values(data)
        return data if is_empty else self.validate(self.to_internal_value(data))

    def to_internal_value(self, data):
        try:
            return self.rules.validate(data, self.partners(data))
        except validation.Invalid as error:
            raise serializers.ValidationError(error.detail) from None

    def partners(self, data) -> dict:
        return {}


class PartnerCodesMixin(EventRulesMixin):
    """Reads every partner its code fields name in one query, before the fields run."""

    def partners(self, data) -> dict:
        return partners_named(validation.codes_named(self.rules, data))


def _no_negative_zero(value) -> None:
    # min_value lets "-0" through; a minus sign on an amount is the sender's mistake.
    if value == 0 and value.is_signed():
        raise serializers.ValidationError(NEGATIVE_ZERO)


def money(**kwargs) -> serializers.DecimalField:
    """A decimal string >= 0, at most 2 decimals (the currency's own limit is checked too)."""
    return serializers.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=2,
        min_value=0,
        validators=[_no_negative_zero],
        **kwargs,
    )


# The events' serializers declare no fields: their records (`rules`) are the one declaration
# of each field, which validates them here and in the importer and gives the OpenAPI schema
# (`commissions.event_schema`).


class WebFormEventSerializer(PartnerCodesMixin, serializers.Serializer):
    rules = validation.WEB_FORM


class OrderEventSerializer(PartnerCodesMixin, serializers.Serializer):
    rules = validation.ORDER


class RefundEventSerializer(EventRulesMixin, serializers.Serializer):
    rules = validation.REFUND


class PaymentEventSerializer(EventRulesMixin, serializers.Serializer):
    rules = validation.PAYMENT


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


class PaymentResultSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    order_id = serializers.CharField()
    paid = serializers.CharField(help_text="This payment's amount.")
    credits = ClawbackBriefSerializer(many=True)
    duplicate = serializers.BooleanField()


class CommissionSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")
    order_id = serializers.CharField(source="order.order_id")
    status = serializers.SerializerMethodField(
        help_text="pending, payable, rejected or paid, at the time of the request. "
        "A clawback or rejection entry is pending, payable or paid with the line it takes back."
    )
    rejection_of = serializers.IntegerField(
        source="clawback_of_id",
        allow_null=True,
        read_only=True,
        help_text="The commission line a clawback or rejection entry takes back.",
    )
    program_version = serializers.IntegerField(
        source="program_version_id",
        allow_null=True,
        read_only=True,
        help_text="The id of the program version whose terms the line was worked out with "
        "(`/api/v1/programs/{id}/versions/`); a clawback or rejection names its line's.",
    )

    credited = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        source="credited_so_far",
        read_only=True,
        help_text="What of `amount` was credited so far: all of it, except on a line of a "
        "program that credits on customer payment, which is credited as the customer pays.",
    )

    def get_status(self, obj: Commission) -> str:
        status = getattr(obj, "status", None)
        return status or commission_status(obj, at=timezone.now())

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
            "credited",
            "currency",
            "trace",
            "occurred_at",
            "status",
            "payable_at",
            "rejected_at",
            "reason",
            "rejection_of",
            "program_version",
        )


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why; the partner sees it.")


class NotificationSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")
    event_kind = serializers.CharField(
        source="event.kind", allow_null=True, help_text="Null for payout emails."
    )
    event_id = serializers.CharField(
        source="event.event_id", allow_null=True, help_text="Null for payout emails."
    )
    batch = serializers.IntegerField(
        source="payment.batch_id",
        allow_null=True,
        default=None,
        help_text="A payout email: the payout batch.",
    )

    class Meta:
        model = Notification
        fields = (
            "id",
            "partner",
            "event_kind",
            "event_id",
            "batch",
            "kind",
            "status",
            "reason",
            "created_at",
            "sent_at",
        )


class ReferralContactSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class ReferralSerializer(serializers.ModelSerializer):
    """A referral history entry; `manual` ones are added by hand (by staff or the API)."""

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
        try:
            return validation.not_too_far_ahead(value)
        except validation.Invalid as error:
            raise serializers.ValidationError(error.detail) from None


class LedgerQuerySerializer(serializers.Serializer):
    start = QueryDayField(required=False, help_text="First day (UTC); empty: all time.")
    end = QueryDayField(required=False, help_text="Last day (UTC), included; empty: no end.")
    currency = serializers.CharField(required=False, min_length=3, max_length=3)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        return attrs


class LedgerEntrySerializer(serializers.Serializer):
    entry = serializers.CharField(
        help_text="commission, clawback, rejection, payment, or payment_returned (a failed "
        "payment's amount back on the balance)"
    )
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
    payable_at = serializers.DateTimeField(
        allow_null=True, help_text="When a commission entry is (or was) payable."
    )
    reason = serializers.CharField(allow_blank=True, help_text="A rejection's reason.")


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
    rejections = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Rejected by staff: subtracted."
    )
    pending = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Unpaid, dated up to the end, still in the hold period at the time of the "
        "request.",
    )
    payable = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Unpaid, dated up to the end, due: what a payout may pay.",
    )
    entries = LedgerEntrySerializer(many=True)


class PaymentSerializer(serializers.ModelSerializer):
    partner = serializers.CharField(source="partner.code")
    id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Null in a draft's preview."
    )
    status = serializers.CharField(
        read_only=True, help_text="draft (a preview), recorded, paid or failed."
    )
    reference = serializers.CharField(
        read_only=True, help_text="The bank's or PayPal's reference, or why it failed."
    )
    payout_method = serializers.CharField(
        read_only=True, help_text="paypal, bank, or empty (no payout details)."
    )

    class Meta:
        model = Payment
        fields = ("partner", "amount", "currency", "id", "status", "reference", "payout_method")


class LeftOutSerializer(serializers.Serializer):
    partner = serializers.CharField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    reason = serializers.CharField()


class PayoutBatchSerializer(serializers.ModelSerializer):
    payments = serializers.SerializerMethodField()
    start = ApiDayField(help_text="First day (UTC).")
    end = ApiDayField(help_text="Last day (UTC), included.")
    minimum = money(required=False)
    draft = serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="true: answer a preview (status draft) that records nothing until "
        "POST /api/v1/payouts/{id}/confirm/.",
    )
    require_payout_details = serializers.BooleanField(
        write_only=True,
        required=False,
        allow_null=True,
        default=None,
        help_text="Leave out partners without payout details. Default: true for a draft, "
        "false for a batch recorded at once (every partner owed is paid, as before drafts).",
    )
    left_out = LeftOutSerializer(many=True, read_only=True)

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
            "status",
            "confirmed_at",
            "left_out",
            "draft",
            "require_payout_details",
        )
        read_only_fields = (
            "id",
            "created_at",
            "created_by",
            "total",
            "payments",
            "status",
            "confirmed_at",
            "left_out",
        )

    def validate(self, attrs):
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        return attrs

    @extend_schema_field(PaymentSerializer(many=True))
    def get_payments(self, batch: PayoutBatch) -> list[dict]:
        """A confirmed batch's payments; a draft's preview (no id, status draft)."""
        if batch.is_draft:
            return [
                {
                    "partner": row["partner"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                    "id": None,
                    "status": "draft",
                    "reference": "",
                    "payout_method": "",
                }
                for row in batch.preview
            ]
        payments = [p for p in batch.payments.all() if p.reverses_id is None]
        return PaymentSerializer(payments, many=True).data


class PaymentMarkSerializer(serializers.Serializer):
    reference = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="paid: the bank's or PayPal's reference (required); failed: why.",
    )
