"""JSON shapes of the what-if replay (SPEC §13, `POST /api/v1/simulations/`).

The proposal is validated by the resources' own serializers (`DefaultsSerializer` as a
PATCH of the defaults, `ProgramSerializer` as a PATCH of each program), so a field is
refused exactly as saving it would refuse it; `commissions.replay.simulation_run` then
applies it through the save services in a transaction it rolls back.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from partners.selectors import defaults_get, programs_list
from partners.serializers import DefaultsSerializer, ProgramSerializer
from partners.services.programs import program_update_arguments
from referral_program.dates import DAY, DayError, parse_day

MONEY = {"max_digits": 14, "decimal_places": 2}
PROGRAMS_MAX = 50
BIGINT_MAX = 2**63 - 1


@extend_schema_field(
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
)
class RangeBoundField(serializers.Field):
    """A day (`YYYY-MM-DD`, a whole day in UTC) or an ISO 8601 time (without a zone: UTC)."""

    def to_internal_value(self, value: Any) -> date | datetime:
        if isinstance(value, str) and DAY.fullmatch(value.strip()):
            try:
                return parse_day(value)
            except DayError as error:
                raise serializers.ValidationError(str(error), code="invalid") from None
        return serializers.DateTimeField(default_timezone=UTC).to_internal_value(value)

    def to_representation(self, value: Any) -> str:
        return value.isoformat()


class ProposedProgramSerializer(ProgramSerializer):
    """A program's proposed terms: its id and any fields of the program resource."""

    id = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, help_text="The program.")

    class Meta(ProgramSerializer.Meta):
        pass


@extend_schema_field(DefaultsSerializer(partial=True))
class ProposedDefaultsField(serializers.DictField):
    """The proposed defaults: any fields of the defaults resource (as a PATCH)."""


@extend_schema_field(ProposedProgramSerializer(many=True))
class ProposedProgramsField(serializers.ListField):
    """The proposed programs: each its id and any fields of the program resource."""


class SimulationSerializer(serializers.Serializer):
    start = RangeBoundField(help_text="The first day, or the time, of the events replayed.")
    end = RangeBoundField(
        help_text="The last day (included), or the time (excluded), of the events replayed."
    )
    defaults = ProposedDefaultsField(
        required=False, help_text="Proposed defaults: any fields of `/api/v1/defaults/`."
    )
    programs = ProposedProgramsField(
        child=serializers.DictField(),
        required=False,
        max_length=PROGRAMS_MAX,
        help_text="Proposed programs: each its `id` and any fields of `/api/v1/programs/`.",
    )

    def validate_defaults(self, value: dict) -> dict:
        serializer = DefaultsSerializer(defaults_get(), data=value, partial=True)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def validate_programs(self, value: list[dict]) -> list[dict]:
        changes, errors = [], {}
        for n, given in enumerate(value):
            pk = given.get("id")
            found = isinstance(pk, int) and not isinstance(pk, bool) and 0 < pk <= BIGINT_MAX
            program = programs_list().filter(pk=pk).first() if found else None
            if program is None:
                errors[n] = {"id": [f"There is no program {pk!r}."]}
                continue
            fields = {key: v for key, v in given.items() if key != "id"}
            serializer = ProgramSerializer(program, data=fields, partial=True)
            if not serializer.is_valid():
                errors[n] = serializer.errors
                continue
            changes.append(
                {"program": program.pk, **program_update_arguments(serializer.validated_data)}
            )
        if errors:
            raise serializers.ValidationError(errors)
        return changes

    def validate(self, attrs: dict) -> dict:
        start, end = range_times(attrs["start"], attrs["end"])
        if end <= start:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        return {**attrs, "start": start, "end": end}


def range_times(start: date | datetime, end: date | datetime) -> tuple[datetime, datetime]:
    """A range's bounds as times: a day starts at its midnight (UTC), and a last day ends
    where the day after it starts."""
    if not isinstance(start, datetime):
        start = datetime.combine(start, time(), tzinfo=UTC)
    if not isinstance(end, datetime):
        end = datetime.combine(end, time(), tzinfo=UTC) + timedelta(days=1)
    return start, end


class SimulationQuerySerializer(serializers.Serializer):
    orders = serializers.ChoiceField(
        choices=["changed"],
        required=False,
        help_text="`changed`: also each order whose partners or lines change (at most 500), "
        "with what is recorded and what would be, traces side by side.",
    )


class SimulationPartnerSerializer(serializers.Serializer):
    partner = serializers.CharField(allow_null=True, help_text="The partner's code.")
    name = serializers.CharField()
    currency = serializers.CharField()
    now = serializers.DecimalField(**MONEY, help_text="What is recorded.")
    proposed = serializers.DecimalField(**MONEY, help_text="What the proposal would pay.")
    change = serializers.DecimalField(**MONEY)


class SimulationLineSerializer(serializers.Serializer):
    partner = serializers.CharField(allow_null=True)
    level = serializers.IntegerField()
    kind = serializers.CharField()
    amount = serializers.DecimalField(**MONEY)


class SimulationOrderSideSerializer(serializers.Serializer):
    lead_partner = serializers.CharField(allow_null=True)
    sale_partner = serializers.CharField(allow_null=True)
    lines = SimulationLineSerializer(many=True)
    lead_trace = serializers.DictField()
    sale_trace = serializers.DictField()


class SimulationOrderSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    now = SimulationOrderSideSerializer()
    proposed = SimulationOrderSideSerializer()


class SimulationChangeSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    what = serializers.CharField(help_text='"defaults", or the program and its version.')
    changes = serializers.ListField(child=serializers.CharField(), help_text="In words.")


class SimulationAnswerSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    events = serializers.IntegerField(help_text="The events replayed, of every kind.")
    orders = serializers.IntegerField()
    web_forms = serializers.IntegerField()
    refunds = serializers.IntegerField()
    payments = serializers.IntegerField()
    not_replayed = serializers.IntegerField(
        help_text="Stored events the rules no longer take (e.g. a partner they name is gone)."
    )
    refused = serializers.IntegerField(
        help_text="Refunds and payments the proposal leaves nothing to refund or pay on."
    )
    orders_changing_partner = serializers.IntegerField()
    currency = serializers.CharField(help_text="The program currency, of the totals.")
    total_now = serializers.DecimalField(**MONEY)
    total_proposed = serializers.DecimalField(**MONEY)
    change = serializers.DecimalField(**MONEY)
    partners = SimulationPartnerSerializer(many=True)
    settings_changed = SimulationChangeSerializer(
        many=True,
        help_text="Saves of the defaults or programs since the start: what is recorded since "
        "was worked out under other terms than today's.",
    )
    orders_changed = SimulationOrderSerializer(many=True, required=False)
    orders_changed_truncated = serializers.BooleanField(required=False)
