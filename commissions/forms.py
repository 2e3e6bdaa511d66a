"""Staff forms of the commissions pages. They only validate; the views call the services."""

from datetime import date
from decimal import Decimal
from typing import Any

from django import forms

from partners.forms import PartnerByCodeField
from referral_program.dates import DateInput, DayField

from .dashboard import PRESET_DAYS, Period, last_days
from .models import PayoutMethod
from .money import ZERO


def _check_range(form: forms.Form, cleaned_data: dict[str, Any]) -> None:
    start, end = cleaned_data.get("start"), cleaned_data.get("end")
    if start and end and start > end:
        form.add_error("end", "The end must not be before the start.")


class DateRangeCheckForm(forms.Form):
    """Refuses a range whose end is before its start; the FilterSets' forms build on it."""

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        _check_range(self, cleaned_data)
        return cleaned_data


class DateRangeForm(DateRangeCheckForm):
    """An optional range of whole UTC days; either end may be left open (all time)."""

    start = DayField(required=False, label="From", widget=DateInput())
    end = DayField(required=False, label="To", widget=DateInput())


class ManualReferralForm(forms.Form):
    """A referral history entry added by hand (a referral by phone or email, SPEC §4)."""

    partner = PartnerByCodeField(
        max_length=32,
        label="Partner code",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="The partner who referred this contact; only active partners.",
    )
    referred_on = DayField(
        required=False,
        label="Referred on",
        widget=DateInput(),
        help_text="The day of the referral (from 00:00 UTC). Empty: now.",
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean_referred_on(self) -> date | None:
        day = self.cleaned_data.get("referred_on")
        if day and day > self.today:
            raise forms.ValidationError("The day of the referral cannot be in the future.")
        return day


class PayoutBatchForm(forms.Form):
    """Create Referral Partner Payments (SPEC §5.5)."""

    start = DayField(label="From", widget=DateInput())
    end = DayField(label="To", widget=DateInput(), help_text="Included (whole UTC days).")
    method = forms.ChoiceField(
        label="Pay",
        choices=PayoutMethod.choices,
        initial=PayoutMethod.EARNED_IN_RANGE,
        widget=forms.RadioSelect,
        help_text="Earned in the range: the unpaid commissions dated in the range, less "
        "their clawbacks. Beginning balance plus earned: everything unpaid up to the end.",
    )
    minimum = forms.DecimalField(
        label="Minimum payment",
        required=False,
        min_value=ZERO,
        max_digits=14,
        decimal_places=2,
        help_text="Partners owed less than this are left for a later batch. Empty: 0.",
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
    )

    def clean_minimum(self) -> Decimal:
        return self.cleaned_data.get("minimum") or ZERO

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        _check_range(self, cleaned_data)
        return cleaned_data


class DashboardPeriodForm(DateRangeCheckForm):
    """The staff dashboard's period: one of the last-N-days presets (`days`), or a range of
    whole UTC days from `start` to `end` (both needed)."""

    days = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(days, f"Last {days} days") for days in PRESET_DAYS],
        label="Period",
    )
    start = DayField(required=False, label="From", widget=DateInput())
    end = DayField(required=False, label="To", widget=DateInput())

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        start, end = cleaned_data.get("start"), cleaned_data.get("end")
        if start and not end and "end" not in self.errors:
            self.add_error("end", "Give the last day of the period too.")
        if end and not start and "start" not in self.errors:
            self.add_error("start", "Give the first day of the period too.")
        return cleaned_data

    def period(self, *, today: date) -> Period:
        """The period asked for; the default preset when the form is empty or invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("start") and data.get("end"):
            return Period(start=data["start"], end=data["end"])
        return last_days(data.get("days") or PRESET_DAYS[0], today=today)
