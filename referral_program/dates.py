"""Days read from a query string or a body: one parser for every page, CSV and API call
(issue 21, finding 4).

A day is `YYYY-MM-DD` (what a browser's date input sends, and ISO 8601), a whole day in UTC.
The last day accepted is 9999-12-30: a range ends where the day after its last day starts,
and the day after 9999-12-31 is beyond what a date (in Python, and so in the database's
timestamps as the app writes them) can hold; it answered 500 on every range before. A day
that is not a date, or is too late, is refused naming its field: a 400 on the API and the
CSVs, and on the pages that read their filters from the query string (`QueryErrorsAre400`).

- `parse_day(text)`: the parser, raising `DayError` with the message;
- `DayField`: the Django form field (forms, and django-filter's `DayFilter`), typed in a
  `DateInput`;
- `ApiDayField`: the DRF serializer field.
"""

import re
from datetime import date, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

LAST_DAY = date.max - timedelta(days=1)
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
INVALID = "Enter a valid date (YYYY-MM-DD)."
TOO_LATE = f"Enter a day up to {LAST_DAY.isoformat()}."


class DayError(ValueError):
    """A value that is not a day this program can work with; str() is the message."""


def parse_day(value: Any) -> date:
    """The day `value` names (`YYYY-MM-DD`, or a date), up to LAST_DAY."""
    if isinstance(value, date):
        day = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        if not DAY.fullmatch(text):
            raise DayError(INVALID)
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise DayError(INVALID) from None
    if day > LAST_DAY:
        raise DayError(TOO_LATE)
    return day


class DayField(forms.DateField):
    """A form's day, read by `parse_day`."""

    def to_python(self, value: Any) -> date | None:
        if value in self.empty_values:
            return None
        try:
            return parse_day(value)
        except DayError as error:
            raise ValidationError(str(error), code="invalid") from None


class DateInput(forms.DateInput):
    """A day typed as the pages show dates, 2026-10-31 (a browser's date picker would show
    it in the reader's locale, 10/31/2026, beside ISO dates everywhere else)."""

    input_type = "text"

    def __init__(self, attrs: dict | None = None) -> None:
        defaults = {
            "placeholder": "YYYY-MM-DD",
            "inputmode": "numeric",
            "pattern": r"\d{4}-\d{2}-\d{2}",
            "autocomplete": "off",
            "class": "date-input",
        }
        super().__init__({**defaults, **(attrs or {})}, format="%Y-%m-%d")


class DayFilter(django_filters.DateFilter):
    field_class = DayField


class ApiDayField(serializers.DateField):
    """An API day, read by `parse_day`; written as `YYYY-MM-DD` like DRF's DateField."""

    def to_internal_value(self, value: Any) -> date:
        try:
            return parse_day(value)
        except DayError as error:
            raise serializers.ValidationError(str(error), code="invalid") from None


@extend_schema_field(
    {"type": "string", "anyOf": [{"format": "date"}, {"type": "string", "maxLength": 0}]}
)
class QueryDayField(ApiDayField):
    """A day in a query string, where an empty one (`?start=`) means none, as DRF reads an
    empty parameter of an optional field: the schema says so."""


class QueryErrorsAre400:
    """A page whose filters (read from the query string) do not validate answers 400, still
    showing the page with each error by its field. The view's `query_form(context)` names
    the bound form or FilterSet in its context."""

    def query_form(self, context: dict[str, Any]) -> Any:
        return context.get("filterset") or context.get("form")

    def render_to_response(self, context: dict[str, Any], **kwargs: Any):
        response = super().render_to_response(context, **kwargs)
        form = self.query_form(context)
        form = getattr(form, "form", form)  # a FilterSet's form
        if form is not None and form.is_bound and form.errors:
            response.status_code = 400
        return response
