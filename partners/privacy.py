"""What the personal data actions (export, erase) share between the staff pages and the
admin: the confirmation form and the JSON download. The writes are
`partners.services.privacy.partner_export` and `partner_erase` (docs/privacy.md)."""

import json
from typing import Any

from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

from .models import Partner

# Who may erase: it cannot be undone, like a delete (which nothing else in the app does).
ERASE_PERMISSION = "partners.delete_partner"


class EraseConfirmForm(forms.Form):
    """Erasing cannot be undone: staff type the partner's code to confirm."""

    confirm = forms.CharField(
        label="Type the partner's code to confirm",
        max_length=32,
        strip=True,
        help_text="Erasing cannot be undone.",
    )

    def __init__(self, *args: Any, partner: Partner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partner = partner

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"]
        if typed.lower() != self.partner.code.lower():
            raise forms.ValidationError(
                f"That is not the code of this partner: type {self.partner.code} to erase "
                "their personal data."
            )
        return typed


def export_response(data: dict[str, Any], *, filename_code: str) -> HttpResponse:
    """The export as a JSON download (UTF-8, indented for people to read)."""
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="partner-{filename_code}.json"'
    response["Cache-Control"] = "no-store"
    return response
