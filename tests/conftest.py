import pytest

from tests.factories import StaffFactory, UserFactory


@pytest.fixture
def staff_user(db):
    return StaffFactory()


@pytest.fixture
def plain_user(db):
    """Logged in, but not staff."""
    return UserFactory()


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def api(db):
    """An API client holding a valid key, as a merchant's integration would."""
    from rest_framework.test import APIClient

    from partners.services import api_key_create

    _, raw_key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture(autouse=True)
def _no_tracker_memo(settings):
    """The tracker's per-process memory of lookups is off unless a test turns it on: test
    databases reuse partner codes and ids between tests."""
    from partners.tracker_memo import memo

    settings.TRACKER_MEMO_SECONDS = 0
    memo.clear()
    yield
    memo.clear()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (SQLite reuses ids between tests)."""
    from django.core.cache import cache

    cache.clear()
