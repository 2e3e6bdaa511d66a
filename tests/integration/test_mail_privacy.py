"""Working links never reach the logs, and production does not keep the console mailer
(issue 21, finding 9).

With the default `EMAIL_URL=consolemail://`, password-reset and sign-up confirmation links
(working credentials) were written to the gunicorn and Celery logs, and nothing warned that a
production configuration still had the console mailer.
"""

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from partners.models import Partner
from partners.services.defaults import defaults_update
from partners.signup import confirm_token_make
from referral_program.mail import HIDDEN, console_mailer_in_production
from tests.functional.test_partner_center import partner_with_login
from tests.functional.test_signup_pages import form
from tests.integration.test_security_headers import PRODUCTION_ENV, run_with_production_env

pytestmark = pytest.mark.django_db

CONSOLE = {"default": {"BACKEND": "referral_program.mail.ConsoleEmailBackend"}}


@pytest.fixture
def console_mailer(settings):
    settings.MAILERS = CONSOLE
    settings.DEBUG = False


RESET_LINK = re.compile(r"/partner/password-reset/([^/\s]+)/([^/\s]+)/")


def test_a_password_reset_link_is_not_written_to_the_log(client, console_mailer, capsys):
    partner_with_login("jane", email="jane@partners.example")

    sent = client.post("/partner/password-reset/", {"email": "jane@partners.example"})

    assert sent.status_code == 302
    output = capsys.readouterr().out
    assert "To: jane@partners.example" in output
    assert RESET_LINK.findall(output) == [(HIDDEN, HIDDEN)]


def test_a_sign_up_confirmation_link_is_not_written_to_the_log(
    client, console_mailer, capsys, django_capture_on_commit_callbacks
):
    defaults_update(data={"signup_enabled": True}, acting_user=None)

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post("/partner/signup/", form(email="ada@example.com"))

    assert sent.status_code == 302
    output = capsys.readouterr().out
    partner = Partner.objects.get(email="ada@example.com")
    assert "To: ada@example.com" in output
    assert f"/partner/signup/confirm/{HIDDEN}/" in output
    assert confirm_token_make(partner_id=partner.pk, email=partner.email) not in output


def test_with_debug_on_a_developer_sees_the_whole_link(client, console_mailer, settings, capsys):
    settings.DEBUG = True
    jane = partner_with_login("jane", email="jane@partners.example")

    client.post("/partner/password-reset/", {"email": "jane@partners.example"})

    [(uid, token)] = RESET_LINK.findall(capsys.readouterr().out)
    assert uid == urlsafe_base64_encode(force_bytes(jane.user.pk))
    assert default_token_generator.check_token(jane.user, token)


def test_other_links_in_emails_are_left_whole(client, console_mailer, capsys):
    from referral_program.mail import hide_credential_links

    text = "Log in at http://testserver/partner/login/ or see http://shop.example/a/b/."

    assert hide_credential_links(text) == text


def test_check_deploy_warns_when_production_keeps_the_console_mailer():
    env = {name: value for name, value in PRODUCTION_ENV.items() if name != "EMAIL_URL"}
    result = run_with_production_env(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env
    )

    assert result.returncode == 1
    assert "referral_program.W001" in result.stderr + result.stdout
    assert re.search(r"mailer writes emails to the console", result.stderr + result.stdout)


@pytest.mark.parametrize(
    ("debug", "mailers", "warned"),
    [
        (False, CONSOLE, True),
        (False, {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}, True),
        (True, CONSOLE, False),
        (False, {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}, False),
    ],
    ids=["console", "django-console", "debug", "smtp"],
)
def test_the_deploy_check_warns_only_for_the_console_mailer_without_debug(debug, mailers, warned):
    with override_settings(DEBUG=debug, MAILERS=mailers):
        found = console_mailer_in_production()

    assert [m.id for m in found] == (["referral_program.W001"] if warned else [])
