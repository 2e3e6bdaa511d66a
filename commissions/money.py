"""Money: Decimal only, and the one rounding function of the product."""

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

# ISO 4217 minor units of the currencies with other than 2 decimals that a program
# could plausibly use; every other known code has 2.
MINOR_UNITS = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}
ZERO = Decimal("0")
# Money columns hold two decimal places (docs/decisions.md), whatever the currency.
STORED_PLACES = 2
STORED_QUANTUM = Decimal(1).scaleb(-STORED_PLACES)


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


@lru_cache(maxsize=64)  # Decimals are immutable: one per currency (every commission line)
def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def zero_like(value: Decimal) -> Decimal:
    """0 with the decimal places of `value` (0.00 for 12.34): a figure clamped at zero keeps
    the places its currency shows."""
    return Decimal(0).scaleb(min(value.as_tuple().exponent, 0))


def round_money(value: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit: the only rounding money ever gets."""
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def from_database(value: Decimal | float | int | None) -> Decimal:
    """A money figure the database worked out (a sum, a difference) as the exact Decimal it
    is, with the two places money is stored with; 0.00 for nothing. PostgreSQL returns such
    figures as numerics, SQLite as floats or integers (0.30 + 0.60 as 0.8999999999999999, a
    sum of 30.00 as 30): every term has two places, so rounding to two gives the exact sum."""
    if value is None:
        return ZERO.quantize(STORED_QUANTUM)
    if isinstance(value, float):
        value = Decimal(repr(value))
    return Decimal(value).quantize(STORED_QUANTUM, rounding=ROUND_HALF_UP)
