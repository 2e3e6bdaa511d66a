"""A staff member runs a payout batch in a real browser and downloads it (SPEC §5.5, §7);
a partner enters bank details, staff preview, throw away, confirm and mark a payout
(SPEC §11, issue 17)."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from commissions.ledger import partner_ledger
from commissions.models import Payment, PayoutBatch
from tests.factories import PartnerFactory, ProgramFactory, StaffFactory, give_payout_details
from tests.functional.test_partner_center import PASSWORD as PARTNER_PASSWORD
from tests.functional.test_partner_center import partner_with_login

# transaction=True: the live server's thread must see the test's rows. The flush after such a
# test re-emits post_migrate, which makes the defaults row again (partners.apps).
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "correct-horse-battery"  # the factories' password


def sell(api, event_id, day, partner):
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": event_id,
            "occurred_at": f"{day}T12:00:00Z",
            "sale_partner": partner,
            "contact": {"email": f"{event_id}@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.data


@pytest.fixture
def owed(api):
    """October: alice earned 20.00, bobby 10.00; carol sold in November (not in range)."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    give_payout_details(PartnerFactory(code="alice", name="Alice Able", email="alice@pay.example"))
    give_payout_details(PartnerFactory(code="bobby", name="Bob By", email="bob@pay.example"))
    give_payout_details(PartnerFactory(code="carol", name="Carol C", email="carol@pay.example"))
    sell(api, "a1", "2026-10-05", "alice")
    sell(api, "a2", "2026-10-30", "alice")
    sell(api, "b1", "2026-10-12", "bobby")
    sell(api, "c1", "2026-11-03", "carol")


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_staff_create_a_payout_batch_and_download_it(live_server, page, screenshot, owed):
    StaffFactory(username="maria")

    log_in(page, live_server, "maria")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Payouts").click()
    expect(page.get_by_role("heading", name="Payouts", exact=True)).to_be_visible()
    page.get_by_label("From").fill("2026-10-01")
    page.get_by_label("To").fill("2026-10-31")
    page.get_by_label("Commissions earned in the range").check()
    page.get_by_label("Minimum payment").fill("")
    page.get_by_role("button", name="Preview payout batch").click()
    batch = PayoutBatch.objects.get()
    expect(page.locator("#draft-payments tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Confirm and record these payments").click()

    expect(page.get_by_role("status")).to_have_text(
        f"Payout batch {batch.pk} confirmed: 2 payments, total 30.00 USD."
    )
    expect(page.get_by_role("heading", name=f"Payout batch {batch.pk}")).to_be_visible()
    expect(page.locator("#batch-payments tbody tr")).to_have_count(2)
    screenshot()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value

    assert download.suggested_filename == f"payout-batch-{batch.pk}.csv"
    with open(download.path(), encoding="utf-8", newline="") as downloaded:
        assert downloaded.read() == (
            "partner_code,name,email,amount,currency,batch_id\r\n"
            f"alice,Alice Able,alice@pay.example,20.00,USD,{batch.pk}\r\n"
            f"bobby,Bob By,bob@pay.example,10.00,USD,{batch.pk}\r\n"
        )
    assert batch.created_by == "maria"
    assert sorted(Payment.objects.values_list("partner__code", "amount")) == [
        ("alice", Decimal("20.00")),
        ("bobby", Decimal("10.00")),
    ]


def test_reports_fit_a_phone_screen(live_server, page, screenshot, owed):
    StaffFactory(username="maria")
    page.set_viewport_size({"width": 390, "height": 844})

    log_in(page, live_server, "maria")
    page.goto(f"{live_server.url}/staff/reports/ledger/?start=2026-10-01&end=2026-10-31")

    expect(page.locator("#ledger-report tbody tr")).to_have_count(3)
    # The page itself never scrolls sideways; the wide table scrolls inside its own box.
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.querySelector('.table-wrap').scrollWidth,"
        " document.querySelector('.table-wrap').clientWidth]"
    )
    page_scroll, page_width, table_scroll, table_width = widths
    assert page_scroll <= page_width
    assert table_scroll > table_width
    screenshot()


IBAN = "DE89370400440532013000"


def test_bank_details_masked_for_staff_in_full_in_the_wise_file_and_a_payout_from_preview_to_failed(
    live_server, page, screenshot, owed
):
    """Olga enters her bank details in the Partner Center; staff see them masked and the
    Wise file holds them in full; staff preview a payout, throw the draft away (nothing
    recorded), preview again, confirm, and mark Olga's payment failed: her 10.00 is back."""
    StaffFactory(username="maria")
    partner_with_login("olga", name="Olga Ost", email="olga@pay.example")
    sell_olga = {"event_id": "o1", "day": "2026-10-20", "partner": "olga"}
    from rest_framework.test import APIClient

    from partners.services.api_keys import api_key_create

    _, key = api_key_create(name="browser")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    sell(api, sell_olga["event_id"], sell_olga["day"], sell_olga["partner"])

    # The partner enters bank details; a bad IBAN first is refused on its field.
    page.goto(f"{live_server.url}/partner/login/")
    page.get_by_label("Partner code or email").fill("olga")
    page.get_by_label("Password").fill(PARTNER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/partner/profile/")
    page.get_by_role("link", name="My payout details").click()
    page.get_by_label("Bank transfer").check()
    page.get_by_label("Account holder").fill("Olga Ost")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 01")
    page.get_by_role("button", name="Save payout details").click()
    expect(
        page.get_by_text("This IBAN is not valid (Invalid checksum digits)").first
    ).to_be_visible()
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Save payout details").click()
    expect(page.get_by_role("status")).to_contain_text("Your payout details are saved.")
    expect(page.locator("#current-payout-details")).to_contain_text("DE89 •••• 3000")
    screenshot()
    page.context.clear_cookies()

    # Staff see them masked.
    log_in(page, live_server, "maria")
    page.goto(f"{live_server.url}/staff/crm/partners/olga/activity/")
    expect(page.locator("#payout-details")).to_contain_text("IBAN DE89 •••• 3000")
    assert IBAN not in page.content()

    # Preview, throw the draft away: nothing recorded.
    page.goto(f"{live_server.url}/staff/payouts/")
    page.get_by_label("From").fill("2026-10-01")
    page.get_by_label("To").fill("2026-10-31")
    page.get_by_role("button", name="Preview payout batch").click()
    expect(page.locator("#draft-payments tbody tr")).to_have_count(3)
    assert Payment.objects.count() == 0
    page.get_by_role("button", name="Throw this draft away").click()
    expect(page.get_by_role("status")).to_contain_text("nothing was recorded")
    assert (PayoutBatch.objects.count(), Payment.objects.count()) == (0, 0)

    # Preview again and confirm.
    page.get_by_label("From").fill("2026-10-01")
    page.get_by_label("To").fill("2026-10-31")
    page.get_by_role("button", name="Preview payout batch").click()
    page.get_by_role("button", name="Confirm and record these payments").click()
    batch = PayoutBatch.objects.get()
    expect(page.get_by_role("status")).to_have_text(
        f"Payout batch {batch.pk} confirmed: 3 payments, total 40.00 USD."
    )
    olga = Payment.objects.get(partner__code="olga")
    assert partner_ledger(olga.partner, currency="USD").ending_balance == Decimal("0.00")

    # The Wise file holds her details in full.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download Wise file").click()
    with open(download_info.value.path(), encoding="utf-8", newline="") as downloaded:
        wise = downloaded.read()
    assert (
        f"Olga Ost,olga@pay.example,Payout {batch.pk},PERSON,target,10.00,USD,USD,{IBAN}," in wise
    )

    # Mark Olga's payment failed: her 10.00 is back on her balance.
    row = page.locator(f'tr[data-payment="{olga.pk}"]')
    row.get_by_label("Why the payment to olga failed").fill("Account closed")
    row.get_by_role("button", name="Mark failed").click()
    expect(page.get_by_role("status")).to_contain_text("10.00 USD is back on their balance")
    expect(page.locator(f'tr[data-payment="{olga.pk}"] [data-status]')).to_have_text(
        "Failed (amount back on the balance)"
    )
    screenshot()
    olga.refresh_from_db()
    assert (olga.status, olga.reference) == ("failed", "Account closed")
    assert partner_ledger(olga.partner, currency="USD").ending_balance == Decimal("10.00")
