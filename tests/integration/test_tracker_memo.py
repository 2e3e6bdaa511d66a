"""The tracker's per-process memory of lookups (partners.tracker_memo, issue 6): with the
click buffer on, a remembered code costs no query; what it forgets and when."""

import pytest

from partners.models import PartnerStatus
from partners.selectors import TrackerTarget, tracker_target
from partners.tracker_memo import MAX_ENTRIES, TrackerMemo, memo
from tests.factories import PartnerFactory, TrackingLinkFactory
from tests.integration.test_click_pipeline import BROWSER, buffered  # noqa: F401  (fixture)

FOUND = TrackerTarget(
    partner_id=7, cookie_days=30, tracking_link_id=None, destination=None, default_destination=None
)
NOBODY = TrackerTarget(
    partner_id=None, cookie_days=None, tracking_link_id=None, destination=None,
    default_destination=None,
)  # fmt: skip


class Lookups:
    """A lookup that answers what it is told and counts its calls."""

    def __init__(self, answer: TrackerTarget) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self) -> TrackerTarget:
        self.calls += 1
        return self.answer


def test_a_found_partner_is_remembered_until_the_seconds_pass():
    remembered, lookup = TrackerMemo(), Lookups(FOUND)

    for now in (100.0, 101.0, 109.9):
        assert remembered.target(code="Jane", link_code=None, lookup=lookup, seconds=10, now=now)
    assert lookup.calls == 1
    remembered.target(code="JANE", link_code=None, lookup=lookup, seconds=10, now=110.0)
    assert lookup.calls == 2  # forgotten after 10 s; codes ignore case


def test_a_code_that_finds_nobody_is_never_remembered():
    remembered, lookup = TrackerMemo(), Lookups(NOBODY)

    for now in (1.0, 2.0):
        remembered.target(code="nobody", link_code=None, lookup=lookup, seconds=10, now=now)
    assert lookup.calls == 2


def test_zero_seconds_turns_it_off_and_link_codes_are_told_apart():
    remembered, lookup = TrackerMemo(), Lookups(FOUND)

    remembered.target(code="jane", link_code=None, lookup=lookup, seconds=0, now=1.0)
    remembered.target(code="jane", link_code=None, lookup=lookup, seconds=0, now=1.0)
    remembered.target(code="jane", link_code="spring", lookup=lookup, seconds=10, now=1.0)
    remembered.target(code="jane", link_code=None, lookup=lookup, seconds=10, now=1.0)
    assert lookup.calls == 4


def test_it_starts_again_when_full():
    remembered, lookup = TrackerMemo(), Lookups(FOUND)
    for n in range(MAX_ENTRIES):
        remembered.target(code=f"p{n}", link_code=None, lookup=lookup, seconds=10, now=1.0)

    remembered.target(code="one-more", link_code=None, lookup=lookup, seconds=10, now=1.0)

    assert len(remembered._entries) == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("buffered")
def test_with_the_buffer_a_remembered_code_costs_no_query(
    client, settings, django_assert_num_queries
):
    settings.TRACKER_MEMO_SECONDS = 10
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    jane = PartnerFactory(code="jane")

    with django_assert_num_queries(1):
        first = client.get("/go/jane/", headers={"user-agent": BROWSER})
    with django_assert_num_queries(0):
        second = client.get("/go/JANE/", headers={"user-agent": BROWSER})

    assert first.status_code == second.status_code == 302
    assert second["Location"].startswith("https://shop.example/?rp_ref=")
    assert memo._entries[("jane", None)][1].partner_id == jane.pk


@pytest.mark.django_db
@pytest.mark.usefixtures("buffered")
def test_a_partner_turned_inactive_is_seen_once_the_memory_is_forgotten(client, settings):
    settings.TRACKER_MEMO_SECONDS = 10
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    jane = PartnerFactory(code="jane")
    client.get("/go/jane/", headers={"user-agent": BROWSER})
    jane.status = PartnerStatus.INACTIVE
    jane.save(update_fields=["status"])

    assert "rp_ref=" in client.get("/go/jane/", headers={"user-agent": BROWSER})["Location"]
    memo.clear()  # what TRACKER_MEMO_SECONDS later looks like
    assert client.get("/go/jane/", headers={"user-agent": BROWSER})["Location"] == (
        "https://shop.example/"
    )
    assert tracker_target(code="jane", link_code=None).partner_id is None
