"""The public partner sign-up pages, under /partner/signup/ (SPEC §9 "Sign-up").

Open only while the defaults' `signup_enabled` is on (404 otherwise); the confirmation
link keeps working after sign-up closes. The answer to a sign-up is the same whether the
email was new or already a partner's, so the page tells nobody who is registered.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from .forms import PartnerSignupForm, add_service_errors
from .selectors import defaults_get
from .services.signup import (
    ConfirmOutcome,
    SignupRateLimited,
    partner_signup,
    partner_signup_confirm,
)
from .signup import HONEYPOT_FIELD
from .tracker import COOKIE_NAME
from .tracking import USER_AGENT_MAX, client_ip

RATE_LIMITED = "Too many sign-ups came from your network in the last hour. Please try again later."


class SignupOpenMixin:
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not defaults_get().signup_enabled:
            raise Http404("Partner sign-up is closed.")
        return super().dispatch(request, *args, **kwargs)


class SignupView(SignupOpenMixin, View):
    template_name = "partner/signup.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = PartnerSignupForm(initial={"rp_ref": request.GET.get(COOKIE_NAME, "")[:2048]})
        return self.render_page(form)

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.POST.get(HONEYPOT_FIELD):
            # A robot filled the field people never see: answer as if it worked, keep nothing.
            return redirect("signup:done")
        form = PartnerSignupForm(request.POST)
        status = 200
        if form.is_valid():
            try:
                partner_signup(
                    data=form.signup_data(),
                    tracking_token=request.COOKIES.get(COOKIE_NAME) or form.cleaned_data["rp_ref"],
                    ip=client_ip(request.META, trusted_proxies=settings.TRUSTED_PROXY_DEPTH),
                    user_agent=request.headers.get("user-agent", "")[:USER_AGENT_MAX],
                    at=timezone.now(),
                )
            except SignupRateLimited:
                form.add_error(None, RATE_LIMITED)
                status = 429
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                return redirect("signup:done")
        return self.render_page(form, status=status)

    def render_page(self, form: PartnerSignupForm, *, status: int = 200) -> HttpResponse:
        context = {"form": form, "honeypot": HONEYPOT_FIELD}
        return render(self.request, self.template_name, context, status=status)


class SignupDoneView(SignupOpenMixin, TemplateView):
    template_name = "partner/signup_done.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(confirm_days=settings.SIGNUP_CONFIRM_DAYS, **kwargs)


class SignupConfirmView(View):
    """GET shows a button; POST confirms. (Mail scanners open links: a GET changes nothing.)"""

    template_name = "partner/signup_confirm.html"

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        return render(request, self.template_name, {"token": token, "outcome": None})

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        outcome = partner_signup_confirm(token=token, at=timezone.now())
        status = 400 if outcome in (ConfirmOutcome.INVALID, ConfirmOutcome.EXPIRED) else 200
        context = {"token": token, "outcome": outcome, "confirm_days": settings.SIGNUP_CONFIRM_DAYS}
        return render(request, self.template_name, context, status=status)
