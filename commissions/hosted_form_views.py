"""`POST /f/<code>/`: a hosted web form posted from the merchant's pages (SPEC §9).

CSRF: exempt on purpose. The form lives on the merchant's site, so it cannot carry this
site's CSRF token; the endpoint acts for nobody (no session, no login is read), like the
events API it feeds, and a forged post can do no more than a visitor posting the form.
Spam is held off by the honeypot and a rate limit per IP address instead.
CORS: no Access-Control headers are ever sent. A browser posts the form as a navigation,
which needs none; scripts on other sites cannot read the answer.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from partners.tracker import COOKIE_NAME
from partners.tracking import client_ip, safe_destination

from .hosted_forms import (
    form_post_count,
    hosted_form_submit,
    redirect_hosts,
    thank_you_destination,
)
from .models import HostedForm

LABELS = {"email": "Email", "first_name": "First name", "last_name": "Last name"}


def _active_form(code: str) -> HostedForm:
    return get_object_or_404(HostedForm, code=code.lower(), is_active=True)


@csrf_exempt
@require_POST
def hosted_form_post(request: HttpRequest, code: str) -> HttpResponse:
    hosted_form = _active_form(code)
    now = timezone.now()
    ip = client_ip(request.META, trusted_proxies=settings.TRUSTED_PROXY_DEPTH)
    if form_post_count(ip=ip, at=now) > settings.HOSTED_FORM_POSTS_PER_MINUTE:
        response = render(
            request, "hosted_forms/too_many.html", {"hosted_form": hosted_form}, status=429
        )
        response["Retry-After"] = str(60 - now.second)
        return response
    try:
        hosted_form_submit(
            hosted_form=hosted_form,
            post=request.POST,
            cookie=request.COOKIES.get(COOKIE_NAME),
            ip=ip,
        )
    except ValidationError as error:
        errors = [
            (name, LABELS.get(name, name), messages)
            for name, messages in sorted(error.message_dict.items())
        ]
        back = safe_destination(request.headers.get("referer"), allowed_hosts=redirect_hosts())
        context = {"hosted_form": hosted_form, "errors": errors, "back": back}
        return render(request, "hosted_forms/error.html", context, status=400)
    return HttpResponseRedirect(
        thank_you_destination(hosted_form)
        or reverse("hosted-form-thanks", kwargs={"code": hosted_form.code})
    )


@require_safe
def hosted_form_thanks(request: HttpRequest, code: str) -> HttpResponse:
    """The thank-you page of a form without a thank-you URL of its own."""
    return render(request, "hosted_forms/thanks.html", {"hosted_form": _active_form(code)})
