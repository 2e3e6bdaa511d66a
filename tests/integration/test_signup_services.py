"""Partner sign-up services (SPEC §9 "Sign-up"): sign-up, confirmation, approval, rejection,
their emails, and the sign-up settings on the Referral Partner Defaults."""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.utils import timezone

from partners.models import (
    DefaultsChange,
    Partner,
    PartnerSignup,
    PartnerStatus,
    SignupEmail,
)
from partners.selectors import defaults_get
from partners.services.defaults import defaults_update
from partners.services.partners import partner_update, partners_set_parent
from partners.services.signup import (
    AUTO_APPROVAL,
    ConfirmOutcome,
    SignupOutcome,
    SignupRateLimited,
    partner_signup,
    partner_signup_confirm,
    partners_approve,
    partners_reject,
    signup_email_send,
)
from partners.signup import confirm_token_make
from partners.tokens import TokenClick, encode_token, new_click_id
from tests.factories import PartnerFactory, PartnerSignupFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "blue-river-lantern-42"
SITE_URL = "https://partners.example"


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE_URL
    settings.SIGNUP_RATE_LIMIT = 5
    settings.SIGNUP_CONFIRM_DAYS = 7


def open_signup(**fields):
    defaults_update(data={"signup_enabled": True, **fields}, acting_user=None)


def sign_up(
    *, email="ada@example.com", name="Ada Lovelace", token=None, ip="203.0.113.5", at=None, **more
):
    return partner_signup(
        data={"name": name, "email": email, "password": PASSWORD, **more},
        tracking_token=token,
        ip=ip,
        user_agent="Mozilla/5.0 (X11; Linux x86_64)",
        at=at or timezone.now(),
    )


def token_of(*partners, days_ago=1):
    """A visitor's rp_ref after clicking the partners' links, in that order."""
    at = timezone.now() - timedelta(days=days_ago)
    clicks = [
        TokenClick(click_id=new_click_id(at), partner_id=p.pk, at=at + timedelta(minutes=n))
        for n, p in enumerate(partners)
    ]
    return encode_token(clicks[:1] + clicks[1:][-1:])


def rows() -> tuple[int, int, int, int]:
    """Everything a sign-up may write."""
    return (
        Partner.objects.count(),
        PartnerSignup.objects.count(),
        SignupEmail.objects.count(),
        get_user_model().objects.count(),
    )


def send_all() -> None:
    for pk in SignupEmail.objects.filter(sent_at__isnull=True).values_list("pk", flat=True):
        signup_email_send(email_id=pk)


def confirm_link(message) -> str:
    return re.search(r"https://partners\.example(/partner/signup/confirm/[^/\s]+/)", message.body)[
        1
    ]


# --- Signing up -----------------------------------------------------------------------------


def test_a_sign_up_makes_a_pending_partner_with_a_login_and_a_confirmation_email(
    django_capture_on_commit_callbacks,
):
    open_signup()

    with django_capture_on_commit_callbacks(execute=True):
        result = sign_up(website="https://ada.example/blog", promotion="My newsletter")

    assert result.outcome == SignupOutcome.CREATED
    partner = Partner.objects.select_related("signup", "user").get()
    assert result.partner == partner
    assert (partner.code, partner.name, partner.email) == (
        "ada-lovelace",
        "Ada Lovelace",
        "ada@example.com",
    )
    assert partner.status == PartnerStatus.PENDING
    assert partner.parent is None
    assert partner.user.username == "ada-lovelace"
    assert partner.user.check_password(PASSWORD)
    assert not partner.user.is_staff
    signup = partner.signup
    assert (signup.website, signup.promotion, signup.ip) == (
        "https://ada.example/blog",
        "My newsletter",
        "203.0.113.5",
    )
    assert signup.email_confirmed_at is None and signup.decided_at is None
    [email] = SignupEmail.objects.all()
    assert (email.partner, email.kind) == (partner, "confirm")
    assert email.sent_at is not None
    [message] = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == "Confirm your email for our partner program"
    assert "The link works for 7 days." in message.body
    assert confirm_link(message).startswith("/partner/signup/confirm/")


@pytest.mark.parametrize(
    ("mode", "expected_parent"),
    [
        pytest.param("none", None, id="none"),
        pytest.param("referring", "recruiter", id="referring-partner"),
        pytest.param("fixed", "house", id="fixed-partner"),
    ],
)
def test_the_parent_follows_the_setting(mode, expected_parent):
    recruiter = PartnerFactory(code="recruiter")
    house = PartnerFactory(code="house")
    open_signup(signup_parent=mode, signup_parent_partner=house)

    partner = sign_up(token=token_of(recruiter)).partner

    assert (partner.parent.code if partner.parent else None) == expected_parent
    assert partner.signup.referred_by == recruiter  # kept whatever the setting


@pytest.mark.parametrize(
    ("selection", "expected"),
    [pytest.param("last", "second", id="last"), pytest.param("first", "first", id="first")],
)
def test_the_referring_partner_is_the_first_or_last_click_as_the_defaults_say(selection, expected):
    first, second = PartnerFactory(code="first"), PartnerFactory(code="second")
    open_signup(signup_parent="referring", partner_selection=selection)

    partner = sign_up(token=token_of(first, second)).partner

    assert partner.parent.code == expected


@pytest.mark.parametrize(
    ("status", "cookie_days", "days_ago"),
    [
        pytest.param("inactive", None, 1, id="inactive-referrer"),
        pytest.param("pending", None, 1, id="pending-referrer"),
        pytest.param("rejected", None, 1, id="rejected-referrer"),
        pytest.param("active", 30, 31, id="click-past-cookie-days"),
    ],
)
def test_a_referrer_who_could_not_be_credited_does_not_become_the_parent(
    status, cookie_days, days_ago
):
    recruiter = PartnerFactory(code="recruiter", status=status, cookie_days=cookie_days)
    open_signup(signup_parent="referring")

    partner = sign_up(token=token_of(recruiter, days_ago=days_ago)).partner

    assert partner.parent is None
    assert partner.signup.referred_by is None


@pytest.mark.parametrize(
    "token",
    [pytest.param(None, id="no-cookie"), pytest.param("forged:token:value", id="forged-cookie")],
)
def test_without_a_valid_cookie_the_referring_setting_gives_no_parent(token):
    open_signup(signup_parent="referring")

    assert sign_up(token=token).partner.parent is None


def test_a_fixed_parent_no_longer_active_gives_no_parent():
    house = PartnerFactory(code="house")
    open_signup(signup_parent="fixed", signup_parent_partner=house)
    Partner.objects.filter(pk=house.pk).update(status=PartnerStatus.INACTIVE)

    assert sign_up().partner.parent is None


def test_a_new_partner_can_never_become_its_recruiters_ancestor():
    recruiter = PartnerFactory(code="recruiter")
    open_signup(signup_parent="referring")
    recruit = sign_up(token=token_of(recruiter)).partner
    before = list(Partner.objects.order_by("pk").values_list("pk", "parent_id"))

    with pytest.raises(ValidationError) as by_bulk:
        partners_set_parent(partners=Partner.objects.filter(pk=recruiter.pk), parent=recruit)
    with pytest.raises(ValidationError) as by_form:
        partner_update(partner=recruiter, data={"parent": recruit})

    assert "cycle" in by_bulk.value.message_dict["parent"][0]
    assert "cycle" in by_form.value.message_dict["parent"][0]
    assert list(Partner.objects.order_by("pk").values_list("pk", "parent_id")) == before


def test_the_code_is_free_among_partner_codes_and_usernames():
    PartnerFactory(code="Ada-Lovelace")
    UserFactory(username="ada-lovelace-2")
    open_signup()

    partner = sign_up().partner

    assert partner.code == "ada-lovelace-3"
    assert partner.user.username == "ada-lovelace-3"


def test_a_sign_up_costs_the_same_queries_whatever_the_partners_and_sign_ups(
    django_assert_max_num_queries,
):
    open_signup(signup_parent="referring")
    recruiter = PartnerFactory(code="recruiter")
    with django_assert_max_num_queries(50) as first:
        sign_up(email="first@example.com", name="First Person", token=token_of(recruiter))
    for n in range(30):
        PartnerSignupFactory(partner__parent=recruiter, referred_by=recruiter)
        PartnerFactory(email=f"other{n}@example.com")

    with django_assert_max_num_queries(len(first.captured_queries)):
        sign_up(email="second@example.com", name="Second Person", token=token_of(recruiter))

    assert Partner.objects.get(email="second@example.com").parent == recruiter


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"name": "  "}, "name", id="blank-name"),
        pytest.param({"name": "x" * 201}, "name", id="long-name"),
        pytest.param({"email": "not-an-email"}, "email", id="bad-email"),
        pytest.param({"password": "short1"}, "password", id="short-password"),
        pytest.param({"password": "password123"}, "password", id="common-password"),
        pytest.param({"password": "48305938475"}, "password", id="numeric-password"),
        pytest.param({"password": "ada@example.com"}, "password", id="password-is-the-email"),
        pytest.param({"website": "javascript:alert(1)"}, "website", id="bad-website"),
        pytest.param({"website": "ftp://ada.example/"}, "website", id="ftp-website"),
        pytest.param({"promotion": "x" * 2001}, "promotion", id="long-promotion"),
        pytest.param({"code": "mine"}, "code", id="unknown-field"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(fields, field):
    open_signup()
    before = rows()

    with pytest.raises(ValidationError) as refused:
        partner_signup(
            data={
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "password": PASSWORD,
                **fields,
            },
            tracking_token=None,
            ip="203.0.113.5",
            user_agent="",
            at=timezone.now(),
        )

    assert field in refused.value.message_dict
    assert rows() == before


def test_a_closed_sign_up_writes_nothing():
    before = rows()

    with pytest.raises(ValidationError, match="closed"):
        sign_up()

    assert rows() == before


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("jane@partners.example", id="same"),
        pytest.param("Jane@Partners.EXAMPLE", id="case"),
    ],
)
def test_a_known_email_makes_nothing_but_an_email_to_that_partner(
    email, django_capture_on_commit_callbacks
):
    jane = PartnerFactory(code="jane", name="Jane Roe", email="jane@partners.example")
    open_signup()
    partners, signups, _, users = rows()

    with django_capture_on_commit_callbacks(execute=True):
        result = sign_up(email=email)

    assert result.outcome == SignupOutcome.KNOWN and result.partner is None
    assert rows() == (partners, signups, 1, users)
    [message] = mail.outbox
    assert message.to == ["jane@partners.example"]
    assert message.subject == "Your partner account"
    assert "No new account was made." in message.body
    assert f"partner code ({jane.code})" in message.body
    assert f"{SITE_URL}/partner/login/" in message.body
    assert f"{SITE_URL}/partner/password-reset/" in message.body


def test_repeated_sign_ups_with_a_known_email_email_it_once_in_15_minutes():
    PartnerFactory(email="jane@partners.example")
    open_signup()
    now = timezone.now()

    for minutes in (0, 5, 14):
        sign_up(email="jane@partners.example", at=now + timedelta(minutes=minutes))
    sign_up(email="jane@partners.example", at=now + timedelta(minutes=16))

    assert SignupEmail.objects.filter(kind="known").count() == 2


def test_signing_up_again_before_confirming_sends_the_confirmation_again():
    open_signup()
    first = sign_up()
    later = timezone.now() + timedelta(minutes=20)

    again = sign_up(name="Ada L.", at=later)

    assert again.outcome == SignupOutcome.KNOWN
    assert Partner.objects.get().name == "Ada Lovelace"  # the first sign-up's details stand
    assert list(SignupEmail.objects.order_by("pk").values_list("partner", "kind")) == [
        (first.partner.pk, "confirm"),
        (first.partner.pk, "confirm"),
    ]


def test_the_rate_limit_counts_sign_ups_per_ip_address_in_the_last_hour(settings):
    settings.SIGNUP_RATE_LIMIT = 2
    open_signup()
    now = timezone.now()
    sign_up(email="old@example.com", at=now - timedelta(minutes=61))
    sign_up(email="a@example.com", at=now - timedelta(minutes=30))
    sign_up(email="b@example.com", at=now)
    before = rows()

    with pytest.raises(SignupRateLimited):
        sign_up(email="c@example.com", at=now)

    assert rows() == before
    assert sign_up(email="c@example.com", ip="198.51.100.7", at=now).partner is not None


def test_a_rate_limit_of_0_is_no_limit(settings):
    settings.SIGNUP_RATE_LIMIT = 0
    open_signup()

    for n in range(8):
        sign_up(email=f"p{n}@example.com")

    assert PartnerSignup.objects.count() == 8


# --- Confirming the email ------------------------------------------------------------------


def test_confirming_leaves_the_partner_pending_for_staff():
    open_signup()
    partner = sign_up().partner
    token = confirm_token_make(partner_id=partner.pk, email=partner.email)
    at = timezone.now()

    assert partner_signup_confirm(token=token, at=at) == ConfirmOutcome.PENDING

    partner.refresh_from_db()
    assert partner.status == PartnerStatus.PENDING
    assert partner.signup.email_confirmed_at == at
    assert not SignupEmail.objects.filter(kind="approved").exists()


def test_with_auto_approval_confirming_makes_the_partner_active(django_capture_on_commit_callbacks):
    recruiter = PartnerFactory(code="recruiter")
    open_signup(signup_auto_approve=True, signup_parent="referring")
    partner = sign_up(token=token_of(recruiter)).partner
    token = confirm_token_make(partner_id=partner.pk, email=partner.email)

    with django_capture_on_commit_callbacks(execute=True):
        first = partner_signup_confirm(token=token, at=timezone.now())
    again = partner_signup_confirm(token=token, at=timezone.now())

    assert (first, again) == (ConfirmOutcome.ACTIVE, ConfirmOutcome.ACTIVE)
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.ACTIVE
    assert partner.parent == recruiter
    assert partner.signup.decided_by == AUTO_APPROVAL
    assert SignupEmail.objects.filter(kind="approved").count() == 1
    approved = next(m for m in mail.outbox if m.subject == "Welcome to our partner program")
    assert "Your partner code: ada-lovelace" in approved.body
    assert f"Your partner link: {SITE_URL}/go/ada-lovelace/" in approved.body


def test_a_link_for_an_email_the_partner_no_longer_has_confirms_nothing():
    open_signup()
    partner = sign_up().partner
    token = confirm_token_make(partner_id=partner.pk, email=partner.email)
    Partner.objects.filter(pk=partner.pk).update(email="other@example.com")

    assert partner_signup_confirm(token=token, at=timezone.now()) == ConfirmOutcome.INVALID
    assert PartnerSignup.objects.get().email_confirmed_at is None


def test_a_partner_who_did_not_sign_up_has_nothing_to_confirm():
    jane = PartnerFactory(status=PartnerStatus.PENDING)
    token = confirm_token_make(partner_id=jane.pk, email=jane.email)

    assert partner_signup_confirm(token=token, at=timezone.now()) == ConfirmOutcome.INVALID


def test_an_expired_link_confirms_nothing(monkeypatch):
    open_signup()
    partner = sign_up().partner
    eight_days_ago = time.time() - 8 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: eight_days_ago)
        token = confirm_token_make(partner_id=partner.pk, email=partner.email)

    assert partner_signup_confirm(token=token, at=timezone.now()) == ConfirmOutcome.EXPIRED
    assert PartnerSignup.objects.get().email_confirmed_at is None


def test_a_rejected_partner_who_confirms_stays_rejected():
    signup = PartnerSignupFactory(confirmed=False, partner__status=PartnerStatus.REJECTED)
    token = confirm_token_make(partner_id=signup.partner.pk, email=signup.partner.email)

    assert partner_signup_confirm(token=token, at=timezone.now()) == ConfirmOutcome.CLOSED
    assert Partner.objects.get().status == PartnerStatus.REJECTED


# --- Approving and rejecting ---------------------------------------------------------------


def test_approving_in_bulk_takes_the_confirmed_pending_and_rejected_partners_only():
    waiting = PartnerSignupFactory(partner__code="waiting").partner
    unconfirmed = PartnerSignupFactory(partner__code="unconfirmed", confirmed=False).partner
    rejected = PartnerSignupFactory(partner__code="rejected", partner__status="rejected").partner
    by_staff = PartnerFactory(code="bystaff", status=PartnerStatus.PENDING)
    active = PartnerFactory(code="active")
    at = timezone.now()

    result = partners_approve(partners=Partner.objects.all(), actor="staff1", at=at)

    assert (result.decided, result.unconfirmed, result.not_pending) == (3, 1, 1)
    statuses = dict(Partner.objects.values_list("code", "status"))
    assert statuses == {
        "waiting": "active",
        "rejected": "active",
        "bystaff": "active",
        "unconfirmed": "pending",
        "active": "active",
    }
    decided = PartnerSignup.objects.filter(partner__in=[waiting, rejected])
    assert set(decided.values_list("decided_at", "decided_by")) == {(at, "staff1")}
    assert PartnerSignup.objects.get(partner=unconfirmed).decided_at is None
    emailed = set(SignupEmail.objects.filter(kind="approved").values_list("partner", flat=True))
    assert emailed == {waiting.pk, rejected.pk, by_staff.pk}
    assert active.pk not in emailed


def test_approving_twice_emails_once():
    PartnerSignupFactory()

    first = partners_approve(partners=Partner.objects.all(), actor="staff1", at=timezone.now())
    second = partners_approve(partners=Partner.objects.all(), actor="staff2", at=timezone.now())

    assert (first.decided, second.decided, second.not_pending) == (1, 0, 1)
    assert SignupEmail.objects.count() == 1
    assert PartnerSignup.objects.get().decided_by == "staff1"


def test_rejecting_emails_only_confirmed_addresses_with_the_note(
    django_capture_on_commit_callbacks,
):
    confirmed = PartnerSignupFactory(partner__code="confirmed").partner
    PartnerSignupFactory(partner__code="unconfirmed", confirmed=False)
    PartnerFactory(code="active")

    with django_capture_on_commit_callbacks(execute=True):
        result = partners_reject(
            partners=Partner.objects.all(),
            actor="staff1",
            at=timezone.now(),
            note="We only work with food blogs.",
        )

    assert (result.decided, result.not_pending) == (2, 1)
    assert dict(Partner.objects.values_list("code", "status")) == {
        "confirmed": "rejected",
        "unconfirmed": "rejected",
        "active": "active",
    }
    assert set(PartnerSignup.objects.values_list("decision_note", flat=True)) == {
        "We only work with food blogs."
    }
    [message] = mail.outbox
    assert message.to == [confirmed.email]
    assert message.subject == "Your partner application"
    assert "we did not approve your application" in message.body
    assert "We only work with food blogs." in message.body


def test_a_rejection_note_over_1000_characters_changes_nothing():
    PartnerSignupFactory()

    with pytest.raises(ValidationError) as refused:
        partners_reject(
            partners=Partner.objects.all(), actor="staff1", at=timezone.now(), note="x" * 1001
        )

    assert "note" in refused.value.message_dict
    assert Partner.objects.get().status == PartnerStatus.PENDING
    assert not SignupEmail.objects.exists()


def test_an_email_is_sent_once_even_if_the_task_runs_twice():
    PartnerSignupFactory()
    partners_approve(partners=Partner.objects.all(), actor="staff1", at=timezone.now())
    email = SignupEmail.objects.get()

    assert signup_email_send(email_id=email.pk) is True
    assert signup_email_send(email_id=email.pk) is False
    assert len(mail.outbox) == 1


# --- The settings on the defaults -----------------------------------------------------------


def test_the_fixed_mode_needs_a_partner_and_nothing_is_saved_without_one():
    before = (defaults_get().signup_parent, DefaultsChange.objects.count())

    with pytest.raises(ValidationError) as refused:
        defaults_update(data={"signup_parent": "fixed"}, acting_user=None)

    assert list(refused.value.message_dict) == ["signup_parent_partner"]
    assert (defaults_get().signup_parent, DefaultsChange.objects.count()) == before


@pytest.mark.parametrize("status", ["inactive", "pending", "rejected"])
def test_only_an_active_partner_may_be_the_fixed_parent(status):
    partner = PartnerFactory(status=status)

    with pytest.raises(ValidationError) as refused:
        defaults_update(
            data={"signup_parent": "fixed", "signup_parent_partner": partner}, acting_user=None
        )

    assert list(refused.value.message_dict) == ["signup_parent_partner"]
    assert defaults_get().signup_parent_partner is None
    assert not DefaultsChange.objects.exists()


def test_the_history_keeps_the_fixed_parent_by_code():
    house = PartnerFactory(code="house")

    defaults_update(
        data={"signup_parent": "fixed", "signup_parent_partner": house}, acting_user=None
    )

    assert DefaultsChange.objects.get().changes == {
        "signup_parent": {"old": "none", "new": "fixed"},
        "signup_parent_partner": {"old": None, "new": "house"},
    }
