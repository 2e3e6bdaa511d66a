"""Staff approve and reject commissions: one by one on the order and partner pages, in bulk
from the filtered commission list, and in the admin (issue 17, SPEC §11)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from commissions.models import Commission, CommissionEntry
from partners.services.defaults import defaults_update
from tests.conftest import FIXED_NOW
from tests.factories import PartnerFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lines(api, fixed_now):
    """Three sales of `seller` with a 30-day hold: one 40 days old (payable), two of today
    (pending); 10 % each."""
    defaults_update(data={"payout_percent": True, "hold_days": 30}, acting_user=None)
    ProgramFactory(priority=1, payout_percent=True, rates={1: {"sale_percent": Decimal("10")}})
    PartnerFactory(code="seller")
    for event_id, price, days in (("old", "100.00", 40), ("a", "50.00", 0), ("b", "20.00", 0)):
        response = api.post(
            "/api/v1/events/orders/",
            {
                "event_id": event_id,
                "occurred_at": (FIXED_NOW - timedelta(days=days)).isoformat(),
                "contact": {"email": f"{event_id}@example.com"},
                "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
                "sale_partner": "seller",
            },
            format="json",
        )
        assert response.status_code == 201
    return {c.order.order_id: c for c in Commission.objects.select_related("order")}


def status_of(line: Commission) -> str:
    from commissions.lifecycle import commission_status

    line.refresh_from_db()
    from django.utils import timezone

    return commission_status(line, at=timezone.now())


def test_the_order_page_shows_the_status_and_approves_one_early(staff_client, lines):
    page = staff_client.get("/staff/orders/a/")

    assert page.status_code == 200
    assert b'data-status="pending"' in page.content
    assert (FIXED_NOW + timedelta(days=30)).date().isoformat().encode() in page.content
    assert b"Approve now" in page.content

    response = staff_client.post(
        "/staff/commissions/review/",
        {"ids": [lines["a"].pk], "action": "approve", "next": "/staff/orders/a/"},
        follow=True,
    )

    assert response.redirect_chain == [("/staff/orders/a/", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "1 pending commission approved: payable now."
    ]
    assert status_of(lines["a"]) == "payable"
    assert status_of(lines["b"]) == "pending"


def test_the_partner_page_rejects_one_with_its_reason(staff_client, lines):
    page = staff_client.get("/staff/crm/partners/seller/activity/")
    assert page.content.count(b'name="reason"') == 3  # every unpaid line can be rejected

    response = staff_client.post(
        "/staff/commissions/review/",
        {"ids": [lines["old"].pk], "action": "reject", "reason": "Test order", "next": "/x"},
    )

    assert response.status_code == 302
    assert status_of(lines["old"]) == "rejected"
    rejection = Commission.objects.get(entry=CommissionEntry.REJECTION)
    assert (rejection.amount, rejection.reason, rejection.clawback_of_id) == (
        Decimal("-10.00"),
        "Test order",
        lines["old"].pk,
    )
    page = staff_client.get("/staff/crm/partners/seller/activity/")
    assert b"Test order" in page.content


def test_a_rejection_without_a_reason_is_refused_and_writes_nothing(staff_client, lines):
    response = staff_client.post(
        "/staff/commissions/review/",
        {"ids": [lines["a"].pk], "action": "reject", "reason": " ", "next": "/staff/orders/a/"},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == ["Say why the commission is rejected."]
    assert not Commission.objects.filter(entry=CommissionEntry.REJECTION).exists()
    assert status_of(lines["a"]) == "pending"


def test_the_filtered_list_approves_and_rejects_in_bulk(staff_client, lines):
    page = staff_client.get("/staff/commissions/", {"status": "pending"})

    assert page.status_code == 200
    assert sorted(row["line"].order.order_id for row in page.context["rows"]) == ["a", "b"]

    staff_client.post(
        "/staff/commissions/review/",
        {"ids": [lines["a"].pk, lines["b"].pk], "action": "approve", "next": "/staff/commissions/"},
    )
    assert [status_of(lines[k]) for k in ("a", "b")] == ["payable", "payable"]

    response = staff_client.post(
        "/staff/commissions/review/",
        {"ids": [lines["a"].pk, lines["b"].pk], "action": "reject", "reason": "Duplicates"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "2 pending commissions approved: payable now.",  # from the approval before
        "2 commissions rejected; the partner is told.",
    ]
    assert [status_of(lines[k]) for k in ("a", "b")] == ["rejected", "rejected"]
    payable = staff_client.get("/staff/commissions/", {"status": "rejected"}).context["rows"]
    assert len(payable) == 2


def test_staff_without_the_change_right_cannot_review(client, lines):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_commission"))
    client.force_login(staff)

    page = client.get("/staff/orders/a/")
    response = client.post(
        "/staff/commissions/review/", {"ids": [lines["a"].pk], "action": "approve"}
    )

    assert b"Approve now" not in page.content
    assert response.status_code == 403
    assert status_of(lines["a"]) == "pending"


def test_the_admin_approves_the_selected_pending_lines(staff_client, lines):
    response = staff_client.post(
        "/admin/commissions/commission/",
        {"action": "approve_early", "_selected_action": [lines["a"].pk, lines["old"].pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        "1 pending commission approved: payable now."
    ]
    assert (status_of(lines["a"]), status_of(lines["b"])) == ("payable", "pending")


def test_the_admin_rejects_the_selected_lines_with_a_reason(staff_client, lines):
    selected = [lines["a"].pk, lines["b"].pk]
    ask = staff_client.post(
        "/admin/commissions/commission/",
        {"action": "reject_selected", "_selected_action": selected},
    )
    assert ask.status_code == 200 and b'name="reason"' in ask.content
    assert not Commission.objects.filter(entry=CommissionEntry.REJECTION).exists()

    staff_client.post(
        "/admin/commissions/commission/",
        {"action": "reject_selected", "_selected_action": selected, "reason": "Chargeback"},
    )

    assert [status_of(lines[k]) for k in ("a", "b")] == ["rejected", "rejected"]
    assert set(
        Commission.objects.filter(entry=CommissionEntry.REJECTION).values_list("reason", flat=True)
    ) == {"Chargeback"}


# --- The Partner Center (SPEC §11) ---------------------------------------------------------


def seller_client(lines):
    from partners.models import Partner
    from tests.functional.test_partner_center import logged_in, partner_with_login

    seller = Partner.objects.get(code="seller")
    partner_with_login("other")  # another partner's coupon must not show
    from partners.services.partners import partner_login_set_password

    partner_login_set_password(partner=seller, password="a long enough password 1")
    seller.refresh_from_db()
    return logged_in(seller)


def test_the_partner_sees_pending_payable_and_when_each_pending_amount_is_due(lines):
    from commissions.lifecycle import commissions_reject

    commissions_reject(ids=[lines["b"].pk], reason="Cancelled by the customer")
    client = seller_client(lines)

    page = client.get("/partner/ledger/")

    assert {name: page.context["figures"][name] for name in ("pending", "payable")} == {
        "pending": "5.00",
        "payable": "10.00",
    }
    assert page.context["figures"]["rejections"] == "2.00"
    due = (FIXED_NOW + timedelta(days=30)).date()
    assert [(row["day"], row["amount"]) for row in page.context["schedule"]] == [(due, "5.00")]
    text = page.content.decode()
    assert f'data-payable-on="{due.isoformat()}"' in text
    assert "Rejected: Cancelled by the customer" in text
    assert f"Pending until {due.isoformat()}" in text


def test_the_partner_center_lists_the_partners_own_active_coupons_to_copy(lines):
    from partners.models import Coupon, Partner

    seller = Partner.objects.get(code="seller")
    Coupon.objects.create(code="SELLER10", partner=seller)
    Coupon.objects.create(code="OLDCODE", partner=seller, active=False)
    client = seller_client(lines)
    Coupon.objects.create(code="OTHER5", partner=Partner.objects.get(code="other"))

    page = client.get("/partner/links/")

    assert [c.code for c in page.context["coupons"]] == ["SELLER10"]
    text = page.content.decode()
    assert 'data-coupon="SELLER10"' in text and 'data-copy="SELLER10"' in text
    assert "OTHER5" not in text and "OLDCODE" not in text
