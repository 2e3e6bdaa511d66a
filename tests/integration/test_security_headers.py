"""Security headers and cookies (issue 7, part 3): a CSP that allows no other origin and no
inline script or style, nosniff, a referrer policy, no framing; under production settings
(an https SITE_URL) secure, HttpOnly, SameSite cookies, HSTS and the https redirect; and
`manage.py check --deploy` clean."""

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from tests.factories import ProgramFactory
from tests.functional.test_partner_center import PASSWORD, logged_in, partner_with_login, sell

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "SITE_URL": "https://aff.shop.example",
    "ALLOWED_HOSTS": "aff.shop.example",
    "CSRF_TRUSTED_ORIGINS": "https://aff.shop.example",
    "TRUST_X_FORWARDED_PROTO": "true",
    "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example:587",
}
SECURITY_SETTINGS = (
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SITE_URL",
)
# Sources a CSP directive may name: this site, nothing, inline images, or this request's nonce.
ALLOWED_SOURCES = re.compile(r"^('self'|'none'|data:|'nonce-[A-Za-z0-9_-]{16,}')$")


def sha256_base64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def run_with_production_env(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run Python with the production environment (or `env`) over this one's."""
    production = PRODUCTION_ENV if env is None else env
    variables = {**os.environ, **production, "DJANGO_SETTINGS_MODULE": "referral_program.settings"}
    if "EMAIL_URL" not in production:
        variables.pop("EMAIL_URL", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=variables,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def production_settings() -> dict:
    """The security settings referral_program/settings.py makes from the production env."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {SECURITY_SETTINGS!r}}}))"
    )
    result = run_with_production_env("-c", script)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


@pytest.fixture
def jane(db):
    ProgramFactory(priority=1)
    return partner_with_login("jane")


def csp_of(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


PAGES = [
    pytest.param("anonymous", "/partner/login/", id="partner-login"),
    pytest.param("anonymous", "/accounts/login/", id="staff-login"),
    pytest.param("anonymous", "/admin/login/", id="admin-login"),
    pytest.param("staff", "/staff/", id="staff-home"),
    pytest.param("staff", "/staff/settings/referral-partner-defaults/", id="defaults"),
    pytest.param("staff", "/staff/partners/jane/", id="staff-partner"),
    pytest.param("staff", "/staff/reports/ledger/", id="ledger-report"),
    pytest.param("staff", "/admin/partners/partner/", id="admin-changelist"),
    pytest.param("staff", "/api/docs/", id="api-docs"),
    pytest.param("partner", "/partner/", id="partner-dashboard"),
    pytest.param("partner", "/partner/links/", id="partner-links"),
    pytest.param("partner", "/partner/ledger/", id="partner-ledger"),
    pytest.param("partner", "/partner/resources/", id="partner-resources"),
    pytest.param("staff", "/staff/settings/resources/new/", id="resource-form"),
]


def client_for(who: str, jane, staff_user) -> Client:
    if who == "partner":
        return logged_in(jane)
    client = Client()
    if who == "staff":
        client.force_login(staff_user)
    return client


@pytest.mark.parametrize(("who", "url"), PAGES)
def test_every_page_has_a_csp_naming_no_other_origin(jane, staff_user, api, who, url):
    sell(api, "o-1", "2026-11-18T10:00:00Z", "70.00", "jane")

    response = client_for(who, jane, staff_user).get(url)

    assert response.status_code == 200
    directives = csp_of(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # No inline script but the export page's "Select all" handler, by its hash.
    assert directives["script-src"] == [
        "'self'",
        "'unsafe-hashes'",
        f"'sha256-{sha256_base64('onSelectToggleChange(event)')}'",
    ]
    # Style attributes: only the two of django-import-export's export page, by their hashes.
    assert [s for s in directives["style-src"] if not ALLOWED_SOURCES.match(s)] == [
        "'unsafe-hashes'",
        f"'sha256-{sha256_base64('padding: 0;')}'",
        f"'sha256-{sha256_base64('font-weight: bold;')}'",
    ]
    for name, sources in directives.items():
        if name not in ("style-src", "script-src"):
            for source in sources:
                assert ALLOWED_SOURCES.match(source), (name, source)


@pytest.mark.parametrize(("who", "url"), PAGES)
def test_no_page_has_inline_script_or_style(jane, staff_user, api, who, url):
    sell(api, "o-1", "2026-11-18T10:00:00Z", "70.00", "jane")

    response = client_for(who, jane, staff_user).get(url)

    html = response.content.decode()
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    for tag in re.findall(r"<style\b[^>]*>", html):
        assert nonce and f'nonce="{nonce.group(1)}"' in tag, tag
    assert not re.search(r"\sstyle=\"", html)
    assert not re.search(r"\son[a-z]+=\"", html)
    assert "javascript:" not in html


def test_the_api_docs_script_is_served_from_this_site(staff_client):
    page = staff_client.get("/api/docs/")
    script = staff_client.get("/api/docs/?script=")

    assert '<script src="/api/docs/?script="></script>' in page.content.decode()
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


@pytest.mark.parametrize(
    ("url", "who"),
    [
        pytest.param("/partner/login/", "anonymous", id="a-page"),
        pytest.param("/api/v1/partners/", "api", id="the-api"),
        pytest.param("/go/jane/", "anonymous", id="the-tracker"),
        pytest.param("/healthz", "anonymous", id="health"),
    ],
)
def test_every_answer_has_the_security_headers(jane, api, url, who):
    response = (api if who == "api" else Client()).get(url)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_no_hsts_over_plain_http_in_development(client):
    response = client.get("/partner/login/")

    assert "Strict-Transport-Security" not in response


# --- Production settings (an https SITE_URL) ----------------------------------------------


def test_production_settings_follow_the_https_site_url(production_settings):
    assert production_settings == {
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        "SITE_URL": "https://aff.shop.example",
    }


def test_under_production_settings_https_answers_carry_hsts(production_settings, client):
    with override_settings(**production_settings):
        response = client.get("/partner/login/", secure=True)

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


@pytest.mark.parametrize(
    ("url", "redirected"),
    [("/partner/login/", True), ("/api/v1/partners/", True), ("/healthz", False)],
)
def test_under_production_settings_plain_http_is_sent_to_https(
    production_settings, client, url, redirected
):
    with override_settings(**production_settings):
        response = client.get(url)
        proxied = client.get(url, headers={"x-forwarded-proto": "https"})

    assert (response.status_code == 301) is redirected
    if redirected:
        assert response["Location"] == f"https://testserver{url}"
    assert proxied.status_code != 301  # the proxy said https


def test_under_production_settings_the_login_cookies_are_secure(production_settings, jane):
    client = Client()
    with override_settings(**production_settings):
        page = client.get("/partner/login/", secure=True)
        response = client.post(
            "/partner/login/", {"username": "jane", "password": PASSWORD}, secure=True
        )

    assert response.status_code == 302
    for name, source in (("csrftoken", page), ("sessionid", response)):
        cookie = source.cookies[name]
        assert (cookie["secure"], cookie["httponly"], cookie["samesite"]) == (True, True, "Lax")


def test_under_production_settings_the_tracking_cookie_is_secure(production_settings, jane):
    with override_settings(**production_settings):
        response = Client().get("/go/jane/", secure=True)

    cookie = response.cookies["rp_ref"]
    assert (cookie["secure"], cookie["httponly"], cookie["samesite"]) == (True, True, "Lax")


def test_manage_py_check_deploy_is_clean():
    result = run_with_production_env("manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
