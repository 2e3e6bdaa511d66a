"""Brute force on the logins is slowed, then locked (issue 7, part 3; django-axes).

Each failed login costs a full password hash, also for names that do not exist; after
LOGIN_FAILURE_LIMIT (5) failures of one identity it is locked for LOGIN_COOLOFF_MINUTES
(15), even with the right password. A partner's code and email (any case) are one identity.
API keys are never locked out: a wrong key is a 401.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.test import Client
from django.utils import timezone

from partners.lockout import identity_of
from tests.factories import StaffFactory
from tests.functional.test_partner_center import PASSWORD, partner_with_login

pytestmark = pytest.mark.django_db

LOGINS = [
    pytest.param("/partner/login/", id="partner-login"),
    pytest.param("/accounts/login/", id="staff-login"),
    pytest.param("/admin/login/", id="admin-login"),
]


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    """These tests log in hundreds of times; the lock does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def jane(db, fast_hasher):
    return partner_with_login("jane", email="jane@partners.example")


def log_in(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password})


def logged_in_as(client: Client):
    return client.session.get("_auth_user_id")


def lock_expires(minutes_ago: int) -> None:
    """As if the failures happened `minutes_ago` minutes ago."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=minutes_ago))


def test_five_wrong_passwords_lock_a_partner_even_with_the_right_one(client, jane):
    for _ in range(4):
        assert log_in(client, "/partner/login/", "jane", "wrong").status_code == 200

    fifth = log_in(client, "/partner/login/", "jane", "wrong")
    right = log_in(client, "/partner/login/", "jane", PASSWORD)

    assert fifth.status_code == 429
    assert right.status_code == 429
    assert "This login is locked for 15 minutes after 5 failed attempts." in right.text
    assert "jane" not in right.text.lower()
    assert logged_in_as(client) is None


def test_code_and_email_in_any_case_count_against_one_partner(client, jane):
    for username in ("jane", "JANE", "jane@partners.example", "Jane@Partners.Example", "jAnE"):
        log_in(client, "/partner/login/", username, "wrong")

    response = log_in(client, "/partner/login/", "jane@partners.example", PASSWORD)

    assert response.status_code == 429
    assert logged_in_as(client) is None
    assert list(AccessAttempt.objects.values_list("username", "failures_since_start")) == [
        ("jane", 5)
    ]


def test_the_lock_holds_from_any_address(jane):
    for n in range(5):
        log_in(Client(REMOTE_ADDR=f"203.0.113.{n}"), "/partner/login/", "jane", "wrong")

    response = log_in(Client(REMOTE_ADDR="198.51.100.7"), "/partner/login/", "jane", PASSWORD)

    assert response.status_code == 429


def test_the_lock_ends_after_the_cool_off(client, jane):
    for _ in range(5):
        log_in(client, "/partner/login/", "jane", "wrong")
    lock_expires(minutes_ago=14)
    assert log_in(client, "/partner/login/", "jane", PASSWORD).status_code == 429

    lock_expires(minutes_ago=16)
    response = log_in(client, "/partner/login/", "jane", PASSWORD)

    assert response.status_code == 302
    assert int(logged_in_as(client)) == jane.user.pk


def test_tries_during_the_lock_neither_count_nor_extend_it(client, jane):
    for _ in range(5):
        log_in(client, "/partner/login/", "jane", "wrong")
    lock_expires(minutes_ago=10)
    began = AccessAttempt.objects.get().attempt_time

    for _ in range(3):
        assert log_in(client, "/partner/login/", "jane", "wrong").status_code == 429

    attempt = AccessAttempt.objects.get()
    assert (attempt.failures_since_start, attempt.attempt_time) == (5, began)


def test_a_success_before_the_limit_starts_the_count_again(client, jane):
    for _ in range(4):
        log_in(client, "/partner/login/", "jane", "wrong")
    assert log_in(client, "/partner/login/", "jane", PASSWORD).status_code == 302
    client.post("/partner/logout/")

    for _ in range(4):
        log_in(client, "/partner/login/", "jane", "wrong")

    assert log_in(client, "/partner/login/", "jane", PASSWORD).status_code == 302


def test_one_locked_partner_does_not_lock_another(client, jane):
    bob = partner_with_login("bobby", email="bob@partners.example")
    for _ in range(5):
        log_in(client, "/partner/login/", "jane", "wrong")

    response = log_in(client, "/partner/login/", "bob@partners.example", PASSWORD)

    assert response.status_code == 302
    assert int(logged_in_as(client)) == bob.user.pk


@pytest.mark.parametrize("url", LOGINS)
def test_staff_logins_are_locked_too(client, url):
    staff = StaffFactory(username="maria", password=PASSWORD)
    for _ in range(5):
        log_in(client, url, "maria", "wrong")

    response = log_in(client, url, "maria", PASSWORD)

    assert response.status_code == 429
    assert logged_in_as(client) is None
    assert AccessAttempt.objects.get().username == staff.username


def test_guesses_at_a_name_that_does_not_exist_are_counted_and_locked(client):
    for _ in range(5):
        log_in(client, "/partner/login/", "Nobody@Example.com", "guess")

    response = log_in(client, "/partner/login/", "nobody@example.com", "guess")

    assert response.status_code == 429
    assert AccessAttempt.objects.get().username == "nobody@example.com"


@pytest.mark.parametrize("url", LOGINS)
def test_the_lockout_page_is_shown_on_every_login(client, jane, url):
    for _ in range(5):
        log_in(client, "/partner/login/", "jane", "wrong")

    response = log_in(client, url, "jane", PASSWORD)

    assert response.status_code == 429
    assert "Too many login attempts" in response.text


def test_a_failed_attempt_records_the_address_but_no_password(jane):
    client = Client(REMOTE_ADDR="203.0.113.9")

    log_in(client, "/partner/login/", "jane", "my-secret-guess")

    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address) == ("jane", "203.0.113.9")
    assert "my-secret-guess" not in attempt.post_data


def test_a_wrong_api_key_is_a_401_however_often_and_never_locks(api):
    bad = Client(headers={"authorization": "Bearer rp_not-a-key"})
    for _ in range(20):
        assert bad.get("/api/v1/partners/").status_code == 401

    assert api.get("/api/v1/partners/").status_code == 200
    assert AccessAttempt.objects.count() == 0


def test_logins_without_a_request_still_work(jane):
    """The shell or a management command: no client to lock out."""
    assert authenticate(username="jane", password=PASSWORD) == jane.user
    assert authenticate(username="jane", password="wrong") is None
    assert AccessAttempt.objects.count() == 0


@pytest.mark.parametrize(
    ("typed", "identity"),
    [
        pytest.param("JANE", "jane", id="code-any-case"),
        pytest.param(" jane@partners.example ", "jane", id="email-with-spaces"),
        pytest.param("maria", "maria", id="staff-username"),
        pytest.param("Ghost", "ghost", id="unknown-name"),
        pytest.param("x" * 10_000, "x" * 255, id="10000-characters"),
        pytest.param("", "", id="nothing"),
    ],
)
def test_identity_of_a_typed_name(jane, typed, identity):
    StaffFactory(username="maria")

    assert identity_of(typed.strip()) == identity
