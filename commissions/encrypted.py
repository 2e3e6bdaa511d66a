"""Encrypted model fields for payout details (SPEC §11), on django-fernet-encrypted-fields.

The library keeps each value Fernet-encrypted in a text column, with keys derived by PBKDF2
from SECRET_KEY (and SECRET_KEY_FALLBACKS) and each salt of the SALT_KEY setting
(`FIELD_ENCRYPTION_SALTS`); the first key encrypts, every key decrypts (MultiFernet), which
is how keys rotate (docs/deployment.md). Two things are changed here:

- the library hands back the stored ciphertext as the value when no key decrypts it; a
  payout file would then carry a token instead of an IBAN. Here that is an error naming the
  settings, never a silent value;
- the library derives its keys once per field (100,000 PBKDF2 rounds each); here once per
  process for all the fields, keyed by the settings so a test that changes them gets
  fresh keys.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from encrypted_fields.fields import EncryptedCharField


@functools.cache
def _fernet(secrets: tuple[str, ...], salts: tuple[str, ...]) -> MultiFernet:
    # The library's derivation (encrypted_fields.fields.EncryptedFieldMixin.keys), so values
    # written by its own fields read here and the other way round.
    keys = []
    for secret in secrets:
        for salt in salts:
            kdf = PBKDF2HMAC(
                algorithm=hashes.SHA256(), length=32, salt=salt.encode(), iterations=100_000
            )
            keys.append(Fernet(base64.urlsafe_b64encode(kdf.derive(secret.encode()))))
    return MultiFernet(keys)


def fernet() -> MultiFernet:
    salts = settings.SALT_KEY if isinstance(settings.SALT_KEY, list) else [settings.SALT_KEY]
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return _fernet(tuple(secrets), tuple(salts))


class UndecryptableValue(ImproperlyConfigured):
    pass


class SecretCharField(EncryptedCharField):
    """A CharField stored encrypted; "" is stored as NULL (the library's way), read as ""."""

    @property
    def f(self) -> MultiFernet:  # the library's name for its Fernet
        return fernet()

    def from_db_value(self, value, expression, connection):
        if value is None:
            return ""
        try:
            return self.f.decrypt(value.encode()).decode()
        except InvalidToken:
            raise UndecryptableValue(
                f"{self.model.__name__}.{self.name} cannot be decrypted with SECRET_KEY, "
                "SECRET_KEY_FALLBACKS and FIELD_ENCRYPTION_SALTS as set: a key it was "
                "written with is missing (docs/deployment.md, rotation)."
            ) from None
