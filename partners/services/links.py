"""Tracking links: `tracking_link_save` (one default link at a time)."""

from django.db import transaction

from ..models import TrackingLink


@transaction.atomic
def tracking_link_save(*, link: TrackingLink) -> TrackingLink:
    """Create or change a tracking link; making it the default unsets the previous one."""
    link.full_clean(validate_constraints=False)
    if link.is_default:
        TrackingLink.objects.filter(is_default=True).exclude(pk=link.pk).update(is_default=False)
    link.save()
    return link
