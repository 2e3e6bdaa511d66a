"""Payout details in the Partner Center (SPEC §11, §12 "My profile"): the partner sees and
changes their own, in full; staff see them masked on the partner's page."""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.generic import FormView

from partners.forms import add_service_errors

from .partner_center import PartnerCenterMixin
from .partner_forms import PayoutDetailsForm
from .payout_details import (
    details_values,
    masked,
    payout_details_of,
    payout_details_update,
)


class PayoutDetailsView(PartnerCenterMixin, FormView):
    """The partner's PayPal email or bank account, through `payout_details_update`."""

    template_name = "partner/payout_details.html"
    form_class = PayoutDetailsForm
    section = "profile"

    def get_initial(self) -> dict[str, Any]:
        details = payout_details_of(self.partner)
        self.details = details
        return details_values(details) if details else {"method": "paypal"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            masked=masked(payout_details_of(self.partner)),
            changes=self.partner.payout_details_changes.all()[:10],
            **kwargs,
        )

    def form_valid(self, form: PayoutDetailsForm) -> HttpResponse:
        try:
            change = payout_details_update(
                partner=self.partner,
                data=form.cleaned_data,
                changed_by=self.partner.code,
                at=timezone.now(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
            return self.form_invalid(form)
        if change is None:
            messages.info(self.request, "Nothing changed.")
        else:
            messages.success(
                self.request,
                "Your payout details are saved. We have emailed you about the change.",
            )
        return redirect("partner:payout_details")
