"""*Preview the effect* in a real browser (SPEC §13, issue 19): staff change a setting on the
Defaults page, preview, see the table, and leave without saving: nothing has changed."""

import re

import pytest
from playwright.sync_api import expect

from commissions.models import SimulationRun
from commissions.services import simulations
from commissions.services.simulations import preview_run
from partners.selectors import defaults_get
from tests.factories import StaffFactory
from tests.functional.test_browser_csp import log_in, watch
from tests.functional.test_partner_center import PASSWORD
from tests.functional.test_preview_pages import outside_the_runs, shop  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

URL = "/staff/settings/referral-partner-defaults/"


def preview_levels(page, site: str, levels: str) -> None:
    page.goto(f"{site}{URL}")
    page.get_by_label("Referral partner # of levels").select_option(levels)
    page.get_by_label("Replay from").fill("2026-11-01")
    page.get_by_label("Replay to").fill("2026-11-30")
    page.get_by_role("button", name="Preview the effect").click()


def rows(page) -> list[str]:
    return [
        re.sub(r"\s+", " ", text).strip()
        for text in page.locator("#preview-partners tbody tr").all_inner_texts()
    ]


def test_a_preview_shows_the_table_and_leaving_changes_nothing(
    live_server,
    page,
    screenshot,
    shop,  # noqa: F811 (the fixture)
):
    StaffFactory(username="staff", password=PASSWORD)
    site = live_server.url
    problems = watch(page)
    log_in(page, site, "/accounts/login/", "staff")
    before = outside_the_runs()

    preview_levels(page, site, "1")

    table = page.locator("#preview-partners")
    expect(table).to_be_visible()
    expect(page.locator("[data-figure=change]")).to_have_text("\u22125.00 USD")
    assert rows(page) == [
        "boss The Boss USD 5.00 0.00 \u22125.00",
        "jane Jane Roe USD 20.00 20.00 0.00",
    ]
    # The page keeps the unsaved value, and the Save button is below the preview.
    expect(page.get_by_label("Referral partner # of levels")).to_have_value("1")
    # Sorting: by partner, from A; again, from Z.
    table.get_by_role("button", name="Partner").click()
    assert [row.split()[0] for row in rows(page)] == ["boss", "jane"]
    table.get_by_role("button", name="Partner").click()
    assert [row.split()[0] for row in rows(page)] == ["jane", "boss"]
    expect(table.locator("th[aria-sort=descending]")).to_have_text(re.compile("Partner"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the table (CSV)").click()
    assert download.value.suggested_filename.endswith(".csv")
    page.locator("#preview").scroll_into_view_if_needed()
    screenshot()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Partners").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Partners")

    assert defaults_get().levels == 2
    assert outside_the_runs() == before
    assert problems == []


def test_the_page_polls_a_run_until_its_table_comes(
    live_server,
    page,
    monkeypatch,
    shop,  # noqa: F811 (the fixture)
):
    """With a worker (here: the test itself), the page shows the progress bar, follows the
    run's progress, and puts the table in when the run has finished."""
    monkeypatch.setattr(simulations, "task_queue_on_commit", lambda name, *args: None)
    StaffFactory(username="staff", password=PASSWORD)
    site = live_server.url
    problems = watch(page)
    log_in(page, site, "/accounts/login/", "staff")

    preview_levels(page, site, "1")

    expect(page.locator("#preview progress")).to_be_visible()
    expect(page.locator("[data-preview-count]")).to_have_text("Waiting for the replay to start")
    run = SimulationRun.objects.get()
    SimulationRun.objects.filter(pk=run.pk).update(done=3, total=10)
    expect(page.locator("[data-preview-count]")).to_have_text("3 of 10 events")
    assert preview_run(run_id=run.pk) == "done"
    expect(page.locator("#preview-partners")).to_be_visible()
    expect(page.locator("#preview progress")).to_have_count(0)
    assert problems == []


def test_a_program_preview_fits_a_phone(
    live_server,
    page,
    screenshot,
    shop,  # noqa: F811 (the fixture)
):
    """The program page's preview at 375 px: both sides of an order one above the other, the
    table scrolling on its own; nothing wider than the screen."""
    StaffFactory(username="staff", password=PASSWORD)
    site = live_server.url
    problems = watch(page)
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, site, "/accounts/login/", "staff")
    page.goto(f"{site}/staff/programs/{shop.pk}/edit/")
    page.get_by_label("Level 1 sale amount").fill("20.00")
    page.get_by_label("Replay from").fill("2026-11-01")
    page.get_by_label("Replay to").fill("2026-11-30")
    page.get_by_role("button", name="Preview the effect").click()

    expect(page.locator("[data-figure=change]")).to_have_text("+20.00 USD")
    expect(page.get_by_label("Level 1 sale amount")).to_have_value("20.00")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator("#preview-orders").scroll_into_view_if_needed()
    screenshot()
    shop.refresh_from_db()
    assert shop.rates.get(level=1).sale_amount == 10
    assert problems == []
