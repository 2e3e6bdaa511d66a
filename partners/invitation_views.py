"""The page of a Partner Center invitation's link (SPEC §12): the partner chooses their
password and is logged in (`partners.invitations` makes and checks the link).

Django's `PasswordResetConfirmView` does the work: the token moves from the URL into the
session before the form shows (so no Referer carries it), the form runs the site's
password validators, and the page is CSRF-protected and never cached. The link of a
login that is not an active partner's (staff, a pending sign-up, access revoked) works no
more than a forged one; a bad, used or expired link gets a page that says which, never an
error. After the password is set the partner lands on the Partner Center's dashboard: no
address from the request is followed.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpResponse
from django.urls import reverse_lazy

from .invitations import EXPIRED, invitation_tokens
from .models import NO_LOGIN_STATUSES
from .services.partners import partner_login_set_password


class InvitationPasswordForm(SetPasswordForm):
    """Django's set-password form (its clean() runs the password validators); saving goes
    through `partner_login_set_password`."""

    def save(self, commit: bool = True) -> Any:
        password = self.cleaned_data["new_password1"]
        return partner_login_set_password(partner=self.user.partner, password=password)


class InvitationView(auth_views.PasswordResetConfirmView):
    template_name = "partner/invitation.html"
    form_class = InvitationPasswordForm
    token_generator = invitation_tokens
    post_reset_login = True
    post_reset_login_backend = "partners.auth.PartnerCodeOrEmailBackend"
    success_url = reverse_lazy("partner:dashboard")

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        partner = getattr(user, "partner", None) if user is not None else None
        if (
            partner is None
            or not user.is_active
            or user.is_staff
            or user.is_superuser
            or partner.status in NO_LOGIN_STATUSES
        ):
            return None
        return user

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if not self.validlink:
            token = self.kwargs["token"]
            if token == self.reset_url_token:
                token = self.request.session.get(auth_views.INTERNAL_RESET_SESSION_TOKEN)
            state = self.token_generator.token_state(self.user, token)
            context["expired"] = state == EXPIRED
        context["invite_days"] = settings.PARTNER_INVITE_DAYS
        return context

    def form_valid(self, form: InvitationPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, f"Your password is set. Welcome, {self.user.partner.name}.")
        return response
