"""Hosted web forms (SPEC §9): the merchant's pages post a plain HTML form to `/f/<code>/`.

A post is turned into the API's web-form event and goes through the same serializer and
the same service (`web_form_record`), so the rules and the result are the API's. The
tracking token is the form's `rp_ref` field (filled by rp.js on the merchant's page) when it
is a valid token, else this site's `rp_ref` cookie (sent when the two sites are one site).
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from partners.tokens import decode_token
from partners.tracking import safe_destination
from referral_program.counters import count_in_minute
from referral_program.parsers import token_kept

from .models import FormPostCount, HostedForm, form_field_name_validator
from .serializers import WebFormEventSerializer
from .services.events import Intake
from .services.web_forms import web_form_record

# Fields every hosted form reads; they cannot be kept as extras or be the honeypot.
TOKEN_FIELD = "rp_ref"
EVENT_ID_FIELD = "rp_event_id"
CONTACT_FIELDS = ("email", "first_name", "last_name")
RESERVED_FIELDS = frozenset((*CONTACT_FIELDS, TOKEN_FIELD, EVENT_ID_FIELD, "csrfmiddlewaretoken"))
# A kept field's value is at most this long.
VALUE_MAX = 2000
# Where the API's error keys point in the form.
FIELD_OF = {"event_id": EVENT_ID_FIELD, "tracking_token": TOKEN_FIELD}


def redirect_hosts() -> list[str]:
    """Hosts a thank-you URL may point at: ALLOWED_REDIRECT_HOSTS and this site's own."""
    return [*settings.ALLOWED_REDIRECT_HOSTS, urlsplit(settings.SITE_URL).netloc]


def thank_you_destination(hosted_form: HostedForm) -> str | None:
    """The form's thank-you URL if it is still safe to send visitors to (no open redirect)."""
    return safe_destination(hosted_form.thank_you_url, allowed_hosts=redirect_hosts())


def _is_field_name(name: str) -> bool:
    try:
        form_field_name_validator(name)
    except ValidationError:
        return False
    return True


def hosted_form_problems(hosted_form: HostedForm) -> dict[str, str]:
    """What is wrong across the form's fields (each field's own rules are the model's)."""
    problems = {}
    kept = hosted_form.kept_field_names
    bad = [name for name in kept if not _is_field_name(name)]
    if bad:
        problems["keep_fields"] = f"Not a field name: {', '.join(bad)}."
    elif clash := sorted(RESERVED_FIELDS.intersection(kept)):
        problems["keep_fields"] = f"Always read, not an extra: {', '.join(clash)}."
    elif len(set(kept)) != len(kept):
        problems["keep_fields"] = "A field is named twice."
    if hosted_form.honeypot_field in RESERVED_FIELDS or hosted_form.honeypot_field in kept:
        problems["honeypot_field"] = "The honeypot must be a field no person fills."
    if hosted_form.thank_you_url and thank_you_destination(hosted_form) is None:
        hosts = ", ".join(redirect_hosts())
        problems["thank_you_url"] = f"Use an http(s) URL on one of these hosts: {hosts}."
    return problems


@transaction.atomic
def hosted_form_save(*, hosted_form: HostedForm) -> HostedForm:
    """Validate and save a hosted form (new or changed)."""
    hosted_form.code = hosted_form.code.lower()
    errors: dict[str, list[str]] = {}
    try:
        hosted_form.full_clean()
    except ValidationError as error:
        errors.update(error.message_dict)
    for name, problem in hosted_form_problems(hosted_form).items():
        errors.setdefault(name, []).append(problem)
    if errors:
        raise ValidationError(errors)
    hosted_form.keep_fields = ", ".join(hosted_form.kept_field_names)
    hosted_form.save()
    return hosted_form


# --- Posts ---------------------------------------------------------------------------------


def form_post_count(*, ip: str | None, at: datetime) -> int:
    """Count a post from `ip` in the minute of `at`; the number of posts so far that minute
    (one upsert, referral_program/counters.py)."""
    return count_in_minute(FormPostCount, ip=ip, at=at)


def is_spam(hosted_form: HostedForm, post: Mapping[str, str]) -> bool:
    """The honeypot, hidden from people, was filled in."""
    return bool(post.get(hosted_form.honeypot_field, "").strip())


def _token(post: Mapping[str, str], cookie: str | None) -> str:
    posted = token_kept(post.get(TOKEN_FIELD, ""))
    if posted and decode_token(posted):
        return posted
    return token_kept(cookie) or posted


def hosted_form_event(
    *, hosted_form: HostedForm, post: Mapping[str, str], cookie: str | None, ip: str | None
) -> dict:
    """The API's web-form event for a post, with the form's kept fields under `fields`."""
    contact = {"email": post.get("email", "").strip()}
    contact.update({k: post[k].strip() for k in CONTACT_FIELDS[1:] if post.get(k, "").strip()})
    client_id = post.get(EVENT_ID_FIELD, "").strip()
    event = {
        "event_id": f"form-{hosted_form.code}-{client_id or uuid.uuid4().hex}",
        "contact": contact,
        "form": hosted_form.code,
        "tracking_token": _token(post, cookie),
        "ip": ip,
    }
    kept = {name: post[name] for name in hosted_form.kept_field_names if post.get(name)}
    if kept:
        event["fields"] = kept
    return event


def hosted_form_submit(
    *, hosted_form: HostedForm, post: Mapping[str, str], cookie: str | None, ip: str | None
) -> Intake | None:
    """Record a post as a web-form event, as the API would; None when it is spam.

    Bad input raises ValidationError keyed by the form's field names; nothing is written.
    """
    if is_spam(hosted_form, post):
        return None
    event = hosted_form_event(hosted_form=hosted_form, post=post, cookie=cookie, ip=ip)
    errors = {name: [problem] for name, problem in _kept_problems(event).items()}
    serializer = WebFormEventSerializer(data=event)
    if not serializer.is_valid():
        errors.update(_form_errors(serializer.errors))
    if errors:
        raise ValidationError(errors)
    return web_form_record(data=serializer.validated_data, payload=event)


def _kept_problems(event: Mapping) -> dict[str, str]:
    problems = {}
    for name, value in event.get("fields", {}).items():
        if len(value) > VALUE_MAX:
            problems[name] = f"At most {VALUE_MAX} characters."
        elif "\x00" in value:
            problems[name] = "Null characters are not allowed."
    return problems


def _form_errors(errors: Mapping) -> dict[str, list[str]]:
    """The serializer's errors under the names of the form's fields."""
    found: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if key == "contact" and isinstance(messages, Mapping):
            found.update({name: [str(m) for m in inner] for name, inner in messages.items()})
        else:
            found[FIELD_OF.get(key, key)] = [str(m) for m in messages]
    return found


def form_html_example(hosted_form: HostedForm) -> str:
    """A form to paste into the merchant's page, posting to this hosted form."""
    site = settings.SITE_URL
    extras = "".join(
        f'  <label>{name} <input name="{name}"></label>\n' for name in hosted_form.kept_field_names
    )
    return (
        f'<script src="{site}/static/rp.js" defer></script>\n'
        f'<form method="post" action="{site}/f/{hosted_form.code}/">\n'
        '  <label>Email <input type="email" name="email" required></label>\n'
        '  <label>First name <input name="first_name"></label>\n'
        '  <label>Last name <input name="last_name"></label>\n'
        f"{extras}"
        f'  <input type="hidden" name="{TOKEN_FIELD}">\n'
        f'  <input type="hidden" name="{EVENT_ID_FIELD}">\n'
        '  <div style="position:absolute;left:-10000px" aria-hidden="true">\n'
        f'    <input name="{hosted_form.honeypot_field}" tabindex="-1" autocomplete="off">\n'
        "  </div>\n"
        "  <button>Send</button>\n"
        "</form>\n"
    )
