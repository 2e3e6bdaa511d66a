"""Money summed by the database, read back exact on every database.

Django converts an aggregate of a DecimalField with the backend's generic converter: on
SQLite that makes a Decimal of the float SQLite computed (`0.900000000000000`, `30`), and
only plain columns are put back to their decimal places. Every money figure a query works
out therefore goes through `MoneyTotal`, whose converter is `money.from_database`.
"""

from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from .money import STORED_PLACES, ZERO, from_database

# Wide enough for the sum of any number of ledger amounts (14 digits each).
MONEY_FIELD = DecimalField(max_digits=20, decimal_places=STORED_PLACES)


class MoneyTotal(Coalesce):
    """A money expression (a Sum, a Subquery of one, arithmetic on them), 0.00 when it is
    NULL, as an exact Decimal with two places on every database."""

    def __init__(self, expression, **extra):
        super().__init__(expression, Value(ZERO), output_field=MONEY_FIELD, **extra)

    def convert_value(self, value, expression, connection):
        return from_database(value)


def money_sum(expression, *, filter: Q | None = None) -> MoneyTotal:
    """Sum(expression, filter=…) of money: 0.00 over no rows, exact on every database."""
    return MoneyTotal(Sum(expression, filter=filter, output_field=MONEY_FIELD))
