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
from django.contrib.auth.hashers import MD5PasswordHasher
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


# --- Issue 21, finding 7: the CPU a login costs, limited per address ------------------------


class CountingHasher(MD5PasswordHasher):
    """The test hasher, counting the passwords it hashed."""

    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


@pytest.fixture
def counting_hasher(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.hashed = 0
    return CountingHasher


def hashes_of(hasher, *args) -> int:
    hasher.hashed = 0
    log_in(*args)
    return hasher.hashed


@pytest.mark.parametrize(
    ("url", "username", "password"),
    [
        ("/partner/login/", "jane", "wrong"),
        ("/partner/login/", "jane@partners.example", "wrong"),
        ("/partner/login/", "nobody-at-all", "wrong"),
        ("/partner/login/", "jane", PASSWORD),
        ("/accounts/login/", "boss", "wrong"),
        ("/accounts/login/", "boss", PASSWORD),
        ("/accounts/login/", "nobody-at-all", "wrong"),
        ("/admin/login/", "jane@partners.example", "wrong"),
    ],
    ids=[
        "partner-code",
        "partner-email",
        "unknown-partner",
        "partner-right",
        "staff",
        "staff-right",
        "unknown-staff",
        "admin-email",
    ],
)
def test_every_login_try_costs_exactly_one_password_hash(counting_hasher, url, username, password):
    """Known or unknown, right or wrong: one hash (two before: the partner backend and
    Django's ModelBackend each hashed), so no answer is cheaper than another."""
    partner_with_login("jane", email="jane@partners.example")
    staff = StaffFactory(username="boss")
    staff.set_password(PASSWORD)
    staff.save()

    assert hashes_of(counting_hasher, Client(), url, username, password) == 1


def test_logins_over_the_limit_of_an_address_are_refused_before_any_hash(
    counting_hasher, settings, jane
):
    """Six anonymous clients (30 logins in 8 s) raised /go/ from 2 ms to 1.1 s: each try
    hashed a password, with no limit per address. Over LOGIN_TRIES_PER_ADDRESS_PER_MINUTE
    a try answers 429 at once, hashes nothing and counts against nobody."""
    import time_machine

    settings.LOGIN_TRIES_PER_ADDRESS_PER_MINUTE = 3
    # Within one minute whatever the machine's speed: the tries are counted per minute, and
    # a run crossing a minute's end would start a new count.
    with time_machine.travel("2026-11-20 12:00:10Z", tick=False):
        attacker, neighbour = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="203.0.113.10")
        for name in ("nobody-1", "nobody-2", "nobody-3"):
            assert log_in(attacker, "/accounts/login/", name, "guess").status_code == 200
        failures = list(
            AccessAttempt.objects.order_by("username").values_list("username", flat=True)
        )
        counting_hasher.hashed = 0

        urls = ("/partner/login/", "/accounts/login/", "/admin/login/")
        refused = [log_in(attacker, url, "jane", PASSWORD) for url in urls]

        assert [r.status_code for r in refused] == [429, 429, 429]
        assert "Too many logins came from your network in the last minute." in refused[0].text
        assert refused[0]["Retry-After"] == "60"
        assert counting_hasher.hashed == 0
        assert logged_in_as(attacker) is None
        assert list(AccessAttempt.objects.values_list("username", flat=True)) == failures
        assert log_in(neighbour, "/partner/login/", "jane", PASSWORD).status_code == 302


def test_the_address_limit_is_per_minute(settings, jane):
    import time_machine

    settings.LOGIN_TRIES_PER_ADDRESS_PER_MINUTE = 2
    client = Client()
    with time_machine.travel("2026-11-20 12:00:10Z", tick=False):
        for _ in range(2):
            log_in(client, "/partner/login/", "jane", "wrong")
        assert log_in(client, "/partner/login/", "jane", PASSWORD).status_code == 429
    with time_machine.travel("2026-11-20 12:01:00Z", tick=False):
        assert log_in(client, "/partner/login/", "jane", PASSWORD).status_code == 302


# --- Staff see the locked logins and unlock them -------------------------------------------

LOCKED_LOGINS = "/staff/settings/locked-logins/"


def test_staff_see_who_is_locked_and_unlock_a_partner(client, jane, settings):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    settings.LOGIN_TRIES_PER_ADDRESS_PER_MINUTE = 0  # all from one address here
    for _ in range(5):
        log_in(Client(), "/partner/login/", "jane@partners.example", "wrong")
        log_in(Client(), "/accounts/login/", "ghost", "wrong")
    log_in(Client(), "/accounts/login/", "almost", "wrong")  # one failure: not locked
    looker = UserFactory(is_staff=True)
    unlocker = UserFactory(is_staff=True)
    unlocker.user_permissions.add(Permission.objects.get(codename="delete_accessattempt"))
    client.force_login(looker)

    page = client.get(LOCKED_LOGINS)
    refused = client.post(LOCKED_LOGINS, {"identity": "jane"})
    client.force_login(unlocker)
    unlocked = client.post(LOCKED_LOGINS, {"identity": "jane"}, follow=True)

    assert page.status_code == 200
    assert [(row.identity, row.failures, row.has_login) for row in page.context["locked"]] == [
        ("ghost", 5, False),
        ("jane", 5, True),
    ]
    assert 'href="/staff/partners/jane/"' in page.text
    assert "no such login (a guess)" in page.text
    assert 'name="identity"' not in page.text  # no unlock buttons without the permission
    assert refused.status_code == 403
    assert unlocked.status_code == 200
    assert "jane may log in again." in unlocked.text
    assert [row.identity for row in unlocked.context["locked"]] == ["ghost"]
    assert log_in(Client(), "/partner/login/", "jane", PASSWORD).status_code == 302
