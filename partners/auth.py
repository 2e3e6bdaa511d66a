"""Logins: a partner signs in with their partner code or email (SPEC §7), staff with their
username; every try costs exactly one password hash (issue 21)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from .models import NO_LOGIN_STATUSES, Partner


class PartnerCodeOrEmailBackend(ModelBackend):
    """Finds the login a typed name stands for: a partner's by code, then by email (without
    regard to case), else the user with that username (staff); then checks its password.

    One hash per try whatever was typed, known or not (an unknown name runs the hasher on
    a blank user): the hash is the cost of a login, so no answer is cheaper or faster than
    another, and none costs two. A try that fails here ends the login (PermissionDenied):
    Django's ModelBackend, still listed for permissions and for sessions it made, is not
    asked to hash again. Pending and rejected partners (sign-ups) cannot log in; with the
    right password, `request.partner_login_refused` names their status for the login page.
    """

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
        user_model = get_user_model()
        if partner is None:
            user = user_model._default_manager.filter(
                **{user_model.USERNAME_FIELD: username}
            ).first()
        else:
            user = partner.user
        if user is None:
            user_model().set_password(password)  # the same hash a known name costs
            raise PermissionDenied
        if partner is not None and partner.status in NO_LOGIN_STATUSES:
            # A sign-up not approved (yet) or rejected: no login. Whoever gives the right
            # password is told why (the login page words it); anyone else gets the
            # wrong-password answer, in the same time.
            if user.check_password(password) and request is not None:
                request.partner_login_refused = partner.status
            raise PermissionDenied
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        raise PermissionDenied
