"""Partner Center login: a partner signs in with their partner code or email (SPEC §7)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from .models import NO_LOGIN_STATUSES, Partner


class PartnerCodeOrEmailBackend(ModelBackend):
    """Finds the partner by code or email (without regard to case), then checks the
    password of the partner's login. Staff keep signing in with their username through
    Django's ModelBackend, listed after this one. Pending and rejected partners (sign-ups)
    cannot log in; with the right password, `request.partner_login_refused` names their
    status for the login page."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or password is None:
            return None
        partner = (
            Partner.objects.by_code(username)
            .filter(user__isnull=False)
            .select_related("user")
            .first()
            or Partner.objects.filter(Q(email__iexact=username), user__isnull=False)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        if partner is None:
            # Run the hasher anyway, so a missing partner takes as long as a wrong password.
            get_user_model()().set_password(password)
            return None
        if partner.status in NO_LOGIN_STATUSES:
            # A sign-up not approved (yet) or rejected: no login. PermissionDenied also
            # stops the staff backend from trying the login's username (the partner code).
            # Whoever gives the right password is told why (the login page words it);
            # anyone else gets the wrong-password answer, in the same time.
            if partner.user.check_password(password) and request is not None:
                request.partner_login_refused = partner.status
            raise PermissionDenied
        user = partner.user
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
