"""Coupons on the staff partner page and in the admin, with the CSV import (issue 17)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from partners.models import Coupon
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


def test_the_partner_page_lists_and_adds_coupons(staff_client):
    jane = PartnerFactory(code="jane")
    Coupon.objects.create(code="JANE10", partner=jane)

    page = staff_client.get("/staff/partners/jane/")
    added = staff_client.post("/staff/partners/jane/coupons/", {"code": "jane-vip", "active": "on"})

    assert b'data-coupon="JANE10"' in page.content
    assert added.status_code == 302
    assert sorted(Coupon.objects.values_list("code", "partner__code", "active")) == [
        ("JANE10", "jane", True),
        ("jane-vip", "jane", True),
    ]


def test_a_taken_code_in_another_case_is_refused_on_the_page(staff_client):
    jane = PartnerFactory(code="jane")
    Coupon.objects.create(code="JANE10", partner=PartnerFactory(code="other"))

    response = staff_client.post("/staff/partners/jane/coupons/", {"code": "jane10"})

    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert not jane.coupons.exists()


def upload(staff_client, text: str):
    return staff_client.post(
        "/admin/partners/coupon/import/",
        {"file": SimpleUploadedFile("coupons.csv", text.encode(), content_type="text/csv")},
        follow=True,
    )


def test_the_admin_imports_coupons_from_csv(staff_client):
    PartnerFactory(code="jane")
    PartnerFactory(code="bob1")
    Coupon.objects.create(code="OLD", partner=PartnerFactory(code="zoe1"))

    response = upload(staff_client, "code,partner\nSUMMER,Jane\nold,bob1\nSPRING,jane\n")

    assert [str(m) for m in response.context["messages"]] == ["2 coupon(s) added, 1 updated."]
    assert sorted(Coupon.objects.values_list("code", "partner__code")) == [
        ("OLD", "bob1"),
        ("SPRING", "jane"),
        ("SUMMER", "jane"),
    ]


def test_a_wrong_line_imports_nothing_and_names_the_line(staff_client):
    PartnerFactory(code="jane")

    response = upload(staff_client, "code,partner\nSUMMER,jane\nWINTER,nobody\n")

    assert "Line 3: no partner has the code" in response.content.decode()
    assert not Coupon.objects.exists()
