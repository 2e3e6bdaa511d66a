"""Unusual click volume is flagged for staff review, never blocked (SPEC §9 "Guards")."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from partners.models import Click, ClickFlag
from partners.services.clicks import click_flag_window, click_flags_create, click_flags_review
from partners.services.defaults import defaults_ensure, defaults_update
from partners.tasks import flag_click_volume
from referral_program.celery import app as celery_app
from tests.factories import (
    ClickFactory,
    ClickFlagFactory,
    PartnerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# The run at 14:21 looks at 13:00-14:00.
AT = datetime(2026, 11, 24, 14, 21, 5, tzinfo=UTC)
HOUR = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


def clicks(partner, n, *, start=HOUR, step=timedelta(seconds=30)):
    """n clicks on the partner's links from `start`, `step` apart (in one statement)."""
    Click.objects.bulk_create(
        ClickFactory.build(partner=partner, at=start + k * step) for k in range(n)
    )


def flags() -> list[tuple]:
    return list(
        ClickFlag.objects.order_by("partner__code", "window_start").values_list(
            "partner__code", "window_start", "clicks", "threshold", "reviewed_at"
        )
    )


@pytest.fixture
def limit_five():
    defaults_update(data={"click_flag_per_hour": 5}, acting_user=None)


@pytest.mark.parametrize(
    ("at", "start"),
    [
        pytest.param(AT, HOUR, id="mid-hour"),
        pytest.param(datetime(2026, 11, 24, 14, 0, tzinfo=UTC), HOUR, id="on-the-hour"),
        pytest.param(
            datetime(2026, 11, 24, 0, 59, 59, tzinfo=UTC),
            datetime(2026, 11, 23, 23, 0, tzinfo=UTC),
            id="over-midnight",
        ),
        pytest.param(
            datetime(2026, 11, 24, 15, 21, tzinfo=timezone.get_fixed_timezone(60)),
            HOUR,
            id="another-offset",
        ),
    ],
)
def test_the_window_is_the_last_whole_utc_hour(at, start):
    assert click_flag_window(at) == start


def test_over_the_limit_is_flagged_once_at_the_limit_is_not(limit_five):
    busy, steady = PartnerFactory(code="busy"), PartnerFactory(code="steady")
    clicks(busy, 6)
    clicks(steady, 5)

    first = click_flags_create(at=AT)
    again = click_flags_create(at=AT + timedelta(minutes=10))

    assert (first, again) == (1, 0)
    assert flags() == [("busy", HOUR, 6, 5, None)]
    flag = ClickFlag.objects.get()
    assert flag.window_end == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert flag.is_open


@pytest.mark.parametrize(
    ("starts", "flagged"),
    [
        pytest.param([HOUR] * 6, True, id="all-in-the-hour"),
        pytest.param([HOUR - timedelta(microseconds=1)] + [HOUR] * 5, False, id="one-just-before"),
        pytest.param(
            [HOUR] * 5 + [HOUR + timedelta(hours=1)], False, id="one-at-the-end-belongs-to-next"
        ),
        pytest.param(
            [HOUR + timedelta(minutes=59, seconds=59, microseconds=999_999)] * 6,
            True,
            id="last-microsecond-counts",
        ),
        pytest.param([HOUR - timedelta(hours=1)] * 20, False, id="an-older-hour"),
        pytest.param([AT - timedelta(minutes=5)] * 20, False, id="the-hour-still-running"),
    ],
)
def test_only_clicks_inside_the_hour_count(limit_five, starts, flagged):
    partner = PartnerFactory(code="edge")
    for start in starts:
        clicks(partner, 1, start=start)

    assert click_flags_create(at=AT) == int(flagged)
    assert ClickFlag.objects.exists() is flagged


def test_an_empty_limit_flags_nobody(django_assert_num_queries):
    defaults_update(data={"click_flag_per_hour": None}, acting_user=None)
    clicks(PartnerFactory(), 2000, step=timedelta(seconds=1))

    with django_assert_num_queries(1):
        assert click_flags_create(at=AT) == 0

    assert not ClickFlag.objects.exists()


def test_the_default_limit_is_a_thousand_clicks_an_hour():
    partner = PartnerFactory(code="popular")
    clicks(partner, 1000, step=timedelta(seconds=3))
    assert click_flags_create(at=AT) == 0

    clicks(partner, 1, start=HOUR + timedelta(minutes=59))

    assert click_flags_create(at=AT) == 1
    assert flags() == [("popular", HOUR, 1001, 1000, None)]


def test_each_hour_and_partner_is_flagged_on_its_own(limit_five):
    a, b = PartnerFactory(code="anna"), PartnerFactory(code="bert")
    earlier = HOUR - timedelta(hours=1)
    clicks(a, 7, start=earlier)
    clicks(a, 8)
    clicks(b, 9)

    click_flags_create(at=AT - timedelta(hours=1))
    click_flags_create(at=AT)

    assert flags() == [
        ("anna", earlier, 7, 5, None),
        ("anna", HOUR, 8, 5, None),
        ("bert", HOUR, 9, 5, None),
    ]


def test_a_flag_keeps_the_limit_of_its_time_and_a_later_run_adds_no_second_one(limit_five):
    partner = PartnerFactory(code="busy")
    clicks(partner, 6)
    click_flags_create(at=AT)
    defaults_update(data={"click_flag_per_hour": 3}, acting_user=None)
    clicks(partner, 4, start=HOUR + timedelta(minutes=50))  # late clicks of the same hour

    assert click_flags_create(at=AT + timedelta(minutes=10)) == 0
    assert flags() == [("busy", HOUR, 6, 5, None)]


def test_a_reviewed_hour_is_not_flagged_again(limit_five):
    partner = PartnerFactory(code="busy")
    clicks(partner, 6)
    click_flags_create(at=AT)
    click_flags_review(flags=ClickFlag.objects.all(), actor="maria", at=AT)

    assert click_flags_create(at=AT + timedelta(minutes=10)) == 0
    assert flags() == [("busy", HOUR, 6, 5, AT)]


@pytest.mark.parametrize("n_clicks", [10, 1000], ids=["10-clicks", "1000-clicks"])
def test_flagging_costs_one_query_whatever_the_clicks(django_assert_num_queries, n_clicks):
    defaults_update(data={"click_flag_per_hour": 1}, acting_user=None)
    partners = PartnerFactory.create_batch(5)
    for partner in partners:
        clicks(partner, n_clicks // 5, step=timedelta(seconds=3))

    with django_assert_num_queries(1):
        created = click_flags_create(at=AT)

    assert created == 5
    assert ClickFlag.objects.filter(clicks=n_clicks // 5).count() == 5


def test_the_task_runs_through_celerys_eager_path(limit_five, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: AT)
    clicks(PartnerFactory(code="busy"), 6)
    assert celery_app.conf.task_always_eager  # no broker in the tests: in-process

    first = flag_click_volume.delay()
    again = flag_click_volume.apply()

    assert (first.get(), again.get()) == (1, 0)
    assert flags() == [("busy", HOUR, 6, 5, None)]
    assert ClickFlag.objects.get().created_at == AT


def test_the_task_is_on_the_beat_every_ten_minutes_after_the_drain():
    entry = settings.CELERY_BEAT_SCHEDULE["flag-click-volume"]

    assert entry["task"] == flag_click_volume.name == "partners.tasks.flag_click_volume"
    assert sorted(entry["schedule"].minute) == [1, 11, 21, 31, 41, 51]
    assert "drain-clicks" in settings.CELERY_BEAT_SCHEDULE


def test_a_flagged_partner_is_not_blocked(client, limit_five):
    partner = PartnerFactory(code="busy")
    clicks(partner, 6)
    click_flags_create(at=AT)
    before = Click.objects.filter(partner=partner).count()

    response = client.get("/go/busy/", headers={"user-agent": "Mozilla/5.0 Firefox/150.0"})

    assert response.status_code == 302
    assert "rp_ref" in response.cookies
    assert Click.objects.filter(partner=partner).count() == before + 1


# --- Reviewing -----------------------------------------------------------------------------


def test_review_marks_only_open_flags_and_keeps_earlier_reviews():
    done = ClickFlagFactory(reviewed_at=HOUR, reviewed_by="maria", note="A newsletter.")
    open_ = ClickFlagFactory.create_batch(2)

    count = click_flags_review(
        flags=ClickFlag.objects.all(), actor="tom", at=AT, note="  Checked, real traffic.  "
    )

    assert count == 2
    done.refresh_from_db()
    assert (done.reviewed_at, done.reviewed_by, done.note) == (HOUR, "maria", "A newsletter.")
    assert (
        list(
            ClickFlag.objects.filter(pk__in=[f.pk for f in open_]).values_list(
                "reviewed_at", "reviewed_by", "note"
            )
        )
        == [(AT, "tom", "Checked, real traffic.")] * 2
    )


def test_a_note_over_a_thousand_characters_is_refused_and_nothing_changes():
    ClickFlagFactory()

    with pytest.raises(ValidationError) as error:
        click_flags_review(flags=ClickFlag.objects.all(), actor="tom", at=AT, note="x" * 1001)

    assert error.value.message_dict == {"note": ["Keep the note under 1,000 characters."]}
    assert ClickFlag.objects.filter(reviewed_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    ("clicks_", "threshold"),
    [pytest.param(5, 5, id="at-the-limit"), pytest.param(4, 5, id="under-the-limit")],
)
def test_the_database_refuses_a_flag_not_over_its_limit(clicks_, threshold):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        ClickFlagFactory(clicks=clicks_, threshold=threshold)


# --- The admin ---------------------------------------------------------------------------------


ADMIN_FLAGS = "/admin/partners/clickflag/"


def test_the_admin_lists_flags_read_only_and_marks_them_reviewed(staff_client, staff_user):
    flag = ClickFlagFactory(partner__code="busy")

    listing = staff_client.get(ADMIN_FLAGS)
    detail = staff_client.get(f"{ADMIN_FLAGS}{flag.pk}/change/")
    marked = staff_client.post(
        ADMIN_FLAGS,
        {"action": "mark_reviewed", "_selected_action": [flag.pk], "index": "0"},
        follow=True,
    )

    assert listing.status_code == 200
    assert f"{flag.partner.name} (busy)" in listing.content.decode()
    assert 'name="_save"' not in detail.content.decode()  # read only
    assert staff_client.get(f"{ADMIN_FLAGS}add/").status_code == 403
    assert "1 flag marked reviewed." in marked.content.decode()
    flag.refresh_from_db()
    assert flag.reviewed_by == staff_user.username
    assert flag.reviewed_at is not None


def test_the_admin_action_is_not_offered_without_the_change_permission():
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_clickflag"))
    flag = ClickFlagFactory()
    client = Client()
    client.force_login(viewer)

    listing = client.get(ADMIN_FLAGS)
    refused = client.post(
        ADMIN_FLAGS, {"action": "mark_reviewed", "_selected_action": [flag.pk], "index": "0"}
    )

    assert listing.status_code == 200
    assert "mark_reviewed" not in listing.content.decode()
    assert refused.status_code == 200  # the changelist again: no such action for them
    flag.refresh_from_db()
    assert flag.reviewed_at is None


# --- At the same moment ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_flag_once():
    """The second run waits for the first's uncommitted flag, then inserts nothing: the
    unique (partner, hour) and ON CONFLICT DO NOTHING, not a check before the insert."""
    defaults_ensure()
    defaults_update(data={"click_flag_per_hour": 5}, acting_user=None)
    clicks(PartnerFactory(code="busy"), 6)
    inserted, second_started = threading.Event(), threading.Event()
    results = {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = click_flags_create(at=AT)
                inserted.set()
                second_started.wait(10)
                threading.Event().wait(0.5)  # the second run is now waiting on our row
        finally:
            connections.close_all()

    def second():
        try:
            inserted.wait(10)
            second_started.set()
            results["second"] = click_flags_create(at=AT)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == {"first": 1, "second": 0}
    assert flags() == [("busy", HOUR, 6, 5, None)]
