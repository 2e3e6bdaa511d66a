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
    PartnerOverride,
    ProductRate,
    ProductRateLevel,
    Program,
    ProgramRate,
    ProgramVersion,
    ReferralDefaults,
    RenewalRate,
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


class ProgramIds(serializers.ManyRelatedField):
    """A list of program ids. DRF's many-related field reads any iterable, so an object
    (`{}`, `{"1": …}`) read as the list of its keys; the schema says an array (issue 15)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


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
    programs = ProgramIds(
        child_relation=serializers.PrimaryKeyRelatedField(queryset=Program.objects.all()),
        required=False,
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

    def validate(self, attrs):
        # A PATCH makes no field required, down to the product rates it replaces; but a
        # product rate without its sku means nothing (it answered 500: issue 15's run).
        if "sku" not in attrs:
            raise serializers.ValidationError({"sku": "Name the sku."})
        return attrs


class RenewalRateSerializer(ProgramRateSerializer):
    class Meta:
        model = RenewalRate
        fields = ProgramRateSerializer.Meta.fields


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
    renewal_rates = RenewalRateSerializer(
        many=True,
        required=False,
        allow_null=True,
        help_text="What a subscription's renewals (cycle 2 and on) earn per level 1..3 "
        "(levels left out pay 0), instead of the program's rates; null (or []): the "
        "program's rates. Writing it replaces them.",
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
            "renewal_cycles",
            "renewal_rates",
        )
        read_only_fields = STRUCTURAL_FIELDS
        extra_kwargs = {"renewal_cycles": {"min_value": 0}}

    def validate_rates(self, rates: list[dict]) -> list[dict]:
        return _levels_once(rates)

    def validate_renewal_rates(self, renewal_rates: list[dict] | None) -> list[dict] | None:
        return _levels_once(renewal_rates) if renewal_rates else None

    def to_representation(self, program: Program) -> dict:
        data = super().to_representation(program)
        data["renewal_rates"] = data["renewal_rates"] or None  # none: the program's rates
        return data

    def validate_product_rates(self, product_rates: list[dict]) -> list[dict]:
        skus = [rate["sku"] for rate in product_rates]
        twice = sorted({sku for sku in skus if skus.count(sku) > 1})
        if twice:
            raise serializers.ValidationError(
                f"Give each sku once ({', '.join(twice)} is repeated)."
            )
        return product_rates


def _decimal(model_field: str) -> serializers.DecimalField:
    field = Program._meta.get_field(model_field)
    return serializers.DecimalField(
        max_digits=field.max_digits, decimal_places=field.decimal_places, read_only=True
    )


class ProgramTermsSerializer(serializers.Serializer):
    """A program's pay terms as one version kept them: the program resource's rates, flags
    and product rates. A pay term added to programs later is given too."""

    levels = serializers.IntegerField(read_only=True)
    payout_on_lead = serializers.BooleanField(read_only=True)
    payout_on_sale = serializers.BooleanField(read_only=True)
    payout_amount = serializers.BooleanField(read_only=True)
    payout_percent = serializers.BooleanField(read_only=True)
    pay_if_unused = serializers.BooleanField(read_only=True)
    pays_default = serializers.BooleanField(read_only=True)
    rates = ProgramRateSerializer(many=True, read_only=True)
    unused_lead_amount = _decimal("unused_lead_amount")
    unused_lead_percent = _decimal("unused_lead_percent")
    unused_sale_amount = _decimal("unused_sale_amount")
    unused_sale_percent = _decimal("unused_sale_percent")
    product_rates = ProductRateSerializer(many=True, read_only=True)

    def to_representation(self, instance: dict) -> dict:
        data = super().to_representation(instance)
        return {**data, **{key: value for key, value in instance.items() if key not in data}}


class ProgramVersionSerializer(serializers.ModelSerializer):
    """One version of a program: its pay terms from then on, when, and who made it."""

    author = serializers.CharField(
        source="actor",
        read_only=True,
        help_text="The staff user, 'api key NAME' for a change through the API, or the "
        "command or migration that made it.",
    )
    terms = ProgramTermsSerializer(read_only=True)

    class Meta:
        model = ProgramVersion
        fields = ("id", "number", "created_at", "author", "terms")


class PartnerOverrideSerializer(serializers.ModelSerializer):
    """One partner's own rates for a program at one level: for items of that program (of
    `sku`, when given) they replace the program's rates when the partner is paid at that
    level. One with a sku beats one without."""

    # SPEC §10 "Partner overrides"; the docstring above is the API's documentation.

    program = serializers.PrimaryKeyRelatedField(
        queryset=Program.objects.all(),
        help_text="The id of the program whose rates these replace (any program: a parent "
        "is paid at level 2 by its recruit's programs).",
    )
    sku = serializers.CharField(
        max_length=100,
        allow_null=True,
        required=False,
        default=None,
        help_text="The sku of the items these rates pay; null: every item of the program. "
        "A rate for a sku pays its amount per unit, one for every item once per line.",
    )
    level = serializers.IntegerField(
        min_value=min(LEVELS),
        max_value=max(LEVELS),
        help_text="The level at which the partner is paid (1: their own sale).",
    )

    class Meta:
        model = PartnerOverride
        fields = (
            "id",
            "program",
            "sku",
            "level",
            "lead_amount",
            "lead_percent",
            "sale_amount",
            "sale_percent",
        )
        # One override per (partner, program, sku, level): the service's check, naming sku.
        validators = []


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
