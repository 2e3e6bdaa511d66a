"""The forms of hosted web forms and webhook endpoints (SPEC §9), shared by the staff's
Settings pages and the admin. They only validate, with the services' own checks
(`hosted_form_problems`, `webhooks.endpoint_errors`, which run the models' validators), so a
rule added there (say a guard on the URLs a webhook may reach) shows on both."""

from typing import Any

from django import forms

from . import webhooks
from .hosted_forms import hosted_form_problems
from .models import HostedForm, WebhookEndpoint, WebhookEventType

HOSTED_FORM_TEXT_FIELDS = ("code", "name", "keep_fields", "thank_you_url", "honeypot_field")


class HostedFormForm(forms.ModelForm):
    class Meta:
        model = HostedForm
        fields = (*HOSTED_FORM_TEXT_FIELDS, "is_active")

    def clean_code(self) -> str:
        return self.cleaned_data["code"].lower()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        draft = HostedForm(**{name: cleaned.get(name) or "" for name in HOSTED_FORM_TEXT_FIELDS})
        for name, problem in hosted_form_problems(draft).items():
            if name not in self.errors:
                self.add_error(name, problem)
        return cleaned


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label="Events to send",
        choices=[(value, WebhookEventType(value).label) for value in webhooks.SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    new_secret = forms.CharField(
        label="Secret",
        required=False,
        max_length=100,
        help_text="Shared with the receiver. Empty: a random one is made (or, on a change, "
        "the current one is kept). It is stored as given: the app signs with it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "events", "is_active")
        labels = {"url": "URL", "is_active": "Send events to this URL"}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        draft = WebhookEndpoint(
            url=cleaned.get("url") or "",
            description=cleaned.get("description") or "",
            events=cleaned.get("events") or [],
            secret=cleaned.get("new_secret") or self.instance.secret or webhooks.new_secret(),
        )
        for name, messages in webhooks.endpoint_errors(draft).items():
            field = "new_secret" if name == "secret" else name
            if field in self.fields and field not in self.errors:
                self.add_error(field, messages)
        return cleaned

    def service_data(self) -> dict[str, Any]:
        """What `webhook_endpoint_create` and `webhook_endpoint_update` take."""
        names = ("url", "description", "events", "is_active")
        data = {name: self.cleaned_data[name] for name in names}
        return {**data, "secret": self.cleaned_data.get("new_secret", "")}
