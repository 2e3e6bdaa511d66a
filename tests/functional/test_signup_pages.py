"""The partner sign-up over HTTP (SPEC §9 "Sign-up"): the public pages, the staff's
Sign-ups page and admin actions, logins, and pending partners in tracking and crediting."""

import html
import re
import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone

from commissions.models import Commission, Order
from partners.models import Click, Partner, PartnerSignup, PartnerStatus, SignupEmail
from partners.services.defaults import defaults_update
from partners.services.signup import partners_approve
from partners.signup import confirm_token_make
from partners.tokens import TokenClick, encode_token, new_click_id
from tests.factories import (
    PartnerFactory,
    PartnerSignupFactory,
    ProgramFactory,
    TrackingLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SIGNUP = "/partner/signup/"
DONE = "/partner/signup/done/"
SIGNUPS = "/staff/signups/"
PASSWORD = "blue-river-lantern-42"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"
ORDERS = "/api/v1/events/orders/"


@pytest.fixture(autouse=True)
def signup_settings(settings):
    settings.SIGNUP_RATE_LIMIT = 5
    settings.SIGNUP_CONFIRM_DAYS = 7


def open_signup(**fields):
    defaults_update(data={"signup_enabled": True, **fields}, acting_user=None)


def form(**fields) -> dict[str, str]:
    return {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "password": PASSWORD,
        "password2": PASSWORD,
        "website": "",
        "promotion": "",
        **fields,
    }


def rows() -> tuple[int, int, int, int]:
    """Everything a sign-up may write."""
    return (
        Partner.objects.count(),
        PartnerSignup.objects.count(),
        SignupEmail.objects.count(),
        get_user_model().objects.count(),
    )


def text(response) -> str:
    """The page's words, as a reader sees them (no tags, entities read)."""
    words = re.sub(r"<[^>]+>", " ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(words))


# --- The public page ------------------------------------------------------------------------


def test_the_page_is_not_found_while_sign_up_is_off(client):
    assert client.get(SIGNUP).status_code == 404
    assert client.post(SIGNUP, form()).status_code == 404
    assert client.get(DONE).status_code == 404
    assert rows() == (0, 0, 0, 0)


def test_the_page_has_the_fields_a_csrf_token_and_a_hidden_trap(client):
    open_signup()

    response = client.get(SIGNUP)

    assert response.status_code == 200
    content = response.content.decode()
    for name in ("name", "email", "password", "password2", "website", "promotion"):
        assert f'name="{name}"' in content
    assert 'name="csrfmiddlewaretoken"' in content
    assert '<div class="signup-trap" aria-hidden="true">' in content
    assert re.search(r"\.signup-trap \{ position: absolute; left: -10000px;", content)
    assert 'name="fax" id="id_fax" value="" tabindex="-1" autocomplete="off"' in content


@pytest.mark.parametrize(
    ("mode", "parent"),
    [
        pytest.param("referring", "alice", id="referring-partner"),
        pytest.param("none", None, id="none"),
    ],
)
def test_a_visitor_clicks_a_partners_link_to_the_sign_up_page_and_signs_up(
    client, settings, mode, parent
):
    alice = PartnerFactory(code="alice")
    TrackingLinkFactory(code="join", destination=f"{settings.SITE_URL}/partner/signup/")
    open_signup(signup_parent=mode)

    click = client.get("/go/join/alice/", headers={"user-agent": BROWSER})
    assert click.status_code == 302
    assert click["Location"].startswith(f"{settings.SITE_URL}/partner/signup/?rp_ref=")
    assert client.get(SIGNUP).status_code == 200
    response = client.post(SIGNUP, form(), headers={"user-agent": BROWSER})

    assert response.status_code == 302 and response["Location"] == DONE
    partner = Partner.objects.exclude(pk=alice.pk).select_related("signup").get()
    assert partner.status == PartnerStatus.PENDING
    assert (partner.parent.code if partner.parent else None) == parent
    assert partner.signup.referred_by == alice
    assert partner.signup.user_agent == BROWSER


def test_the_token_may_come_in_the_url_when_there_is_no_cookie(client):
    alice = PartnerFactory(code="alice")
    open_signup(signup_parent="referring")
    at = timezone.now()
    token = encode_token([TokenClick(click_id=new_click_id(at), partner_id=alice.pk, at=at)])

    page = client.get(SIGNUP, {"rp_ref": token})
    assert f'name="rp_ref" value="{token}"' in page.content.decode()
    client.post(SIGNUP, form(rp_ref=token))

    assert Partner.objects.get(email="ada@example.com").parent == alice


def test_the_done_page_says_to_check_the_email(client):
    open_signup()

    response = client.post(SIGNUP, form(), follow=True)

    assert response.redirect_chain == [(DONE, 302)]
    assert "Check your email" in text(response)
    assert "it works for 7 days" in text(response)


def test_a_known_email_gets_the_same_answer_as_a_new_one(client):
    PartnerFactory(code="jane", email="jane@partners.example")
    open_signup()

    new = client.post(SIGNUP, form(), follow=True)
    known = client.post(SIGNUP, form(email="JANE@partners.example"), follow=True)

    assert new.redirect_chain == known.redirect_chain == [(DONE, 302)]
    assert new.content == known.content
    assert Partner.objects.filter(email__iexact="jane@partners.example").count() == 1


def test_the_honeypot_answers_like_a_success_and_keeps_nothing(client):
    open_signup()

    response = client.post(SIGNUP, form(fax="+1 555 0100"))

    assert response.status_code == 302 and response["Location"] == DONE
    assert rows() == (0, 0, 0, 0)
    assert mail.outbox == []


def test_a_post_without_the_csrf_token_is_refused():
    open_signup()
    client = Client(enforce_csrf_checks=True)

    response = client.post(SIGNUP, form())

    assert response.status_code == 403
    assert rows() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        pytest.param(
            {"password2": "another-pass-99"},
            "password2",
            "The two passwords differ.",
            id="mismatch",
        ),
        pytest.param(
            {"password": "password123", "password2": "password123"},
            "password",
            "too common",
            id="common-password",
        ),
        pytest.param({"email": "ada@"}, "email", "valid email", id="bad-email"),
        pytest.param({"name": ""}, "name", "required", id="no-name"),
        pytest.param({"website": "ftp://ada.example"}, "website", "valid URL", id="bad-website"),
    ],
)
def test_bad_input_shows_the_field_error_and_writes_nothing(client, fields, field, message):
    open_signup()

    response = client.post(SIGNUP, form(**fields))

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert rows() == (0, 0, 0, 0)


def test_too_many_sign_ups_from_one_address_are_refused_with_429(client, settings):
    settings.SIGNUP_RATE_LIMIT = 2
    open_signup()
    for n in range(2):
        assert client.post(SIGNUP, form(email=f"p{n}@example.com")).status_code == 302
    before = rows()

    response = client.post(SIGNUP, form(email="p3@example.com"))

    assert response.status_code == 429
    assert "Too many sign-ups came from your network in the last hour." in text(response)
    assert rows() == before
    other = client.post(SIGNUP, form(email="p3@example.com"), REMOTE_ADDR="198.51.100.7")
    assert other.status_code == 302


def test_a_known_email_counts_toward_the_sign_up_limit_like_a_new_one(client):
    """From one address, 4 new + 1 known + 1 new passed while 5 new + 1 new got 429: the
    limit told who is registered (issue 21, finding 6). Now the sixth is refused either way."""
    PartnerFactory(code="jane", email="jane@partners.example")
    open_signup()
    for n in range(4):
        assert client.post(SIGNUP, form(email=f"p{n}@example.com")).status_code == 302
    assert client.post(SIGNUP, form(email="jane@partners.example")).status_code == 302
    before = rows()

    new = client.post(SIGNUP, form(email="p5@example.com"))
    known = client.post(SIGNUP, form(email="jane@partners.example"))

    assert new.status_code == known.status_code == 429
    typed = text(new).replace("p5@example.com", "EMAIL")
    assert typed == text(known).replace("jane@partners.example", "EMAIL")
    assert rows() == before


class CountingHasher(MD5PasswordHasher):
    """The test hasher, counting how many passwords it hashed."""

    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


def test_a_new_and_a_known_email_cost_the_same_one_password_hash(client, settings):
    """The hash is the slow part of a sign-up (0.5 s with the production hasher); both
    answers pay it once, so their timing does not tell them apart."""
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    PartnerFactory(code="jane", email="jane@partners.example")
    open_signup()
    hashed = []
    for email in ("ada@example.com", "jane@partners.example"):
        CountingHasher.hashed = 0
        assert client.post(SIGNUP, form(email=email)).status_code == 302
        hashed.append(CountingHasher.hashed)

    assert hashed == [1, 1]


# --- Confirming -------------------------------------------------------------------------------


def confirm_url_from_outbox() -> str:
    [message] = [m for m in mail.outbox if "confirm" in m.subject.lower()]
    return re.search(r"https?://[^/\s]+(/partner/signup/confirm/[^/\s]+/)", message.body)[1]


def test_the_emailed_link_confirms_on_a_button_not_on_opening(
    client, django_capture_on_commit_callbacks
):
    open_signup()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SIGNUP, form())
    url = confirm_url_from_outbox()

    opened = client.get(url)
    assert opened.status_code == 200
    assert "Confirm my email" in text(opened)
    assert PartnerSignup.objects.get().email_confirmed_at is None

    confirmed = client.post(url)
    assert confirmed.status_code == 200
    assert "Your email is confirmed." in text(confirmed)
    assert PartnerSignup.objects.get().email_confirmed_at is not None
    assert Partner.objects.get().status == PartnerStatus.PENDING


def test_with_auto_approval_the_confirmation_makes_an_active_partner(
    client, django_capture_on_commit_callbacks
):
    open_signup(signup_auto_approve=True)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SIGNUP, form())
    url = confirm_url_from_outbox()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)

    assert "You are a partner" in text(response)
    assert Partner.objects.get().status == PartnerStatus.ACTIVE
    assert [m.subject for m in mail.outbox] == [
        "Confirm your email for our partner program",
        "Welcome to our partner program",
    ]


def test_the_link_still_works_after_sign_up_closes(client):
    signup = PartnerSignupFactory(confirmed=False)
    token = confirm_token_make(partner_id=signup.partner.pk, email=signup.partner.email)

    response = client.post(f"/partner/signup/confirm/{token}/")

    assert response.status_code == 200
    assert PartnerSignup.objects.get().email_confirmed_at is not None


@pytest.mark.parametrize(
    "token",
    [pytest.param("nonsense", id="garbage"), pytest.param("a:b:c", id="bad-signature")],
)
def test_a_broken_link_says_so_and_confirms_nothing(client, token):
    PartnerSignupFactory(confirmed=False)

    response = client.post(f"/partner/signup/confirm/{token}/")

    assert response.status_code == 400
    assert "This link does not work" in text(response)
    assert PartnerSignup.objects.get().email_confirmed_at is None


# --- Logging in --------------------------------------------------------------------------------


@pytest.fixture
def ada():
    """A partner who signed up and confirmed; their login's password is PASSWORD."""
    signup = PartnerSignupFactory(partner__code="ada-lovelace", partner__email="ada@example.com")
    signup.partner.user.set_password(PASSWORD)
    signup.partner.user.save()
    return signup.partner


@pytest.mark.parametrize(
    ("url", "username"),
    [
        pytest.param("/partner/login/", "ada-lovelace", id="partner-login-code"),
        pytest.param("/partner/login/", "ada@example.com", id="partner-login-email"),
        pytest.param("/accounts/login/", "ada-lovelace", id="staff-login-username"),
    ],
)
@pytest.mark.parametrize("status", ["pending", "rejected"])
def test_pending_and_rejected_partners_cannot_log_in(client, ada, url, username, status):
    Partner.objects.filter(pk=ada.pk).update(status=status)

    response = client.post(url, {"username": username, "password": PASSWORD})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("status", "told"),
    [
        ("pending", "Your application is waiting for the merchant's approval."),
        ("rejected", "Your application was not approved, so this login cannot be used."),
    ],
)
def test_a_partner_not_approved_is_told_why_only_with_the_right_password(client, ada, status, told):
    Partner.objects.filter(pk=ada.pk).update(status=status)

    right = client.post("/partner/login/", {"username": "ada-lovelace", "password": PASSWORD})
    wrong = client.post("/partner/login/", {"username": "ada-lovelace", "password": "guess-1"})

    assert told in text(right)
    assert "do not match" not in text(right)
    assert told not in text(wrong)
    assert "The partner code or email and the password do not match." in text(wrong)
    assert "_auth_user_id" not in client.session


def test_an_approved_partner_logs_in(client, ada):
    partners_approve(partners=Partner.objects.filter(pk=ada.pk), actor="staff", at=timezone.now())

    response = client.post("/partner/login/", {"username": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(ada.user.pk)


# --- Pending partners are never tracked nor credited ----------------------------------------


@pytest.fixture
def shop(db):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    ProgramFactory(
        priority=1,
        rates={1: {"sale_amount": Decimal("10.00")}, 2: {"sale_amount": Decimal("4.00")}},
    )


def sell(api, n, **fields):
    payload = {
        "event_id": f"order-{n}",
        "contact": {"email": f"buyer{n}@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        **fields,
    }
    return api.post(ORDERS, payload, format="json")


@pytest.mark.parametrize("status", ["pending", "rejected"])
def test_a_pending_partners_link_records_nothing(client, shop, status):
    PartnerFactory(code="newbie", status=status)

    response = client.get("/go/newbie/", headers={"user-agent": BROWSER})

    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/"
    assert "rp_ref" not in response.cookies
    assert not Click.objects.exists()


@pytest.mark.parametrize("field", ["sale_partner", "lead_partner"])
@pytest.mark.parametrize("status", ["pending", "rejected"])
def test_an_order_naming_a_pending_partner_is_refused(api, shop, field, status):
    PartnerFactory(code="newbie", status=status)

    response = sell(api, 1, **{field: "newbie"})

    assert response.status_code == 400
    assert response.json() == {field: ["Partner newbie is not active."]}
    assert not Order.objects.exists()


def test_a_pending_partners_cookie_credits_nobody_until_approved(api, shop):
    newbie = PartnerSignupFactory(partner__code="newbie").partner
    at = timezone.now()
    click = Click.objects.create(id=new_click_id(at), partner=newbie, at=at)
    token = encode_token([TokenClick(click_id=click.id, partner_id=newbie.pk, at=at)])

    before = sell(api, 1, tracking_token=token)
    partners_approve(partners=Partner.objects.filter(pk=newbie.pk), actor="staff", at=at)
    after = sell(api, 2, tracking_token=token)

    assert before.status_code == after.status_code == 201
    assert (before.json()["sale_partner"], before.json()["commissions"]) == (None, [])
    assert after.json()["sale_partner"] == "newbie"
    assert [(c["partner"], c["amount"]) for c in after.json()["commissions"]] == [
        ("newbie", "10.00")
    ]


def test_a_pending_parent_gets_nothing_and_the_chain_goes_on(api, shop):
    defaults_update(data={"levels": 3}, acting_user=None)
    top = PartnerFactory(code="top")
    middle = PartnerFactory(code="middle", parent=top, status=PartnerStatus.PENDING)
    PartnerFactory(code="seller", parent=middle)

    response = sell(api, 1, sale_partner="seller")

    assert [(c["partner"], c["level"]) for c in response.json()["commissions"]] == [("seller", 1)]
    assert Commission.objects.filter(partner=middle).count() == 0


# --- The staff's Sign-ups page ----------------------------------------------------------------


@pytest.fixture
def queue():
    """One sign-up waiting for approval, one not confirmed, one rejected, one active partner."""
    return {
        "waiting": PartnerSignupFactory(
            partner__code="waiting", partner__name="Wanda Waiting", promotion="Food blog"
        ).partner,
        "unconfirmed": PartnerSignupFactory(partner__code="unconfirmed", confirmed=False).partner,
        "rejected": PartnerSignupFactory(
            partner__code="rejected", partner__status=PartnerStatus.REJECTED
        ).partner,
        "active": PartnerFactory(code="active"),
    }


def statuses() -> dict[str, str]:
    return dict(Partner.objects.values_list("code", "status"))


def test_anonymous_visitors_go_to_the_login_and_non_staff_get_403(client, queue):
    anonymous = client.get(SIGNUPS)
    client.force_login(UserFactory())
    plain = client.get(SIGNUPS)
    refused = client.post(SIGNUPS, {"decide": f"approve-{queue['waiting'].pk}"})

    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert (plain.status_code, refused.status_code) == (403, 403)
    assert statuses()["waiting"] == "pending"


def test_staff_without_the_change_permission_look_but_cannot_decide(client, queue):
    client.force_login(UserFactory(is_staff=True))

    page = client.get(SIGNUPS)
    refused = client.post(SIGNUPS, {"decide": f"approve-{queue['waiting'].pk}"})

    assert page.status_code == 200
    assert "Wanda Waiting" in text(page)
    assert 'name="decide"' not in page.content.decode()
    assert refused.status_code == 403
    assert statuses()["waiting"] == "pending"
    assert not SignupEmail.objects.exists()


@pytest.mark.parametrize(
    ("show", "listed"),
    [
        pytest.param("", ["waiting"], id="waiting-for-approval"),
        pytest.param("unconfirmed", ["unconfirmed"], id="email-not-confirmed"),
        pytest.param("rejected", ["rejected"], id="rejected"),
    ],
)
def test_the_tabs_list_their_partners_with_counts(staff_client, queue, show, listed):
    response = staff_client.get(SIGNUPS, {"show": show} if show else {})

    assert [p.code for p in response.context["object_list"]] == listed
    assert "Waiting for approval (1)" in text(response)
    assert "Email not confirmed (1)" in text(response)
    assert "Rejected (1)" in text(response)


def test_staff_approve_one_row_and_the_partner_is_emailed(
    staff_client, staff_user, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            SIGNUPS, {"decide": f"approve-{queue['waiting'].pk}"}, follow=True
        )

    assert response.redirect_chain == [(f"{SIGNUPS}?show=review", 302)]
    assert "1 partner approved." in text(response)
    assert statuses()["waiting"] == "active"
    signup = PartnerSignup.objects.get(partner=queue["waiting"])
    assert signup.decided_by == staff_user.username
    [message] = mail.outbox
    assert message.to == [queue["waiting"].email]
    assert message.subject == "Welcome to our partner program"


def test_staff_reject_the_ticked_partners_with_a_note(staff_client, queue):
    ticked = [queue["waiting"].pk, queue["unconfirmed"].pk, queue["active"].pk]

    response = staff_client.post(
        SIGNUPS, {"decide": "reject", "partners": ticked, "note": "Not a fit."}, follow=True
    )

    assert "2 partners rejected. 1 left as they were: not pending." in text(response)
    assert statuses() == {
        "waiting": "rejected",
        "unconfirmed": "rejected",
        "rejected": "rejected",
        "active": "active",
    }
    # Only the confirmed address is written to.
    assert list(SignupEmail.objects.values_list("partner__code", "kind", "note")) == [
        ("waiting", "rejected", "Not a fit.")
    ]


def test_approving_an_unconfirmed_sign_up_is_refused_by_the_count(staff_client, queue):
    response = staff_client.post(
        SIGNUPS, {"decide": "approve", "partners": [queue["unconfirmed"].pk]}, follow=True
    )

    assert "0 partners approved. 1 not approved: email not confirmed yet." in text(response)
    assert statuses()["unconfirmed"] == "pending"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({"decide": "approve"}, "Tick at least one partner.", id="nothing-ticked"),
        pytest.param(
            {"decide": "approve", "partners": ["999999"]}, "Select a valid choice", id="unknown-id"
        ),
        pytest.param({"decide": "promote-1"}, "Choose Approve or Reject.", id="unknown-action"),
        pytest.param(
            {"decide": "approve-999999"}, "That partner does not exist.", id="unknown-row"
        ),
        pytest.param(
            {"decide": "reject", "note": "x" * 1001, "partners": ["1"]},
            "at most 1000",
            id="long-note",
        ),
    ],
)
def test_a_bad_decision_changes_nothing(staff_client, queue, data, error):
    before = (statuses(), SignupEmail.objects.count())

    response = staff_client.post(SIGNUPS, data)

    assert response.status_code == 400
    assert error in text(response)
    assert (statuses(), SignupEmail.objects.count()) == before


def test_the_decision_form_needs_the_csrf_token(staff_user, queue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.post(SIGNUPS, {"decide": f"approve-{queue['waiting'].pk}"})

    assert response.status_code == 403
    assert statuses()["waiting"] == "pending"


def test_the_list_costs_the_same_queries_with_many_sign_ups(
    staff_client, django_assert_max_num_queries
):
    recruiter = PartnerFactory(code="recruiter")
    PartnerSignupFactory(partner__parent=recruiter, referred_by=recruiter)
    with django_assert_max_num_queries(100) as one:
        staff_client.get(SIGNUPS)
    for _ in range(49):
        PartnerSignupFactory(partner__parent=recruiter, referred_by=recruiter)

    with django_assert_max_num_queries(len(one.captured_queries)):
        response = staff_client.get(SIGNUPS)

    assert len(response.context["object_list"]) == 50


# --- Admin actions and the settings ------------------------------------------------------------


ADMIN_PARTNERS = "/admin/partners/partner/"


def test_the_admin_approves_and_rejects_through_the_services(staff_client, queue):
    approved = staff_client.post(
        ADMIN_PARTNERS,
        {"action": "approve_signups", "_selected_action": [queue["waiting"].pk], "index": "0"},
        follow=True,
    )
    staff_client.post(
        ADMIN_PARTNERS,
        {"action": "reject_signups", "_selected_action": [queue["unconfirmed"].pk], "index": "0"},
    )
    rejected = staff_client.post(
        ADMIN_PARTNERS,
        {
            "action": "reject_signups",
            "_selected_action": [queue["unconfirmed"].pk],
            "select_across": "0",
            "apply": "Apply",
            "note": "Spam.",
        },
        follow=True,
    )

    assert "1 partner approved." in text(approved)
    assert "1 partner updated." in text(rejected)
    assert statuses()["waiting"] == "active"
    assert statuses()["unconfirmed"] == "rejected"
    assert PartnerSignup.objects.get(partner=queue["unconfirmed"]).decision_note == "Spam."


def test_the_defaults_page_saves_the_sign_up_settings_with_a_typed_parent(staff_client):
    PartnerFactory(code="house")
    page = staff_client.get("/staff/settings/referral-partner-defaults/")
    data = {
        name: value
        for name, value in page.context["form"].initial.items()
        if value is not False and value is not None and name != "earlier_prefixes"
    }

    bad = staff_client.post(
        "/staff/settings/referral-partner-defaults/",
        {
            **data,
            "signup_enabled": "on",
            "signup_parent": "fixed",
            "signup_parent_partner": "nobody",
        },
    )
    good = staff_client.post(
        "/staff/settings/referral-partner-defaults/",
        {
            **data,
            "signup_enabled": "on",
            "signup_parent": "fixed",
            "signup_parent_partner": "HOUSE",
        },
    )

    assert bad.status_code == 200
    assert bad.context["form"].errors == {
        "signup_parent_partner": ["No partner has the code nobody."]
    }
    assert good.status_code == 302
    defaults = staff_client.get("/staff/settings/referral-partner-defaults/")
    assert defaults.context["form"]["signup_parent_partner"].value() == "house"
    assert defaults.context["form"]["signup_enabled"].value() is True


def test_the_api_reads_and_writes_the_fixed_parent_by_code(api):
    PartnerFactory(code="house")

    bad = api.patch("/api/v1/defaults/", {"signup_parent_partner": "nobody"}, format="json")
    good = api.patch(
        "/api/v1/defaults/",
        {"signup_parent": "fixed", "signup_parent_partner": "house"},
        format="json",
    )

    assert bad.status_code == 400
    assert bad.json() == {"signup_parent_partner": ["No partner has the code nobody."]}
    assert good.status_code == 200
    assert (good.json()["signup_parent"], good.json()["signup_parent_partner"]) == (
        "fixed",
        "house",
    )


# --- At the same moment ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_sign_ups_with_one_email_at_once_make_one_partner(settings):
    settings.SIGNUP_RATE_LIMIT = 0
    open_signup()
    barrier = threading.Barrier(8)
    answers = []

    def post():
        try:
            barrier.wait()
            answers.append(Client().post(SIGNUP, form()).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [302] * 8
    assert Partner.objects.filter(email="ada@example.com").count() == 1
    assert get_user_model().objects.count() == 1
    assert SignupEmail.objects.filter(kind="confirm").count() == 1  # the repeats within 15 min
