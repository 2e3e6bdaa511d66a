"""The forms of the Partner Center's welcome message and resources (SPEC §12), shared by
the staff's Settings pages and the admin. They only validate; a banner's file is checked by
`creatives.banner_image_check` (so the form and the service refuse the same files) and
everything else by the services."""

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .creatives import ALLOWED, LINK_PLACEHOLDER, BannerImage, banner_image_check
from .models import PartnerCenterSettings, Resource, ResourceKind


class WelcomeMessageForm(forms.Form):
    welcome_message = forms.CharField(
        label="Welcome message",
        required=False,
        max_length=PartnerCenterSettings._meta.get_field("welcome_message").max_length,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Shown at the top of every partner's Partner Center home. Markdown: "
        "**bold**, *italic*, [a link](https://example.com), lists and headings; HTML is "
        "shown as text. Empty: no message.",
    )


def image_help() -> str:
    mb = settings.RESOURCE_IMAGE_MAX_BYTES / (1024 * 1024)
    return (
        f"{ALLOWED}, at most {mb:g} MB and {settings.RESOURCE_IMAGE_MAX_WIDTH} x "
        f"{settings.RESOURCE_IMAGE_MAX_HEIGHT} pixels. SVG and HTML are refused."
    )


RESOURCE_FIELDS = ("kind", "title", "text", "alt_text", "position")


class ResourceForm(forms.ModelForm):
    """A resource; `banner` holds the checked image file when one was uploaded."""

    image = forms.FileField(
        label="Image",
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}
        ),
    )

    class Meta:
        model = Resource
        fields = RESOURCE_FIELDS
        labels = {"alt_text": "Image description (alt text)", "text": "Text"}
        widgets = {"text": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.banner: BannerImage | None = None
        self.fields["image"].help_text = image_help() + " For banners only."
        self.fields["text"].help_text = (
            f"For email copy and social posts: {LINK_PLACEHOLDER} is replaced by each "
            "partner's own link."
        )
        if self.instance.pk:
            # A resource keeps its kind: a banner's image and a text's words do not mix.
            self.fields["kind"].disabled = True

    def clean_image(self) -> Any:
        upload = self.cleaned_data.get("image")
        if upload:
            try:
                self.banner = banner_image_check(upload, name=upload.name)
            except ValidationError as error:
                raise ValidationError(error.message_dict["image"]) from None
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        has_image = self.banner is not None or bool(self.instance.image)
        if kind == ResourceKind.BANNER and not has_image and "image" not in self.errors:
            self.add_error("image", "A banner needs its image.")
        if kind and kind != ResourceKind.BANNER and self.banner is not None:
            self.add_error("image", "Only banners have an image: choose the kind Banner.")
        return cleaned

    def service_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in RESOURCE_FIELDS}
