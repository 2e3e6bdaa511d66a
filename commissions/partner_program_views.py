"""The Partner Center's "My programs" (every rate that pays the partner, SPEC §12) and
"My recruits" (the partners they recruited, with what they earned through each)."""

from typing import Any

from django.conf import settings
from django.views.generic import TemplateView

from partners.models import Partner
from partners.selectors import defaults_get, recruit_link
from partners.selectors import partner_overrides as overrides_of

from .calculation import Override
from .partner_center import PartnerCenterMixin
from .report_selectors import recruits_with_earnings
from .selectors import override_of, partner_chains
from .structure import EXAMPLE_PRICE, commission_structure


def partner_overrides(partner: Partner) -> list[Override]:
    """The partner's own rates (SPEC §10 overrides), as the rules take them."""
    return [
        override_of(
            partner.pk,
            row.program_id,
            row.sku,
            row.level,
            row.lead_amount,
            row.lead_percent,
            row.sale_amount,
            row.sale_percent,
        )
        for row in overrides_of(partner)
    ]


class ProgramsView(PartnerCenterMixin, TemplateView):
    """Each program that pays the partner, in priority order, as the engine pays it: the
    programs are read by the engine's own selector (`partner_chains`) and every figure is
    worked out by `calculation.program_lines` (`commissions.structure`)."""

    template_name = "partner/programs.html"
    section = "programs"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        chain = partner_chains([self.partner.pk]).get(self.partner.pk)
        currency = settings.DEFAULT_CURRENCY
        structure = commission_structure(
            partner_id=self.partner.pk,
            programs=chain.programs if chain else (),
            overrides=partner_overrides(self.partner),
            currency=currency,
        )
        return super().get_context_data(
            structure=structure,
            currency=currency,
            example_price=EXAMPLE_PRICE,
            **kwargs,
        )


class RecruitsView(PartnerCenterMixin, TemplateView):
    """The partners this partner recruited, and their own recruit link (sign-up page)."""

    template_name = "partner/recruits.html"
    section = "recruits"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        defaults = defaults_get()
        return super().get_context_data(
            recruits=recruits_with_earnings(self.partner),
            signup_open=defaults.signup_enabled,
            recruit_link=recruit_link(self.partner, defaults=defaults),
            **kwargs,
        )
