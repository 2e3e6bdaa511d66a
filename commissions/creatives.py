"""What staff write for the Partner Center (SPEC §12): the welcome message and the resources
(banners, email copy, social posts). Every write is one function here; the staff pages and
the admin call them.

A banner's file is checked before anything is stored (`banner_image_check`): Pillow must
read it as a PNG, JPEG, GIF or WebP image whose name says the same, within
`RESOURCE_IMAGE_MAX_BYTES` and `RESOURCE_IMAGE_MAX_WIDTH` x `RESOURCE_IMAGE_MAX_HEIGHT`.
SVG (which can carry script) and HTML are refused, never sanitised. The file is stored
under a random name with the extension of what Pillow found.
"""

import io
import uuid
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from .creative_selectors import LINK_PLACEHOLDER
from .models import PartnerCenterSettings, Resource, ResourceKind

# What Pillow may find, and how the file is stored and served: format -> (type, extension).
IMAGE_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
# The names a file of each format may have.
EXTENSIONS = {
    "PNG": {"png"},
    "JPEG": {"jpg", "jpeg", "jpe", "jfif"},
    "GIF": {"gif"},
    "WEBP": {"webp"},
}
ALLOWED = "PNG, JPEG, GIF or WebP"


@dataclass(frozen=True)
class BannerImage:
    """A checked banner file: its bytes and what Pillow found in them."""

    content: bytes
    content_type: str
    extension: str
    width: int
    height: int


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def banner_image_check(file: IO[bytes], *, name: str, field: str = "image") -> BannerImage:
    """Read and check an uploaded banner; a ValidationError naming `field` if it is not a
    PNG, JPEG, GIF or WebP image within the limits, or if its name says another type."""
    limit = settings.RESOURCE_IMAGE_MAX_BYTES
    content = file.read(limit + 1)
    if len(content) > limit:
        raise ValidationError(
            {field: f"The file is larger than {_size(limit)}: make the banner smaller."}
        )
    if not content:
        raise ValidationError({field: "The file is empty."})
    if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise ValidationError({field: f"SVG and HTML files are refused: upload a {ALLOWED} image."})
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError(
            {field: f"The file is not an image Pillow can read: upload a {ALLOWED} image."}
        ) from None
    if kind not in IMAGE_FORMATS:
        raise ValidationError({field: f"{kind} images are refused: upload a {ALLOWED} image."})
    max_width, max_height = settings.RESOURCE_IMAGE_MAX_WIDTH, settings.RESOURCE_IMAGE_MAX_HEIGHT
    if width > max_width or height > max_height:
        raise ValidationError(
            {
                field: f"The image is {width} x {height} pixels; banners may be at most "
                f"{max_width} x {max_height}."
            }
        )
    extension = PurePath(name).suffix.lower().lstrip(".")
    if extension not in EXTENSIONS[kind]:
        raise ValidationError(
            {
                field: f"The file is named {PurePath(name).name} but holds a {kind} image: "
                f"rename it .{IMAGE_FORMATS[kind][1]} or upload the right file."
            }
        )
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()  # the whole image decodes: not truncated nor damaged
    except (OSError, ValueError, SyntaxError):
        raise ValidationError(
            {field: "The image is damaged: it could not be read whole."}
        ) from None
    content_type, stored_extension = IMAGE_FORMATS[kind]
    return BannerImage(content, content_type, stored_extension, width, height)


def _text_check(*, kind: str, text: str, alt_text: str) -> None:
    if kind == ResourceKind.BANNER:
        if not alt_text.strip():
            raise ValidationError({"alt_text": "Say what the banner shows, for screen readers."})
    elif LINK_PLACEHOLDER not in text:
        raise ValidationError({"text": f"Put {LINK_PLACEHOLDER} where the partner's link goes."})


def _image_set(resource: Resource, image: BannerImage) -> None:
    name = f"{uuid.uuid4().hex}.{image.extension}"
    resource.image.save(name, ContentFile(image.content), save=False)
    resource.image_type = image.content_type
    resource.width, resource.height = image.width, image.height


def _save_or_drop_image(resource: Resource, *, new_image: bool) -> None:
    """Save the row; if that fails, the image file just stored goes too (nothing stored)."""
    try:
        resource.save()
    except Exception:
        if new_image and resource.image.name:
            resource.image.storage.delete(resource.image.name)
        raise


def _image_delete_on_commit(name: str) -> None:
    if name:
        storage = Resource._meta.get_field("image").storage
        transaction.on_commit(lambda: storage.delete(name))


@transaction.atomic
def resource_create(*, data: dict[str, Any], image: BannerImage | None = None) -> Resource:
    """Add a resource. A banner needs its checked `image`; a text needs `{link}` in it."""
    resource = Resource(
        kind=data["kind"],
        title=data["title"],
        text=data.get("text", ""),
        alt_text=data.get("alt_text", ""),
        position=data.get("position", 0),
    )
    if resource.kind == ResourceKind.BANNER:
        if image is None:
            raise ValidationError({"image": "A banner needs its image."})
        resource.text = ""
    else:
        resource.alt_text = ""
    _text_check(kind=resource.kind, text=resource.text, alt_text=resource.alt_text)
    resource.full_clean(exclude=["image"])
    if image is not None and resource.kind == ResourceKind.BANNER:
        _image_set(resource, image)
    _save_or_drop_image(resource, new_image=image is not None)
    return resource


@transaction.atomic
def resource_update(
    *, resource: Resource, data: dict[str, Any], image: BannerImage | None = None
) -> Resource:
    """Change a resource's words, order or (a banner's) image; the old image file goes
    once the change is committed. Its kind does not change."""
    old_image = resource.image.name
    for field in ("title", "text", "alt_text", "position"):
        if field in data:
            setattr(resource, field, data[field])
    if resource.kind == ResourceKind.BANNER:
        resource.text = ""
    else:
        resource.alt_text = ""
    _text_check(kind=resource.kind, text=resource.text, alt_text=resource.alt_text)
    resource.full_clean(exclude=["image"])
    if image is not None and resource.kind == ResourceKind.BANNER:
        _image_set(resource, image)
        _image_delete_on_commit(old_image)
    _save_or_drop_image(resource, new_image=image is not None)
    return resource


@transaction.atomic
def resource_delete(*, resource: Resource) -> None:
    """Delete a resource, and its image file once that is committed."""
    _image_delete_on_commit(resource.image.name)
    resource.delete()


def welcome_message_update(*, text: str, acting_user: AbstractBaseUser | None) -> bool:
    """Save the Partner Center's welcome message; False (nothing written) if unchanged."""
    text = text.replace("\r\n", "\n").strip()
    with transaction.atomic():
        row, _ = PartnerCenterSettings.objects.select_for_update().get_or_create(pk=1)
        if row.welcome_message == text:
            return False
        row.welcome_message = text
        row.updated_by = acting_user.get_username() if acting_user else ""
        row.full_clean()
        row.save()
    return True
