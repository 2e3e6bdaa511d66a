"""Partner sign-up (SPEC §9): `partner_signup`, the email confirmation, staff approval
and rejection, and the sign-up emails (logged, then sent by the
"partners.tasks.send_signup_email" task after the commit), of which the Partner Center
invitation is one kind (`partners.services.access`)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from referral_program.background import task_queue_on_commit

from ..invitations import invitation_path
from ..models import (
    NO_LOGIN_STATUSES,
    Partner,
    PartnerSignup,
    PartnerStatus,
    ReferralDefaults,
    SignupEmail,
    SignupEmailKind,
)
from ..selectors import partner_link, signup_referrer_id
from ..signup import ConfirmLinkExpired, confirm_token_make, confirm_token_read, signup_parent_id
from ..signup_attempts import signup_attempt_record, signup_attempts_exhausted
from ..tokens import decode_token
from .partners import partner_code_from_name


class SignupRateLimited(Exception):
    """Too many sign-ups from one IP address in the last hour (`SIGNUP_RATE_LIMIT`), for new
    and known emails alike (partners/signup_attempts.py)."""


class SignupOutcome:
    CREATED = "created"  # a new pending partner, and a confirmation email
    KNOWN = "known"  # the email is a partner's already: that partner gets an email instead


class ConfirmOutcome:
    INVALID = "invalid"
    EXPIRED = "expired"
    PENDING = "pending"  # confirmed; waiting for staff
    ACTIVE = "active"  # confirmed and approved (automatically or before)
    CLOSED = "closed"  # confirmed, but the partner was rejected or made inactive


@dataclass(frozen=True)
class SignupResult:
    outcome: str
    partner: Partner | None  # the new partner (CREATED) only


@dataclass(frozen=True)
class SignupDecision:
    """What an approval or rejection did to the chosen partners."""

    decided: int
    unconfirmed: int = 0  # pending partners whose email is not confirmed yet (not approved)
    not_pending: int = 0  # partners it does not apply to (active, inactive; or rejected)


SIGNUP_FIELDS_IN = ("name", "email", "password", "website", "promotion")
# The same sign-up email is not sent to one partner more often than this.
SIGNUP_EMAIL_REPEAT = timedelta(minutes=15)
AUTO_APPROVAL = "auto-approval"


def _username_taken(code: str) -> bool:
    return get_user_model().objects.filter(username__iexact=code).exists()


@transaction.atomic
def partner_signup(
    *,
    data: Mapping[str, Any],
    tracking_token: str | None,
    ip: str | None,
    user_agent: str,
    at: datetime,
) -> SignupResult:
    """Someone applies on the public sign-up page.

    `data`: name, email, password, and optional website and promotion (how they will
    promote). The new partner is pending, with a login that cannot be used before the
    partner is active, and gets an email with a confirmation link. The parent follows the
    defaults' `signup_parent`: nobody, the referring partner of `tracking_token` (the
    visitor's `rp_ref`), or the chosen partner.

    An email that is already a partner's makes nothing: that partner is emailed instead
    (the confirmation link again for an unconfirmed sign-up), and the outcome is KNOWN,
    which the page must not tell apart from CREATED.

    Sign-ups run one at a time (the defaults row is locked), so the rate limit and the
    email check cannot be raced. Raises SignupRateLimited, or ValidationError naming the
    field, before anything is written.
    """
    unknown = set(data) - set(SIGNUP_FIELDS_IN)
    if unknown:
        raise ValidationError({name: "Not a sign-up field." for name in unknown})
    password = data.get("password") or ""
    # Hashing is slow: done before the lock, and for a known email as well as a new one, so
    # the answer's timing does not tell them apart either.
    password_hash = make_password(password)
    defaults = ReferralDefaults.objects.select_for_update().get(pk=ReferralDefaults.SINGLETON_PK)
    if not defaults.signup_enabled:
        raise ValidationError("Partner sign-up is closed.")
    if signup_attempts_exhausted(ip=ip, at=at):
        raise SignupRateLimited

    name = (data.get("name") or "").strip()
    email = (data.get("email") or "").strip()
    code = partner_code_from_name(name, also_taken=_username_taken)
    partner = Partner(code=code, name=name, email=email, status=PartnerStatus.PENDING)
    signup = PartnerSignup(
        website=(data.get("website") or "").strip(),
        promotion=(data.get("promotion") or "").strip(),
        ip=ip,
        user_agent=user_agent[:256],
        created_at=at,
    )
    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
    for row, exclude in ((partner, ["parent", "program", "user"]), (signup, ["partner"])):
        try:
            row.full_clean(exclude=exclude)
        except ValidationError as error:
            errors.update(error.message_dict)
    try:
        validate_password(password, user_model(username=code, email=email, first_name=name))
    except ValidationError as error:
        errors["password"] = error.messages
    if errors:
        raise ValidationError(errors)

    signup_attempt_record(ip=ip, at=at)  # a known email counts as much as a new one
    known = Partner.objects.filter(email__iexact=email).select_related("signup").order_by("pk")
    known = known.first()
    if known is not None:
        unconfirmed = (
            known.status == PartnerStatus.PENDING
            and hasattr(known, "signup")
            and not known.signup.email_confirmed
        )
        kind = SignupEmailKind.CONFIRM if unconfirmed else SignupEmailKind.KNOWN
        signup_emails_queue(partner_ids=[known.pk], kind=kind, at=at, repeat=SIGNUP_EMAIL_REPEAT)
        return SignupResult(outcome=SignupOutcome.KNOWN, partner=None)

    referrer_id = signup_referrer_id(
        clicks=decode_token(tracking_token), selection=defaults.partner_selection, at=at
    )
    fixed = defaults.signup_parent_partner
    partner.parent_id = signup_parent_id(
        mode=defaults.signup_parent,
        referrer_id=referrer_id,
        fixed_id=fixed.pk if fixed else None,
        fixed_status=fixed.status if fixed else None,
    )
    partner.user = user_model.objects.create(username=code, email=email, password=password_hash)
    partner.save()
    signup.partner = partner
    signup.referred_by_id = referrer_id
    signup.save()
    signup_emails_queue(partner_ids=[partner.pk], kind=SignupEmailKind.CONFIRM, at=at)
    return SignupResult(outcome=SignupOutcome.CREATED, partner=partner)


def partner_signup_confirm(*, token: str, at: datetime) -> str:
    """The partner opened the link of their confirmation email and confirmed it.

    With `signup_auto_approve` on, a pending partner is approved at once. Confirming again
    changes nothing. Returns a ConfirmOutcome.
    """
    max_age = timedelta(days=settings.SIGNUP_CONFIRM_DAYS)
    try:
        claim = confirm_token_read(token, max_age=max_age)
    except ConfirmLinkExpired:
        return ConfirmOutcome.EXPIRED
    if claim is None:
        return ConfirmOutcome.INVALID
    with transaction.atomic():
        signup = (
            PartnerSignup.objects.select_for_update()
            .select_related("partner")
            .filter(partner_id=claim.partner_id)
            .first()
        )
        # A link sent before the partner's email changed confirms nothing.
        if signup is None or signup.partner.email.lower() != claim.email:
            return ConfirmOutcome.INVALID
        partner = signup.partner
        if signup.email_confirmed_at is None:
            signup.email_confirmed_at = at
            signup.save(update_fields=["email_confirmed_at"])
            auto = ReferralDefaults.objects.values_list("signup_auto_approve", flat=True).get(
                pk=ReferralDefaults.SINGLETON_PK
            )
            if auto and partner.status == PartnerStatus.PENDING:
                partners_approve(
                    partners=Partner.objects.filter(pk=partner.pk), actor=AUTO_APPROVAL, at=at
                )
                partner.status = PartnerStatus.ACTIVE
    if partner.status == PartnerStatus.ACTIVE:
        return ConfirmOutcome.ACTIVE
    if partner.status == PartnerStatus.PENDING:
        return ConfirmOutcome.PENDING
    return ConfirmOutcome.CLOSED


def _lock_for_decision(partners: QuerySet[Partner]) -> tuple[list[tuple[int, str]], dict]:
    """The chosen partners' ids and statuses, locked; and which of them signed up with an
    email not confirmed yet."""
    rows = list(
        Partner.objects.select_for_update()
        .filter(pk__in=partners.values("pk"))
        .order_by("pk")
        .values_list("pk", "status")
    )
    confirmed = dict(
        PartnerSignup.objects.filter(partner_id__in=[pk for pk, _ in rows]).values_list(
            "partner_id", "email_confirmed_at"
        )
    )
    unconfirmed = {pk for pk, at in confirmed.items() if at is None}
    return rows, unconfirmed


@transaction.atomic
def partners_approve(*, partners: QuerySet[Partner], actor: str, at: datetime) -> SignupDecision:
    """Approve pending (or rejected) partners: they become active, can log in, and get an
    email. Partners who signed up are approved only once their email is confirmed."""
    rows, unconfirmed = _lock_for_decision(partners)
    open_ = [pk for pk, status in rows if status in NO_LOGIN_STATUSES]
    chosen = [pk for pk in open_ if pk not in unconfirmed]
    if chosen:
        Partner.objects.filter(pk__in=chosen).update(status=PartnerStatus.ACTIVE)
        PartnerSignup.objects.filter(partner_id__in=chosen).update(
            decided_at=at, decided_by=actor, decision_note=""
        )
        signup_emails_queue(partner_ids=chosen, kind=SignupEmailKind.APPROVED, at=at)
    return SignupDecision(
        decided=len(chosen),
        unconfirmed=len(open_) - len(chosen),
        not_pending=len(rows) - len(open_),
    )


@transaction.atomic
def partners_reject(
    *, partners: QuerySet[Partner], actor: str, at: datetime, note: str = ""
) -> SignupDecision:
    """Turn down pending partners: they become rejected (never credited, no login). Those
    with a confirmed email (or made by staff) get an email, with `note` when given; an
    address nobody confirmed is not written to."""
    note = note.strip()
    if len(note) > 1000:
        raise ValidationError({"note": "Keep the note under 1,000 characters."})
    rows, unconfirmed = _lock_for_decision(partners)
    chosen = [pk for pk, status in rows if status == PartnerStatus.PENDING]
    if chosen:
        Partner.objects.filter(pk__in=chosen).update(status=PartnerStatus.REJECTED)
        PartnerSignup.objects.filter(partner_id__in=chosen).update(
            decided_at=at, decided_by=actor, decision_note=note
        )
        emailed = [pk for pk in chosen if pk not in unconfirmed]
        signup_emails_queue(partner_ids=emailed, kind=SignupEmailKind.REJECTED, at=at, note=note)
    return SignupDecision(decided=len(chosen), not_pending=len(rows) - len(chosen))


def signup_emails_queue(
    *,
    partner_ids: list[int],
    kind: str,
    at: datetime,
    note: str = "",
    repeat: timedelta | None = None,
) -> list[SignupEmail]:
    """Log one email per partner and send them by a task after the commit. With `repeat`,
    a partner who got this kind of email within that time gets none. The Partner Center
    invitation (`partners.services.access`) goes this way too."""
    if repeat is not None:
        recent = set(
            SignupEmail.objects.filter(
                partner_id__in=partner_ids, kind=kind, created_at__gt=at - repeat
            ).values_list("partner_id", flat=True)
        )
        partner_ids = [pk for pk in partner_ids if pk not in recent]
    if not partner_ids:
        return []
    rows = SignupEmail.objects.bulk_create(
        SignupEmail(partner_id=pk, kind=kind, note=note, created_at=at) for pk in partner_ids
    )
    for row in rows:
        task_queue_on_commit("partners.tasks.send_signup_email", row.pk)
    return rows


def signup_email_send(*, email_id: int) -> bool:
    """Send one queued sign-up email; a second run of the same id sends nothing."""
    with transaction.atomic():
        email = (
            SignupEmail.objects.select_for_update(of=("self",))
            .select_related("partner", "partner__signup", "partner__user")
            .filter(pk=email_id, sent_at__isnull=True)
            .first()
        )
        if email is None:
            return False
        if email.kind == SignupEmailKind.INVITE and not _invitable(email.partner):
            return False  # access revoked or login unlinked meanwhile: the link would not work
        context = _signup_email_context(email)
        subject = render_to_string(f"emails/signup_{email.kind}_subject.txt", context).strip()
        body = render_to_string(f"emails/signup_{email.kind}_body.txt", context)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email.partner.email])
        email.sent_at = timezone.now()
        email.save(update_fields=["sent_at"])
    return True


def _signup_email_context(email: SignupEmail) -> dict[str, Any]:
    partner = email.partner
    site = settings.SITE_URL
    context = {
        "partner": partner,
        "note": email.note,
        "site_url": site,
        "login_url": site + reverse("partner:login"),
        "password_reset_url": site + reverse("partner:password_reset"),
        "signup_url": site + reverse("signup:form"),
        "confirm_days": settings.SIGNUP_CONFIRM_DAYS,
    }
    if email.kind == SignupEmailKind.CONFIRM:
        token = confirm_token_make(partner_id=partner.pk, email=partner.email)
        context["confirm_url"] = site + reverse("signup:confirm", args=[token])
    if email.kind == SignupEmailKind.APPROVED:
        context["link"] = partner_link(partner)
    if email.kind == SignupEmailKind.INVITE:
        context["invitation_url"] = site + invitation_path(partner.user)
        context["invite_days"] = settings.PARTNER_INVITE_DAYS
    return context


def _invitable(partner: Partner) -> bool:
    user = partner.user
    return user is not None and user.is_active and not (user.is_staff or user.is_superuser)
