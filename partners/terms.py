"""A program's pay terms as one JSON value (SPEC §10 "Versions"), and what changed between
two of them in words. Pure: no ORM, no clock.

The snapshot has the shape of the program resource (SPEC §6 and §10), every amount and
percentage a decimal string as the database keeps it:

    {"levels": 2, "payout_on_lead": false, ..., "pays_default": true,
     "rates": [{"level": 1, "lead_amount": "0.00", ...}, ...],
     "unused_lead_amount": "0.00", ...,
     "product_rates": [{"sku": "A-1", "rates": [...], "unused_lead_amount": "0.00", ...}],
     "renewal_cycles": null, "renewal_rates": [], "credit_on": "order"}

A pay term added to programs later joins it as one more key in `program_terms`;
`terms_changes` words any key it does not know by its name.
"""

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

RATE_NAMES = ("lead_amount", "lead_percent", "sale_amount", "sale_percent")
UNUSED_NAMES = tuple(f"unused_{name}" for name in RATE_NAMES)
# The flags of the defaults that a program follows (SPEC §2), and its own `pays_default`.
FLAG_NAMES = (
    "levels",
    "payout_on_lead",
    "payout_on_sale",
    "payout_amount",
    "payout_percent",
    "pay_if_unused",
)

LABELS = {
    "levels": "levels",
    "payout_on_lead": "pays leads",
    "payout_on_sale": "pays sales",
    "payout_amount": "pays amounts",
    "payout_percent": "pays percentages",
    "pay_if_unused": "pay if unused",
    "pays_default": "pays default rates",
    "renewal_cycles": "renewals that earn",
    "credit_on": "credits on",
}
# How a value reads where "none" would mislead: no renewal limit is every renewal.
NONE_WORDS = {"renewal_cycles": "all"}


def rate_terms(level: int, row: Any) -> dict:
    """One level's rate (a ProgramRate or ProductRateLevel, or any object with the names)."""
    return {"level": level, **{name: str(getattr(row, name)) for name in RATE_NAMES}}


def program_terms(
    *,
    program: Any,
    rates: Iterable[Any],
    product_rates: Iterable[tuple[Any, Iterable[Any]]],
    renewal_rates: Iterable[Any] = (),
) -> dict:
    """The snapshot of a program (a Program or any object with its names) with its rate
    rows, its product rates, each with its level rows, its renewal terms (the limit and the
    renewal rate rows) and its credit timing; rows in level and sku order."""
    return {
        **{name: getattr(program, name) for name in FLAG_NAMES},
        "pays_default": program.pays_default,
        "rates": [rate_terms(row.level, row) for row in sorted(rates, key=lambda r: r.level)],
        **{name: str(getattr(program, name)) for name in UNUSED_NAMES},
        "product_rates": [
            {
                "sku": product.sku,
                "rates": [rate_terms(r.level, r) for r in sorted(levels, key=lambda r: r.level)],
                **{name: str(getattr(product, name)) for name in UNUSED_NAMES},
            }
            for product, levels in sorted(product_rates, key=lambda pair: pair[0].sku)
        ],
        "renewal_cycles": program.renewal_cycles,
        "renewal_rates": [
            rate_terms(row.level, row) for row in sorted(renewal_rates, key=lambda r: r.level)
        ],
        "credit_on": program.credit_on,
    }


def terms_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What changed from `old` to `new`, one phrase per value: "level 1 sale percent 10 →
    12", "pays leads off → on", "product A-1 added". Empty for a first version (`old` None)
    or for equal terms."""
    if old is None:
        return []
    words: list[str] = []
    for key in sorted(new.keys() | old.keys(), key=_key_order):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "rates":
            words += _rates_changes("", before or (), after or ())
        elif key == "renewal_rates":
            words += _rates_changes("renewal ", before or (), after or ())
        elif key == "product_rates":
            words += _products_changes(before or (), after or ())
        elif key in NONE_WORDS:
            label, none = LABELS[key], NONE_WORDS[key]
            words += [f"{label} {_text(before) if before is not None else none} → "
                      f"{_text(after) if after is not None else none}"]  # fmt: skip
        else:
            words += _value_change(LABELS.get(key, key.replace("_", " ")), before, after)
    return words


# The order the words come in, whatever the order of the keys (a JSON column may reorder
# them): the program resource's, then any other key by name.
KEY_ORDER = (*FLAG_NAMES, "pays_default", "rates", *UNUSED_NAMES, "product_rates")
KEY_ORDER += ("renewal_cycles", "renewal_rates", "credit_on")


def _key_order(key: str) -> tuple[int, str]:
    return (KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER), key)


def _value_change(label: str, before: Any, after: Any) -> list[str]:
    if isinstance(before, list | dict) or isinstance(after, list | dict):
        return [f"{label} changed"]
    return [f"{label} {_text(before)} → {_text(after)}"]


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        try:
            return f"{Decimal(value).normalize():f}"
        except InvalidOperation:
            return value
    return str(value)


def _fields_changes(prefix: str, before: Mapping, after: Mapping) -> list[str]:
    words = []
    for key in [*after, *(key for key in before if key not in after)]:
        if key != "level" and before.get(key) != after.get(key):
            label = f"{prefix}{key.replace('_', ' ')}"
            words += _value_change(label, before.get(key), after.get(key))
    return words


def _rates_changes(prefix: str, before: Sequence[Mapping], after: Sequence[Mapping]) -> list[str]:
    old = {rate.get("level"): rate for rate in before}
    new = {rate.get("level"): rate for rate in after}
    words = []
    for level in sorted(old.keys() | new.keys(), key=str):
        label = f"{prefix}level {level} "
        if level not in old:
            words.append(f"{label}added")
        elif level not in new:
            words.append(f"{label}removed")
        else:
            words += _fields_changes(label, old[level], new[level])
    return words


def _products_changes(before: Sequence[Mapping], after: Sequence[Mapping]) -> list[str]:
    old = {product.get("sku"): product for product in before}
    new = {product.get("sku"): product for product in after}
    words = []
    for sku in sorted(old.keys() | new.keys(), key=str):
        label = f"product {sku} "
        if sku not in old:
            words.append(f"{label}added")
        elif sku not in new:
            words.append(f"{label}removed")
        else:
            was, now = dict(old[sku]), dict(new[sku])
            words += _rates_changes(label, was.pop("rates", ()), now.pop("rates", ()))
            words += _fields_changes(label, was, now)
    return words
