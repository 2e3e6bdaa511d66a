"""The Partner Center's Resources page (SPEC §12), and the banners' image files.

Banners are served by this app (nothing else serves MEDIA_URL; docs/decisions.md): the file
named in the address must be a resource's stored image, and it is streamed with the content
type Pillow found when it was uploaded, `X-Content-Type-Options: nosniff` and a CSP that
lets nothing run. The address is public: partners put the banners on their own sites.
"""

from typing import Any

from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_safe
from django.views.generic import TemplateView

from .creative_selectors import partner_resources
from .models import Resource, ResourceKind
from .partner_center import PartnerCenterMixin

BANNER_CACHE_SECONDS = 3600


class ResourcesView(PartnerCenterMixin, TemplateView):
    """Every banner and text, with the logged-in partner's own link filled in."""

    template_name = "partner/resources.html"
    section = "resources"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        shown = partner_resources(self.partner)
        return super().get_context_data(
            banners=[r for r in shown if r.resource.kind == ResourceKind.BANNER],
            texts=[r for r in shown if r.resource.kind != ResourceKind.BANNER],
            link=shown[0].link if shown else "",
            **kwargs,
        )


@require_safe
def banner_image(request: HttpRequest, name: str) -> FileResponse:
    """A banner's image file, as it was checked on upload."""
    resource = (
        Resource.objects.filter(kind=ResourceKind.BANNER, image=f"banners/{name}")
        .only("image", "image_type")
        .first()
    )
    if resource is None or not resource.image_type:
        raise Http404("No such banner.")
    try:
        file = resource.image.open("rb")
    except FileNotFoundError:
        raise Http404("No such banner.") from None
    response = FileResponse(file, content_type=resource.image_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = f"public, max-age={BANNER_CACHE_SECONDS}"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
