"""API keys: made with a raw key shown once (only its hash is stored), and revoked."""

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from ..models import ApiKey

API_KEY_PREFIX = "rp_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, name: str, created_by: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Make a key; the raw key is returned once and only its hash is stored."""
    if not name.strip():
        raise ValidationError({"name": "Give the key a name."})
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name.strip(),
        prefix=raw_key[:10],
        key_hash=api_key_hash(raw_key),
        created_by=created_by,
    )
    return key, raw_key


def api_keys_revoke(*, keys: QuerySet[ApiKey]) -> int:
    return keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
