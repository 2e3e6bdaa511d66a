import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from tests.factories import StaffFactory, UserFactory

# The "now" of tests that build data on fixed dates and then read "recent" figures counted
# back from the clock: `fixed_now` puts the clock there (it keeps ticking).
FIXED_NOW = datetime(2026, 11, 6, 12, tzinfo=UTC)


def pytest_addoption(parser):
    parser.addoption(
        "--clock-ahead",
        type=int,
        default=0,
        metavar="DAYS",
        help="Run every test with the clock moved DAYS days ahead: no test may depend on "
        "the day it runs (CI runs the date-sensitive tests a year ahead).",
    )


# A test module that writes a date (or reads the event fixtures, which carry dates) is
# date-sensitive: CI runs those tests once more with the clock a year ahead (--clock-ahead).
FIXED_DATE = re.compile(r"20\d\d-[01]\d-[0-3]\d|(?:datetime|date)\(20\d\d|fixtures/events|FIXTURES")


@cache
def _names_a_date(path: Path) -> bool:
    return bool(FIXED_DATE.search(path.read_text(encoding="utf-8")))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".py" and _names_a_date(item.path):
            item.add_marker("dates")


def pytest_runtest_setup(item):
    """`@pytest.mark.postgresql(reason)`: a test about PostgreSQL's own path (prepared
    statements, COPY, its batch writer), skipped on SQLite with its reason. Where the
    behaviour only differs, a test asserts each database's own figure instead."""
    marker = item.get_closest_marker("postgresql")
    if marker is None:
        return
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        reason = marker.args[0] if marker.args else marker.kwargs["reason"]
        pytest.skip(f"PostgreSQL only: {reason}")


@pytest.fixture(autouse=True)
def _clock_ahead(request):
    days = request.config.getoption("--clock-ahead")
    if not days:
        yield
        return
    with time_machine.travel(timezone.now() + timedelta(days=days), tick=True):
        yield


@pytest.fixture
def fixed_now():
    """The clock stands at FIXED_NOW (and ticks on) for the whole test."""
    with time_machine.travel(FIXED_NOW, tick=True):
        yield FIXED_NOW


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

    from partners.services.api_keys import api_key_create

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
