"""A partner's personal data (issue 7, docs/privacy.md): the erased code, the export of a
data access request, and the erasure."""

from datetime import datetime
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils.module_loading import import_string

from ..models import Click, Partner, PartnerSignup, PartnerStatus, SignupEmail
from ..selectors import partner_link

ERASED_NAME = "Erased partner"


def partner_erased_code(partner: Partner) -> str:
    """The code an erased partner keeps: it says nothing about the person, and it is free
    (no partner code may start with a letter and hold only this id otherwise)."""
    return f"erased-{partner.pk}"


def partner_is_erased(partner: Partner) -> bool:
    return partner.code == partner_erased_code(partner) and partner.name == ERASED_NAME


def _audit(partner: Partner, acting_user: AbstractBaseUser | None, message: str) -> None:
    """A line in the partner's admin history: who did what to their personal data."""
    if acting_user is None or not acting_user.is_authenticated:
        return
    LogEntry.objects.log_actions(
        user_id=acting_user.pk,
        queryset=[partner],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _audit_names_erase(partner: Partner) -> None:
    """The admin history names each entry's object as it was then ("Jane Doe (jane)"):
    rename the partner's entries to what the partner is called now."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Partner), object_id=str(partner.pk)
    ).update(object_repr=str(partner)[:200])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def partner_export(
    *, partner: Partner, acting_user: AbstractBaseUser | None, at: datetime
) -> dict[str, Any]:
    """Everything the program holds about one partner as a person, for a data access
    request: a JSON-ready dict (money as decimal strings, times in ISO 8601).

    Their profile, login, sign-up and the number of clicks on their links here; then each
    section of settings.PARTNER_EXPORT_SECTIONS (the ledger: commissions, payments,
    notifications). Nothing about anyone else: no visitor's IP address, no customer's
    email, no other partner's name. The export is recorded in the partner's admin history.
    """
    partner = Partner.objects.select_related("parent", "program", "user").get(pk=partner.pk)
    user = partner.user
    signup = PartnerSignup.objects.filter(partner=partner).first()
    clicks = Click.objects.filter(partner=partner).aggregate(
        count=Count("pk"), first=Min("at"), last=Max("at")
    )
    data: dict[str, Any] = {
        "format": "referral-program partner export 1",
        "exported_at": at.isoformat(),
        "partner": {
            "code": partner.code,
            "name": partner.name,
            "email": partner.email,
            "status": partner.status,
            "parent": partner.parent.code if partner.parent else None,
            "program": partner.program.name if partner.program else None,
            "cookie_days": partner.cookie_days,
            "notify_lead": partner.notify_lead,
            "notify_sale": partner.notify_sale,
            "created_at": _iso(partner.created_at),
            "link": partner_link(partner),
        },
        "login": None
        if user is None
        else {
            "username": user.get_username(),
            "email": user.email,
            "date_joined": _iso(user.date_joined),
            "last_login": _iso(user.last_login),
        },
        "signup": None
        if signup is None
        else {
            "website": signup.website,
            "promotion": signup.promotion,
            "ip": signup.ip,
            "user_agent": signup.user_agent,
            "created_at": _iso(signup.created_at),
            "email_confirmed_at": _iso(signup.email_confirmed_at),
            "decided_at": _iso(signup.decided_at),
            "decision_note": signup.decision_note,
        },
        "clicks": {
            "count": clicks["count"],
            "first_at": _iso(clicks["first"]),
            "last_at": _iso(clicks["last"]),
        },
    }
    for path in settings.PARTNER_EXPORT_SECTIONS:
        data.update(import_string(path)(partner))
    _audit(partner, acting_user, "Personal data exported.")
    return data


@transaction.atomic
def partner_erase(*, partner: Partner, acting_user: AbstractBaseUser | None) -> Partner:
    """Erase a partner's personal data for good, keeping the ledger whole.

    Blanked: name (to "Erased partner"), email, the sign-up's website, promotion text, IP
    address, user agent and staff note, staff notes in sign-up emails. The code becomes
    `erased-<id>` (the code was often made from the name; links handed out under it stop
    counting). The login is deleted (its sessions end with it; a staff login is only
    unlinked) with its failed-login records. The partner is made inactive with both email
    switches off. Kept: the partner row and its place in the partner tree, every
    commission, clawback and payment (the ledger and payout CSVs now show the erased
    partner), clicks without personal data of the partner. Erasing twice changes nothing.
    """
    partner = (
        Partner.objects.select_for_update(of=("self",)).select_related("user").get(pk=partner.pk)
    )
    user = partner.user
    blank = {
        "code": partner_erased_code(partner),
        "name": ERASED_NAME,
        "email": "",
        "status": PartnerStatus.INACTIVE,
        "notify_lead": False,
        "notify_sale": False,
        "user": None,
    }
    if user is None and all(getattr(partner, name) == value for name, value in blank.items()):
        return partner
    if user is not None:
        # Failed logins are counted under the login's username (partners.lockout).
        AccessAttempt.objects.filter(username=user.get_username().lower()).delete()
    Partner.objects.filter(pk=partner.pk).update(**blank)
    PartnerSignup.objects.filter(partner=partner).update(
        website="", promotion="", ip=None, user_agent="", decision_note=""
    )
    SignupEmail.objects.filter(partner=partner).update(note="")
    for hook in settings.PARTNER_ERASE_HOOKS:  # e.g. the payout details (commissions)
        import_string(hook)(partner)
    if user is not None and not (user.is_staff or user.is_superuser):
        user.delete()  # a staff login is not the partner's to lose: it is only unlinked
    partner.refresh_from_db()
    _audit_names_erase(partner)
    _audit(partner, acting_user, "Personal data erased.")
    return partner
