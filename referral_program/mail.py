"""The console mailer, and the deploy check that production does not keep it (issue 21,
finding 9).

`EMAIL_URL=consolemail://` (the default) writes every email to the process's output, which
gunicorn and Celery keep in their logs. Password-reset, Partner Center invitation and
sign-up confirmation links are working credentials: in those logs anyone who reads them
could take over a partner's login. So this console mailer writes each email with the
secret part of such links hidden (`[hidden]`), unless `DEBUG` is on (a developer's own
machine, where the link is what they are after); and `manage.py check --deploy` warns
when `DEBUG` is off and the mailer is still the console one (`referral_program.W001`):
partners would get no email.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.mail.backends import console
from django.urls import Resolver404, resolve

CONSOLE_MAILERS = {
    "django.core.mail.backends.console.EmailBackend",
    "referral_program.mail.ConsoleEmailBackend",
}
# The routes whose links log someone in or confirm an email: their arguments are secrets.
CREDENTIAL_ROUTES = {"partner:password_reset_confirm", "partner:invitation", "signup:confirm"}
HIDDEN = "[hidden]"
URL = re.compile(r"https?://[^\s\"'<>]+")


def hide_credential_links(text: str) -> str:
    """`text` with every password-reset and confirmation link's secret arguments hidden."""

    def hide(found: re.Match) -> str:
        url = found.group(0)
        path = urlsplit(url).path
        try:
            match = resolve(path)
        except Resolver404:
            return url
        if match.view_name not in CREDENTIAL_ROUTES:
            return url
        for value in match.kwargs.values():
            url = url.replace(f"/{value}/", f"/{HIDDEN}/", 1)
        return url

    return URL.sub(hide, text)


class ConsoleEmailBackend(console.EmailBackend):
    """Django's console mailer, readable (no transfer encoding) and with credential links
    hidden unless DEBUG is on."""

    def write_message(self, message) -> None:
        parts = [message.body, *(content for content, _ in getattr(message, "alternatives", []))]
        body = "\n\n".join(str(part) for part in parts)
        if not settings.DEBUG:
            body = hide_credential_links(body)
        headers = (
            f"From: {message.from_email}\nTo: {', '.join(message.to)}\nSubject: {message.subject}\n"
        )
        self.stream.write(f"{headers}\n{body}\n{'-' * 79}\n")


def console_mailer_in_production(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    backends = {mailer.get("BACKEND") for mailer in settings.MAILERS.values()}
    if settings.DEBUG or not backends & CONSOLE_MAILERS:
        return []
    return [
        checks.Warning(
            "The mailer writes emails to the console: partners get no email, and the logs "
            "get every message.",
            hint="Set EMAIL_URL to your SMTP server, e.g. smtp+tls://user:password@host:587 "
            "(docs/deployment.md).",
            id="referral_program.W001",
        )
    ]
