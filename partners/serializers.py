"""JSON shapes of the partners app's API resources (SPEC §6).

Serializers validate and render; they never save. The views hand `validated_data` to
`partners.services`, the one place that writes.
"""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import (
    DEFAULTS_FIELDS,
    LEVELS,
    SPEC_DEFAULTS_FIELDS,
    STRUCTURAL_FIELDS,
    Coupon,
    Partner,
    ProductRate,
    ProductRateLevel,
    Program,
    ProgramRate,
    ReferralDefaults,
    TrackingLink,
)
from .selectors import partner_link
from .validators import partner_code_validator


class PartnerCodeField(serializers.SlugRelatedField):
    """A partner named by code, matched without regard to case."""

    default_error_messages = {"does_not_exist": "No partner has the code {value}."}

    def __init__(self, **kwargs):
        # Without it the docs would describe the partner's own code field ("made from the
        # name when left empty"), which says nothing to a sender naming a partner.
        kwargs.setdefault("help_text", "A partner's code (any case).")
        super().__init__(slug_field="code", queryset=Partner.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        partner = self.get_queryset().by_code(data).first()
        if partner is None:
            self.fail("does_not_exist", slug_name="code", value=data)
        return partner


class PartnerCodes(OpenApiSerializerFieldExtension):
    """The schema of a `PartnerCodeField`: one that may be null takes "" as null, as DRF's
    related fields do, so no `minLength` (found by `schemathesis --checks all`)."""

    target_class = PartnerCodeField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.allow_null and schema.get("type") == "string":
            schema.pop("minLength", None)
        return schema


class DefaultsSerializer(serializers.ModelSerializer):
    """The Referral Partner Defaults. PUT needs every field, PATCH any of them."""

    signup_parent_partner = PartnerCodeField(
        allow_null=True,
        required=False,
        help_text=ReferralDefaults._meta.get_field("signup_parent_partner").help_text,
    )

    class Meta:
        model = ReferralDefaults
        fields = DEFAULTS_FIELDS
        # Every field has a model default, which would make it optional; a PUT sets the
        # whole record, so all are required (PATCH skips the check).
        # Fields added after SPEC §2 stay optional, so PUTs written against §2 keep working.
        extra_kwargs = {name: {"required": True} for name in SPEC_DEFAULTS_FIELDS}


class DefaultsSavedSerializer(DefaultsSerializer):
    """The defaults after a save, and how many program records took their structure."""

    programs_updated = serializers.SerializerMethodField(
        help_text="How many program records were given the structural fields."
    )

    class Meta(DefaultsSerializer.Meta):
        fields = (*DEFAULTS_FIELDS, "programs_updated")

    def get_programs_updated(self, defaults: ReferralDefaults) -> int:
        return self.context["programs_updated"]


class PartnerSerializer(serializers.ModelSerializer):
    """A partner. Needs `defaults` (ReferralDefaults) in its context, to make `link`."""

    # Optional and blank-able: an empty code is made from the name on create. Whether a
    # code is free (without regard to case) is the service's rule.
    code = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        validators=[partner_code_validator],
        help_text=Partner._meta.get_field("code").help_text,
    )
    parent = PartnerCodeField(
        allow_null=True,
        required=False,
        help_text="The code of the partner who recruited this one (paid at level 2).",
    )
    link = serializers.SerializerMethodField(
        help_text="The partner's default link, with the current code prefix and link URL."
    )
    programs = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        queryset=Program.objects.all(),
        help_text="The ids of the programs the partner is enrolled in, by priority (lower "
        "first, then id): each order item is paid by the first that covers it. Empty: the "
        "default program. Writing it enrolls the partner in exactly these; `program` then "
        "reads as the first of them.",
    )

    class Meta:
        model = Partner
        fields = (
            "code",
            "name",
            "email",
            "parent",
            "program",
            "status",
            "cookie_days",
            "notify_lead",
            "notify_sale",
            "link",
            "programs",
        )
        extra_kwargs = {
            "program": {
                "help_text": "The enrolled program with the lowest priority (null: none, the "
                "default program pays). Writing another enrolls the partner in exactly that "
                "one."
            }
        }

    def validate_programs(self, programs: list[Program]) -> list[Program]:
        ids = [program.pk for program in programs]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Give each program once.")
        return programs

    def validate(self, attrs):
        if "programs" in attrs and "program" in attrs:
            first = min(attrs["programs"], key=lambda p: (p.priority, p.pk), default=None)
            if attrs["program"] != first:
                raise serializers.ValidationError(
                    {
                        "program": "Give `programs` or `program`, or a `program` that is the "
                        "first of `programs` by priority."
                    }
                )
        return attrs

    @extend_schema_field(OpenApiTypes.URI)
    def get_link(self, partner: Partner) -> str:
        return partner_link(partner, defaults=self.context["defaults"])


class ProgramRateSerializer(serializers.ModelSerializer):
    # A range rather than the model's choices: the defaults' `levels` has the same choice
    # set, and one enum under two names in the schema would only confuse.
    level = serializers.IntegerField(min_value=min(LEVELS), max_value=max(LEVELS))

    class Meta:
        model = ProgramRate
        fields = ("level", "lead_amount", "lead_percent", "sale_amount", "sale_percent")

    def validate(self, attrs):
        # In a PATCH nothing is required, but a rate without its level means nothing.
        if "level" not in attrs:
            raise serializers.ValidationError({"level": "Name the level (1, 2 or 3)."})
        return attrs


def _levels_once(rates: list[dict]) -> list[dict]:
    levels = [rate["level"] for rate in rates]
    twice = sorted({level for level in levels if levels.count(level) > 1})
    if twice:
        raise serializers.ValidationError(
            f"Give each level once (level {', '.join(map(str, twice))} is repeated)."
        )
    return rates


class ProductRateLevelSerializer(ProgramRateSerializer):
    class Meta:
        model = ProductRateLevel
        fields = ProgramRateSerializer.Meta.fields


class ProductRateSerializer(serializers.ModelSerializer):
    """A program's rates for one sku, the shape of the program's own."""

    sku = serializers.CharField(
        max_length=100, help_text="The sku of the order items paid at these rates."
    )
    rates = ProductRateLevelSerializer(
        many=True,
        required=False,
        help_text="The rate per level 1..3; levels left out pay 0.",
    )

    class Meta:
        model = ProductRate
        fields = (
            "sku",
            "rates",
            "unused_lead_amount",
            "unused_lead_percent",
            "unused_sale_amount",
            "unused_sale_percent",
        )

    def validate_rates(self, rates: list[dict]) -> list[dict]:
        return _levels_once(rates)


class ProgramSerializer(serializers.ModelSerializer):
    """A program. Its structural fields are read-only: they follow the defaults."""

    rates = ProgramRateSerializer(
        many=True,
        required=False,
        help_text="The rate per level 1..3. Levels left out keep their rates (0 on create).",
    )
    product_rates = ProductRateSerializer(
        many=True,
        required=False,
        help_text="Rates per sku: an item with that sku is paid at them instead "
        "of the program's rates. Writing it replaces all of the program's product rates.",
    )

    class Meta:
        model = Program
        fields = (
            "id",
            "name",
            "notes",
            "priority",
            "rates",
            "unused_lead_amount",
            "unused_lead_percent",
            "unused_sale_amount",
            "unused_sale_percent",
            "hold_days",
            *STRUCTURAL_FIELDS,
            "pays_default",
            "credit_on",
            "product_rates",
        )
        read_only_fields = STRUCTURAL_FIELDS

    def validate_rates(self, rates: list[dict]) -> list[dict]:
        return _levels_once(rates)

    def validate_product_rates(self, product_rates: list[dict]) -> list[dict]:
        skus = [rate["sku"] for rate in product_rates]
        twice = sorted({sku for sku in skus if skus.count(sku) > 1})
        if twice:
            raise serializers.ValidationError(
                f"Give each sku once ({', '.join(twice)} is repeated)."
            )
        return product_rates


class CouponSerializer(serializers.ModelSerializer):
    """A partner's coupon code: an order that carries it (in any case) credits the partner.
    Codes are unique without regard to case."""

    # SPEC §11. The case-insensitive uniqueness is the service's check, so that it can name
    # the field.

    partner = PartnerCodeField(help_text="The code of the partner who owns the coupon.")

    class Meta:
        model = Coupon
        fields = ("id", "code", "partner", "active")
        extra_kwargs = {"code": {"validators": []}}


class TrackingLinkSerializer(serializers.ModelSerializer):
    # Declared so that ModelSerializer adds no "only one default" uniqueness check: making
    # a link the default takes the flag from the previous one (the service does that).
    is_default = serializers.BooleanField(
        default=False, help_text=TrackingLink._meta.get_field("is_default").help_text
    )

    class Meta:
        model = TrackingLink
        fields = ("code", "name", "destination", "is_default")
