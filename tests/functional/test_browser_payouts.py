"""A staff member runs a payout batch in a real browser and downloads it (SPEC §5.5, §7)."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from commissions.models import Payment, PayoutBatch
from tests.factories import PartnerFactory, ProgramFactory, StaffFactory

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
    PartnerFactory(code="alice", name="Alice Able", email="alice@pay.example")
    PartnerFactory(code="bobby", name="Bob By", email="bob@pay.example")
    PartnerFactory(code="carol", name="Carol C", email="carol@pay.example")
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
    page.get_by_role("button", name="Create payout batch").click()

    batch = PayoutBatch.objects.get()
    expect(page.get_by_role("status")).to_have_text(
        f"Payout batch {batch.pk} created: 2 payments, total 30.00 USD."
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
