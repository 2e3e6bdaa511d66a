"""Rotating SECRET_KEY as docs/security.md says (issue 7, part 7): with the old key in
SECRET_KEY_FALLBACKS, tracking cookies and links already handed out keep counting, people
stay logged in and reset links keep working; without it (a leaked key), all of them stop."""

from decimal import Decimal

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client, override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests.factories import ProgramFactory
from tests.functional.test_partner_center import partner_with_login

pytestmark = pytest.mark.django_db

OLD_KEY = "old-secret-key-" + "o" * 50
NEW_KEY = "new-secret-key-" + "n" * 50
ROTATED = {"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": [OLD_KEY]}
LEAKED = {"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": []}


@pytest.fixture
def handed_out(api):
    """Under the old key: a visitor's rp_ref token from alice's link, alice's logged-in
    Partner Center session, and a password reset link."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        alice = partner_with_login("alice")
        visitor = Client()
        token = visitor.get("/go/alice/").cookies["rp_ref"].value
        session = Client()
        session.force_login(alice.user)
        assert session.get("/partner/").status_code == 200
        uid = urlsafe_base64_encode(force_bytes(alice.user.pk))
        reset = f"/partner/password-reset/{uid}/{default_token_generator.make_token(alice.user)}/"
    return {"token": token, "visitor": visitor, "session": session, "reset": reset}


def order_with(api, event_id: str, token: str) -> dict:
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": event_id,
            "contact": {"email": f"{event_id}@example.com"},
            "tracking_token": token,
            "items": [{"sku": "A", "quantity": 1, "unit_price": "50.00"}],
        },
        format="json",
    )
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize(
    ("keys", "still_valid"),
    [
        pytest.param(ROTATED, True, id="old-key-as-fallback"),
        pytest.param(LEAKED, False, id="leaked"),
    ],
)
def test_what_was_signed_with_the_old_key(api, handed_out, keys, still_valid):
    with override_settings(**keys):
        sale = order_with(api, "o-1", handed_out["token"])
        dashboard = handed_out["session"].get("/partner/")
        reset = handed_out["session"].__class__().get(handed_out["reset"])

    credited = sale["sale_partner"] == "alice" and sale["attribution"]["source"] == "cookie"
    assert credited is still_valid
    assert (dashboard.status_code == 200) is still_valid
    # A valid reset link moves on to the "set a password" page; a dead one says it is invalid.
    assert (reset.status_code == 302 and "set-password" in reset["Location"]) is still_valid


def test_a_new_click_after_the_rotation_is_signed_with_the_new_key(api, handed_out):
    with override_settings(**ROTATED):
        token = handed_out["visitor"].get("/go/alice/").cookies["rp_ref"].value
    with override_settings(**LEAKED):  # the old key is gone for good
        sale = order_with(api, "o-2", token)

    assert (sale["sale_partner"], sale["attribution"]["source"]) == ("alice", "cookie")
