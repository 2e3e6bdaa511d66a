"""Partner Center access (SPEC §12): staff invite a partner (an email with a one-time link
to set a password, `partners.invitations`), send a new invitation, or revoke access.

The invitation is a sign-up email of its own kind (`SignupEmailKind.INVITE`), queued in
the transaction and sent by the sign-up emails' task after it, so it is retried as they
are (`partners.requeue`). Revoking deactivates the partner's login and forgets its
password (docs/decisions.md): the login stays linked, so its last login still shows and a
new invitation makes it work again.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import NO_LOGIN_STATUSES, Partner, SignupEmail, SignupEmailKind
from .partners import partner_login_ensure
from .signup import signup_emails_queue


@transaction.atomic
def partner_invite(*, partner: Partner, at: datetime) -> SignupEmail:
    """Email the partner a link to set their Partner Center password; a new invitation
    each time (earlier links keep working until a password is set with one of them).

    Makes the partner's login when there is none (username the partner code, no usable
    password yet), and makes a revoked login active again. Refused (ValidationError) for
    a partner whose sign-up is pending or was rejected (they may not log in), and when the
    login is a staff login.
    """
    partner = (
        Partner.objects.select_for_update(of=("self",)).select_related("user").get(pk=partner.pk)
    )
    if partner.status in NO_LOGIN_STATUSES:
        raise ValidationError(
            f"{partner.code} is {partner.get_status_display().lower()}: only an approved "
            "partner can be invited to the Partner Center."
        )
    partner_login_ensure(partner=partner)
    [email] = signup_emails_queue(partner_ids=[partner.pk], kind=SignupEmailKind.INVITE, at=at)
    return email


@transaction.atomic
def partner_access_revoke(*, partner: Partner) -> AbstractBaseUser:
    """End the partner's Partner Center access: their login is deactivated and its
    password forgotten, so they cannot log in, every session of theirs ends at its next
    request (the session's hash of the password no longer matches) and no invitation or
    password reset link sent before works. Invitations not sent yet are dropped. The
    partner themselves is unchanged (they still earn). Refused when there is no login."""
    partner = (
        Partner.objects.select_for_update(of=("self",)).select_related("user").get(pk=partner.pk)
    )
    user = partner.user
    if user is None:
        raise ValidationError(f"{partner.code} has no Partner Center login.")
    if user.is_staff or user.is_superuser:
        raise ValidationError(f"{partner.code}'s login is a staff login: change it in the admin.")
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["is_active", "password"])
    SignupEmail.objects.filter(
        partner=partner, kind=SignupEmailKind.INVITE, sent_at__isnull=True
    ).delete()
    return user
