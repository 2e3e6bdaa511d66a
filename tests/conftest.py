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
