"""Partner Center access from the staff partner page (SPEC §12): invite the partner (or
send a new invitation) and revoke their access. POST only, staff with the permission to
change partners; the partner page shows the state (`selectors.partner_access`).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views import View

from .services.access import partner_access_revoke, partner_invite
from .views import StaffRequiredMixin, staff_partner_or_404

CHANGE_PERMISSION = "partners.change_partner"


class PartnerInviteView(StaffRequiredMixin, View):
    """POST: email the partner a new link to set their Partner Center password."""

    permission_required = CHANGE_PERMISSION

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        try:
            partner_invite(partner=partner, at=timezone.now())
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, f"Invitation to the Partner Center queued for {partner.email}."
            )
        return redirect("staff:partner_detail", code=partner.code)


class PartnerAccessRevokeView(StaffRequiredMixin, View):
    """POST: the partner can no longer log in; their sessions and links end."""

    permission_required = CHANGE_PERMISSION

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        partner = staff_partner_or_404(code)
        try:
            partner_access_revoke(partner=partner)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"{partner.code} can no longer log in to the Partner Center.")
        return redirect("staff:partner_detail", code=partner.code)
