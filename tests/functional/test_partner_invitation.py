"""Partner Center access from the staff partner page (SPEC §12, issue 18 item 7): staff
invite a partner (an email with a one-time link to set a password), send a new invitation,
or revoke access; the partner sets a password on the link's page and is logged in."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from partners.invitations import invitation_path
from partners.models import Partner, PartnerStatus, SignupEmail, SignupEmailKind
from partners.services.access import partner_access_revoke, partner_invite
from referral_program.mail import HIDDEN, hide_credential_links
from tests.factories import PartnerFactory, PartnerSignupFactory, StaffFactory, UserFactory
from tests.functional.test_partner_center import PASSWORD, logged_in, page_text, partner_with_login

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-pass-phrase"
LINK = re.compile(r"http://127\.0\.0\.1:8000(/partner/invitation/[^/\s]+/[^/\s]+/)")
T0 = datetime(2026, 11, 6, 12, tzinfo=UTC)


@pytest.fixture
def kim(db):
    """An active partner without a login."""
    return PartnerFactory(code="kim01", name="Kim Lee", email="kim@partners.example")


@pytest.fixture
def invite(staff_client, django_capture_on_commit_callbacks):
    """Staff press the invite button of `partner`'s page; the email goes out (as the task
    does after the commit). Returns the link of the new email."""

    def press(partner: Partner) -> str:
        before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(f"/staff/partners/{partner.code}/invite/")
        assert response.status_code == 302
        assert response["Location"] == f"/staff/partners/{partner.code}/"
        [message] = mail.outbox[before:]
        return LINK.search(message.body)[1]

    return press


def set_password(client: Client, link: str, password: str = NEW_PASSWORD):
    """Open the emailed link, then choose the password on the page it leads to."""
    opened = client.get(link)
    assert opened.status_code == 302, page_text(opened)
    form_url = opened["Location"]
    assert form_url.endswith("/set-password/")
    assert client.get(form_url).status_code == 200
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def can_log_in(username: str, password: str) -> bool:
    client = Client()
    response = client.post("/partner/login/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


def access_card(staff_client, partner: Partner) -> str:
    text = page_text(staff_client.get(f"/staff/partners/{partner.code}/"))
    return text[text.index("Partner Center access") :]


# --- The whole flow --------------------------------------------------------------------------


def test_the_invitation_emails_a_link_that_sets_the_password_and_logs_in(kim, invite):
    link = invite(kim)
    client = Client()

    [message] = mail.outbox
    assert message.to == ["kim@partners.example"]
    assert message.subject == "Your invitation to our Partner Center"
    assert "your partner code (kim01)" in message.body
    assert "The link works once, for 3 days." in message.body
    kim.refresh_from_db()
    assert (kim.user.username, kim.user.email) == ("kim01", "kim@partners.example")
    assert not kim.user.has_usable_password()
    assert SignupEmail.objects.get(partner=kim).kind == SignupEmailKind.INVITE

    done = set_password(client, link)

    assert done.status_code == 302
    assert done["Location"] == "/partner/"
    dashboard = client.get("/partner/")
    assert dashboard.status_code == 200
    assert "Your password is set. Welcome, Kim Lee." in page_text(dashboard)
    kim.user.refresh_from_db()
    assert kim.user.check_password(NEW_PASSWORD)
    assert kim.user.last_login is not None
    assert can_log_in("kim01", NEW_PASSWORD)
    assert can_log_in("kim@partners.example", NEW_PASSWORD)


def test_a_used_link_is_refused(staff_client, kim, invite):
    link = invite(kim)
    set_password(Client(), link)

    again = Client().get(link)

    assert again.status_code == 200
    assert "This invitation link does not work" in page_text(again)
    assert "It was used already" in page_text(again)
    kim.refresh_from_db()
    assert kim.user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("after", "works"),
    [(timedelta(days=3) - timedelta(seconds=1), True), (timedelta(days=3, seconds=1), False)],
    ids=["last-second", "expired"],
)
def test_the_link_works_for_three_days(staff_client, kim, invite, time_machine, after, works):
    time_machine.move_to(T0, tick=False)
    link = invite(kim)

    time_machine.move_to(T0 + after, tick=False)
    opened = Client().get(link)

    if works:
        assert opened.status_code == 302
    else:
        assert opened.status_code == 200
        assert "This invitation link has expired" in page_text(opened)
        assert "works for 3 days" in page_text(opened)


def test_the_lifetime_is_a_setting(staff_client, kim, invite, time_machine, settings):
    settings.PARTNER_INVITE_DAYS = 10
    time_machine.move_to(T0, tick=False)
    link = invite(kim)
    assert "The link works once, for 10 days." in mail.outbox[0].body

    time_machine.move_to(T0 + timedelta(days=9), tick=False)
    assert Client().get(link).status_code == 302
    time_machine.move_to(T0 + timedelta(days=10, seconds=1), tick=False)
    assert "has expired" in page_text(Client().get(link))


def test_an_expired_link_found_in_the_session_says_expired(staff_client, kim, invite, time_machine):
    time_machine.move_to(T0, tick=False)
    link = invite(kim)
    client = Client()
    form_url = client.get(link)["Location"]

    time_machine.move_to(T0 + timedelta(days=4), tick=False)
    late = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert late.status_code == 200
    assert "This invitation link has expired" in page_text(late)
    kim.refresh_from_db()
    assert not kim.user.has_usable_password()


def test_a_new_invitation_sends_a_new_link_and_setting_a_password_ends_both(
    staff_client, kim, invite, time_machine
):
    time_machine.move_to(T0, tick=False)
    first = invite(kim)
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    second = invite(kim)

    assert first != second
    assert SignupEmail.objects.filter(partner=kim, kind=SignupEmailKind.INVITE).count() == 2
    assert Client().get(first).status_code == 302  # both work until a password is set
    set_password(Client(), second)

    assert "does not work" in page_text(Client().get(first))
    assert "does not work" in page_text(Client().get(second))
    assert "Has a login" in access_card(staff_client, kim)


def test_revoking_ends_the_sessions_the_password_and_the_links(
    staff_client, kim, invite, time_machine
):
    time_machine.move_to(T0, tick=False)
    partner_session = Client()
    set_password(partner_session, invite(kim))
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    unused = invite(kim)
    assert partner_session.get("/partner/").status_code == 200

    response = staff_client.post("/staff/partners/kim01/revoke-access/", follow=True)

    assert "kim01 can no longer log in to the Partner Center." in page_text(response)
    after = partner_session.get("/partner/")
    assert after.status_code == 302
    assert after["Location"].startswith("/partner/login/")
    assert not can_log_in("kim01", NEW_PASSWORD)
    assert "does not work" in page_text(Client().get(unused))
    kim.refresh_from_db()
    assert (kim.user_id is not None, kim.user.is_active, kim.status) == (True, False, "active")
    assert "Access revoked" in access_card(staff_client, kim)
    reset = Client().post("/partner/password-reset/", {"email": "kim@partners.example"})
    assert reset.status_code == 302
    assert len(mail.outbox) == 2  # the two invitations; no password reset email


def test_after_revoking_a_new_invitation_gives_access_again(staff_client, kim, invite):
    set_password(Client(), invite(kim))
    partner_access_revoke(partner=kim)

    set_password(Client(), invite(kim), password="yet-another-phrase")

    kim.refresh_from_db()
    assert kim.user.is_active
    assert can_log_in("kim01", "yet-another-phrase")
    assert not can_log_in("kim01", NEW_PASSWORD)


def test_revoking_drops_an_invitation_not_sent_yet(kim):
    partner_invite(partner=kim, at=T0)  # no commit in this test: the email is still queued

    partner_access_revoke(partner=kim)

    assert not SignupEmail.objects.filter(partner=kim).exists()


def test_an_invitation_left_queued_after_revoking_is_not_sent(kim):
    from partners.services.signup import signup_email_send

    email = partner_invite(partner=kim, at=T0)
    kim.refresh_from_db()
    get_user_model().objects.filter(pk=kim.user_id).update(is_active=False)

    assert signup_email_send(email_id=email.pk) is False
    assert mail.outbox == []


# --- The staff page ------------------------------------------------------------------------


def test_the_staff_page_shows_the_login_and_the_last_invitation(
    staff_client, kim, invite, time_machine
):
    assert "Login None yet" in access_card(staff_client, kim)
    assert "Last login Never Last invitation —none" in access_card(staff_client, kim)

    time_machine.move_to(T0, tick=False)
    link = invite(kim)
    card = access_card(staff_client, kim)
    assert "Invited no password set yet" in card
    assert "Last invitation 2026-11-06 12:00 UTC · sent" in card
    assert "Send a new invitation" in card

    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
    set_password(Client(), link)
    card = access_card(staff_client, kim)
    assert "Has a login kim01" in card
    assert "Last login 2026-11-06 12:05 UTC" in card
    assert "Revoke access" in card


def test_a_queued_invitation_shows_as_waiting(staff_client, kim):
    partner_invite(partner=kim, at=T0)  # not committed: the task has not run

    assert "· waiting to be sent" in access_card(staff_client, kim)


def test_a_pending_sign_up_cannot_be_invited(staff_client):
    signup = PartnerSignupFactory()
    partner = signup.partner

    response = staff_client.post(f"/staff/partners/{partner.code}/invite/", follow=True)

    assert "only an approved partner can be invited" in page_text(response)
    assert "Invite to the Partner Center" not in access_card(staff_client, partner)
    assert not SignupEmail.objects.filter(kind=SignupEmailKind.INVITE).exists()
    assert mail.outbox == []


def test_a_staff_login_named_like_the_code_is_not_invited(staff_client, kim):
    staff = StaffFactory(username="kim01")

    response = staff_client.post("/staff/partners/kim01/invite/", follow=True)

    assert "The staff login kim01 cannot become a partner's login." in page_text(response)
    kim.refresh_from_db()
    assert kim.user is None
    staff.refresh_from_db()
    assert (staff.is_active, staff.check_password(PASSWORD)) == (True, True)


def test_revoking_without_a_login_says_so(staff_client, kim):
    response = staff_client.post("/staff/partners/kim01/revoke-access/", follow=True)

    assert "kim01 has no Partner Center login." in page_text(response)


# --- Who may -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["invite", "revoke-access"])
def test_a_partner_cannot_invite_or_revoke(kim, action):
    jane = partner_with_login("jane")

    response = logged_in(jane).post(f"/staff/partners/kim01/{action}/")

    assert response.status_code == 403
    assert not SignupEmail.objects.exists()
    kim.refresh_from_db()
    jane.user.refresh_from_db()
    assert (kim.user, jane.user.is_active) == (None, True)


@pytest.mark.parametrize(
    "user",
    [
        pytest.param(lambda: UserFactory(), id="not-staff"),
        pytest.param(lambda: UserFactory(is_staff=True), id="staff-without-permission"),
    ],
)
@pytest.mark.parametrize("action", ["invite", "revoke-access"])
def test_only_staff_who_may_change_partners_invite_or_revoke(kim, user, action):
    client = Client()
    client.force_login(user())

    response = client.post(f"/staff/partners/kim01/{action}/")

    assert response.status_code == 403
    assert not SignupEmail.objects.exists()


def test_anonymous_visitors_go_to_the_staff_login(client, kim):
    response = client.post("/staff/partners/kim01/invite/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not SignupEmail.objects.exists()


@pytest.mark.parametrize("action", ["invite", "revoke-access"])
def test_the_actions_are_post_only_and_need_the_csrf_token(staff_user, kim, action):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    assert client.get(f"/staff/partners/kim01/{action}/").status_code == 405
    assert client.post(f"/staff/partners/kim01/{action}/").status_code == 403
    assert not SignupEmail.objects.exists()


def test_the_buttons_show_only_to_staff_who_may_use_them(kim):
    viewer = Client()
    viewer.force_login(UserFactory(is_staff=True))

    page = viewer.get("/staff/partners/kim01/").content.decode()

    assert "Partner Center access" in page
    assert "/staff/partners/kim01/invite/" not in page


# --- The set-password page -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/partner/invitation/nonsense/abc-def/",
        "/partner/invitation/MQ/set-password/",  # no token in the session
        "/partner/invitation/%C3%BF/1-1/",
        "/partner/invitation/OTk5OTk5OTk5/zzzzzzzzzzzzzzzz-abc/",
    ],
    ids=["garbage", "no-session-token", "bad-uid", "unknown-user-bad-timestamp"],
)
def test_a_bad_link_gets_a_clear_page(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert "This invitation link does not work" in page_text(response)


def test_a_password_reset_token_is_no_invitation_and_the_other_way_round(kim, invite):
    invite(kim)
    client = Client()
    kim.refresh_from_db()
    uid = urlsafe_base64_encode(force_bytes(kim.user.pk))
    reset_token = default_token_generator.make_token(kim.user)

    refused = client.get(f"/partner/invitation/{uid}/{reset_token}/")
    assert refused.status_code == 200
    assert "This invitation link does not work" in page_text(refused)
    invitation_token = invitation_path(kim.user).rstrip("/").rsplit("/", 1)[1]
    reset = client.get(f"/partner/password-reset/{uid}/{invitation_token}/")
    assert "This link does not work" in page_text(reset)


def test_a_staff_login_has_no_invitation_page(client):
    staff = StaffFactory()
    Partner.objects.filter(pk=PartnerFactory().pk).update(user=staff)  # linked in the admin

    response = client.get(invitation_path(staff))

    assert response.status_code == 200
    assert "does not work" in page_text(response)
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)


def test_a_weak_password_is_refused_and_nothing_changes(kim, invite):
    client = Client()
    form_url = client.get(invite(kim))["Location"]

    response = client.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})

    assert response.status_code == 200
    assert "This password is too common." in page_text(response)
    kim.refresh_from_db()
    assert not kim.user.has_usable_password()
    assert "_auth_user_id" not in client.session


def test_the_page_needs_the_csrf_token(kim, invite):
    client = Client(enforce_csrf_checks=True)
    form_url = client.get(invite(kim))["Location"]

    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 403
    kim.refresh_from_db()
    assert not kim.user.has_usable_password()


def test_no_address_from_the_request_is_followed(kim, invite):
    client = Client()
    form_url = client.get(invite(kim))["Location"]

    response = client.post(
        f"{form_url}?next=https://evil.example/",
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "next": "//evil.example"},
    )

    assert response["Location"] == "/partner/"


def test_the_console_mailer_hides_the_link_secret(kim):
    partner_invite(partner=kim, at=T0)
    kim.refresh_from_db()
    link = f"http://127.0.0.1:8000{invitation_path(kim.user)}"

    assert hide_credential_links(f"Open {link} now") == (
        f"Open http://127.0.0.1:8000/partner/invitation/{HIDDEN}/{HIDDEN}/ now"
    )


def test_an_inactive_partner_may_still_be_invited(staff_client, invite):
    partner = PartnerFactory(code="ina01", status=PartnerStatus.INACTIVE)

    set_password(Client(), invite(partner))

    assert can_log_in("ina01", NEW_PASSWORD)


# --- My profile (item 2): what the profile page links to ------------------------------------


def test_the_profile_page_links_payout_details_and_the_password_change(kim, invite):
    client = Client()
    set_password(client, invite(kim))

    page = client.get("/partner/profile/").content.decode()

    assert 'href="/partner/profile/payout/"' in page
    assert 'href="/partner/profile/password/"' in page
