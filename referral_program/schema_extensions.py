"""drf-spectacular extensions: the schema of DRF fields says what the API really takes.

Found by `schemathesis run --checks all` (docs/reliability.md), which sends what the schema
allows and expects it accepted:

- A `DecimalField`'s pattern (drf-spectacular's `^-?\\d{0,N}(?:\\.\\d{0,M})?$`) allowed "",
  "." and "-" alone, and a minus sign where the field has `min_value >= 0`; DRF refuses all
  of them. The pattern now needs a digit, and a sign only where negatives are taken.
- (`partners.serializers.PartnerCodes`: a partner's code that may be null takes "".)

Registered by `partners.apps.PartnersConfig.ready`.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension


def decimal_pattern(
    *, whole: int | None, places: int | None, signed: bool, power: int | None = None
) -> str:
    """A decimal string with at least one digit: `whole` digits before the point at most,
    `places` after it (None: any number); at most 10**`power` (a percentage's 100) when
    given."""
    if power is not None:
        whole = power
    before = f"\\d{{1,{whole}}}" if whole is not None else "\\d+"
    after = f"\\d{{0,{places}}}" if places is not None else "\\d*"
    bare = f"\\d{{1,{places}}}" if places is not None else "\\d+"
    zeros = f"0{{0,{places}}}" if places is not None else "0*"
    choices = [before] if places == 0 else [f"{before}(?:\\.{after})?", f"\\.{bare}"]
    if power is not None:
        choices.insert(0, f"1{'0' * power}" + ("" if places == 0 else f"(?:\\.{zeros})?"))
    return f"^{'-?' if signed else ''}(?:{'|'.join(choices)})$"


def _power_of_ten(value) -> int | None:
    """k when `value` is 10**k (k >= 1), else None."""
    if value is None or value < 10:
        return None
    text = str(int(value))
    return len(text) - 1 if value == int(value) and text == "1" + "0" * (len(text) - 1) else None


class DecimalFields(OpenApiSerializerFieldExtension):
    target_class = "rest_framework.fields.DecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if schema.get("type") != "string" or "pattern" not in schema:
            return schema  # a number, when decimals are not coerced to strings
        field = self.target
        places = field.decimal_places
        whole = field.max_digits - places if field.max_digits is not None else None
        signed = field.min_value is None or field.min_value < 0
        power = None if signed else _power_of_ten(field.max_value)
        schema["pattern"] = decimal_pattern(whole=whole, places=places, signed=signed, power=power)
        return schema
