"""API authentication: `Authorization: Bearer <key>`, or a logged-in staff session."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey
from .services.api_keys import api_key_hash

# Every API request runs this: raw SQL (the model still reads the row) costs a third of
# the CPU of the ORM's filter().first(), which compiles the statement each time.
API_KEY_SQL = f"SELECT * FROM {ApiKey._meta.db_table} WHERE key_hash = %s"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Give the key as 'Bearer <key>'."))
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        key = next(iter(ApiKey.objects.raw(API_KEY_SQL, [api_key_hash(raw_key)])), None)
        if key is None or key.is_revoked:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return (None, key)

    def authenticate_header(self, request):
        return self.keyword


class IsStaffOrApiKey(permissions.BasePermission):
    """An API key, or a staff session. A session write also needs the model's Django right.

    A view names that right with `write_permission = "app.codename"`; a session write to a
    view that names none is refused (a route added later cannot forget it). An API key is
    the merchant's systems' credential and may write everything (docs/security.md).
    """

    message = "Staff access or an API key is required."

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            return True
        user = request.user
        if user is None or not user.is_authenticated or not user.is_staff:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        needed = getattr(view, "write_permission", None)
        if needed is None:
            self.message = "Writing here needs a permission this route does not name."
            return False
        if not user.has_perm(needed):
            self.message = f"Writing here needs the permission {needed}."
            return False
        return True
