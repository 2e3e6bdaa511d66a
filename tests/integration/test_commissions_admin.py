"""The engine's admin pages: read-only evidence, manual referrals through the service."""

import pytest

from commissions.models import Contact, Referral
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/commissions/contact/",
    "/admin/commissions/referral/",
    "/admin/commissions/referral/add/",
    "/admin/commissions/order/",
    "/admin/commissions/commission/",
    "/admin/commissions/event/",
    "/admin/commissions/lead/",
    "/admin/commissions/notification/",
]


@pytest.mark.parametrize("url", PAGES)
def test_pages_open_for_staff(staff_client, url):
    assert staff_client.get(url).status_code == 200


def test_staff_add_a_manual_referral_in_the_admin(staff_client, staff_user):
    jane = PartnerFactory(code="jane", cookie_days=10)

    response = staff_client.post(
        "/admin/commissions/referral/add/",
        {"email": "Ada@Example.com", "partner": jane.pk, "referred_at": "2026-11-01 10:00:00"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = Referral.objects.get()
    assert (entry.contact.email, entry.partner, entry.source, entry.created_by) == (
        "ada@example.com",
        jane,
        "manual",
        staff_user.username,
    )
    assert entry.expires_at.isoformat() == "2026-11-11T10:00:00+00:00"


def test_an_inactive_partner_cannot_be_chosen(staff_client):
    sleepy = PartnerFactory(code="sleepy", status="inactive")
    response = staff_client.post(
        "/admin/commissions/referral/add/", {"email": "ada@example.com", "partner": sleepy.pk}
    )
    assert response.status_code == 200
    assert "partner" in response.context["adminform"].form.errors
    assert (Referral.objects.count(), Contact.objects.count()) == (0, 0)
