"""The staff's Click flags page, the partner page's count, and the "Guards" setting on the
defaults page and in the API (SPEC §9 "Guards": unusual click volume is flagged for staff)."""

import html
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils.html import strip_tags

from partners.models import ClickFlag, DefaultsChange
from partners.selectors import defaults_get
from tests.factories import ClickFlagFactory, PartnerFactory, UserFactory
from tests.functional.test_partner_center import partner_with_login

pytestmark = pytest.mark.django_db

FLAGS = "/staff/click-flags/"
DEFAULTS = "/staff/settings/referral-partner-defaults/"
REVIEWED_AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))


def defaults_form_data(client, **changes) -> dict[str, str]:
    """What the browser posts from the defaults page as it stands, with `changes`: checked
    boxes as "on", unchecked ones and empty values left out."""
    form = client.get(DEFAULTS).context["form"]
    values = {name: form[name].value() for name in form.fields} | changes
    data = {}
    for name, value in values.items():
        if value is True:
            data[name] = "on"
        elif value is not False and value not in (None, ""):  # 0 is posted as "0"
            data[name] = str(value)
    return data


def state() -> list[tuple]:
    """Every flag's review: what a refused post must leave alone."""
    return list(
        ClickFlag.objects.order_by("pk").values_list("pk", "reviewed_at", "reviewed_by", "note")
    )


@pytest.fixture
def board():
    """Two open flags (busy at 00:00 and 01:00 on 20 November), one of quiet's reviewed."""
    busy = PartnerFactory(code="busy", name="Busy Bee")
    quiet = PartnerFactory(code="quiet", name="Quiet Quinn")
    return {
        "busy_first": ClickFlagFactory(
            partner=busy, window_start=datetime(2026, 11, 20, 0, tzinfo=UTC), clicks=1234
        ),
        "busy_second": ClickFlagFactory(
            partner=busy, window_start=datetime(2026, 11, 20, 1, tzinfo=UTC), clicks=2001
        ),
        "quiet_done": ClickFlagFactory(
            partner=quiet,
            window_start=datetime(2026, 11, 19, 5, tzinfo=UTC),
            clicks=1100,
            reviewed_at=REVIEWED_AT,
            reviewed_by="maria",
            note="Black Friday newsletter.",
        ),
    }


# --- Who may look, who may mark ----------------------------------------------------------------


def test_anonymous_visitors_go_to_the_login_and_partners_get_403(client, board):
    before = state()
    anonymous = client.get(FLAGS)
    anonymous_post = client.post(FLAGS, {"review": board["busy_first"].pk})
    partner = partner_with_login("partner-pat")
    client.force_login(partner.user)
    as_partner = client.get(FLAGS)
    as_partner_post = client.post(FLAGS, {"review": board["busy_first"].pk})

    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert anonymous_post.status_code == 302
    assert (as_partner.status_code, as_partner_post.status_code) == (403, 403)
    assert state() == before


def test_staff_without_the_change_permission_look_but_cannot_mark(client, board):
    client.force_login(UserFactory(is_staff=True))
    before = state()

    page = client.get(FLAGS)
    refused = client.post(FLAGS, {"review": "ticked", "flags": [board["busy_first"].pk]})

    assert page.status_code == 200
    assert "Busy Bee" in text(page)
    assert 'name="review"' not in page.content.decode()
    assert refused.status_code == 403
    assert state() == before


def test_the_review_form_needs_the_csrf_token(staff_user, board):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    before = state()

    response = client.post(FLAGS, {"review": board["busy_first"].pk})

    assert response.status_code == 403
    assert state() == before


# --- The list ------------------------------------------------------------------------------------


def test_the_open_tab_lists_open_flags_newest_hour_first(staff_client, board):
    response = staff_client.get(FLAGS)
    page = response.content.decode()

    assert [f.pk for f in response.context["object_list"]] == [
        board["busy_second"].pk,
        board["busy_first"].pk,
    ]
    assert "Open (2)" in text(response)
    assert "Reviewed (1)" in text(response)
    assert "2026-11-20 01:00\N{EN DASH}02:00 2001 1000" in text(response)
    assert "2026-11-20 00:00\N{EN DASH}01:00" in text(response)
    assert "more than 1000 times in one hour" in text(response)
    assert 'href="/staff/partners/busy/"' in page
    assert f'name="flags" value="{board["busy_first"].pk}"' in page
    assert f'name="review" value="{board["busy_first"].pk}"' in page
    assert "csrfmiddlewaretoken" in page
    assert f'href="{FLAGS}" aria-current="page">Click flags</a>' in page
    assert "Quiet Quinn" not in text(response)


def test_the_reviewed_tab_shows_who_reviewed_and_their_note(staff_client, board):
    response = staff_client.get(FLAGS, {"show": "reviewed"})

    assert [f.pk for f in response.context["object_list"]] == [board["quiet_done"].pk]
    assert "2026-11-21 09:30 by maria" in text(response)
    assert "Black Friday newsletter." in text(response)
    assert 'name="review"' not in response.content.decode()


def test_one_partners_flags_and_an_unknown_partner(staff_client, board):
    ClickFlagFactory(partner=PartnerFactory(code="other"))

    mine = staff_client.get(FLAGS, {"partner": "BUSY"})
    unknown = staff_client.get(FLAGS, {"partner": "nobody"})

    assert {f.partner.code for f in mine.context["object_list"]} == {"busy"}
    assert "Open (2)" in text(mine) and "Reviewed (0)" in text(mine)
    assert 'action="/staff/click-flags/?show=open&amp;partner=busy"' in mine.content.decode()
    assert unknown.status_code == 404


def test_when_the_check_is_off_the_page_says_so(staff_client, board):
    staff_client.post(DEFAULTS, defaults_form_data(staff_client, click_flag_per_hour=None))

    response = staff_client.get(FLAGS)

    assert "the check is off now" in text(response)
    assert len(response.context["object_list"]) == 2  # the flags raised before stay


def test_the_list_costs_the_same_queries_with_many_flags(
    staff_client, django_assert_max_num_queries
):
    ClickFlagFactory()
    with django_assert_max_num_queries(100) as one:
        staff_client.get(FLAGS)
    ClickFlagFactory.create_batch(49)

    with django_assert_max_num_queries(len(one.captured_queries)):
        response = staff_client.get(FLAGS)

    assert len(response.context["object_list"]) == 50


# --- Marking reviewed -----------------------------------------------------------------------------


def test_staff_mark_one_flag_reviewed_with_a_note(staff_client, staff_user, board):
    response = staff_client.post(
        FLAGS,
        {"review": str(board["busy_first"].pk), "note": "A podcast mention, real visitors."},
        follow=True,
    )

    assert response.redirect_chain == [(f"{FLAGS}?show=open", 302)]
    assert "1 flag marked reviewed." in text(response)
    first = ClickFlag.objects.get(pk=board["busy_first"].pk)
    assert (first.reviewed_by, first.note) == (
        staff_user.username,
        "A podcast mention, real visitors.",
    )
    assert first.reviewed_at is not None
    assert ClickFlag.objects.get(pk=board["busy_second"].pk).is_open
    assert [f.pk for f in response.context["object_list"]] == [board["busy_second"].pk]


def test_staff_mark_the_ticked_flags_reviewed(staff_client, staff_user, board):
    ticked = [board["busy_first"].pk, board["busy_second"].pk]

    response = staff_client.post(
        f"{FLAGS}?partner=busy",
        {"review": "ticked", "flags": ticked, "note": "Bot traffic, told the partner."},
        follow=True,
    )

    assert response.redirect_chain == [(f"{FLAGS}?show=open&partner=busy", 302)]
    assert "2 flags marked reviewed." in text(response)
    assert set(ClickFlag.objects.filter(pk__in=ticked).values_list("reviewed_by", "note")) == {
        (staff_user.username, "Bot traffic, told the partner.")
    }
    done = ClickFlag.objects.get(pk=board["quiet_done"].pk)
    assert (done.reviewed_at, done.reviewed_by) == (REVIEWED_AT, "maria")


def test_marking_a_flag_reviewed_before_changes_nothing(staff_client, board):
    before = state()

    response = staff_client.post(
        FLAGS, {"review": "ticked", "flags": [board["quiet_done"].pk]}, follow=True
    )

    assert "Nothing to mark: those flags were reviewed before." in text(response)
    assert state() == before


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({"review": "ticked"}, "Tick at least one flag.", id="nothing-ticked"),
        pytest.param(
            {"review": "ticked", "flags": ["999999"]}, "Select a valid choice", id="unknown-id"
        ),
        pytest.param({"review": "999999"}, "That flag does not exist.", id="unknown-row"),
        pytest.param(
            {"review": "delete-1"}, "Choose which flags to mark reviewed.", id="unknown-button"
        ),
        pytest.param({}, "Choose which flags to mark reviewed.", id="no-button"),
        pytest.param(
            {"review": "ticked", "flags": ["FIRST"], "note": "x" * 1001},
            "at most 1000 characters",
            id="long-note",
        ),
    ],
)
def test_a_bad_review_shows_the_error_and_changes_nothing(staff_client, board, data, error):
    data = {
        k: [str(board["busy_first"].pk) if v == "FIRST" else v for v in value]
        if isinstance(value, list)
        else value
        for k, value in data.items()
    }
    before = state()

    response = staff_client.post(FLAGS, data)

    assert response.status_code == 400
    assert error in text(response)
    assert state() == before


# --- The partner page ----------------------------------------------------------------------------


def test_the_partner_page_shows_the_open_flag_count(staff_client, board):
    busy = staff_client.get("/staff/partners/busy/")
    quiet = staff_client.get("/staff/partners/quiet/")

    assert busy.context["open_click_flags"] == 2
    assert "2 open unusual click volume: review" in text(busy)
    assert 'href="/staff/click-flags/?partner=busy"' in busy.content.decode()
    assert quiet.context["open_click_flags"] == 0
    assert "None open · reviewed ones" in text(quiet)
    assert 'href="/staff/click-flags/?show=reviewed&amp;partner=quiet"' in quiet.content.decode()


# --- The setting: defaults page, history and API ----------------------------------------------


@pytest.mark.parametrize(
    ("posted", "stored"),
    [
        pytest.param("250", 250, id="a-number"),
        pytest.param("", None, id="empty-turns-it-off"),
    ],
)
def test_the_defaults_page_saves_the_limit(staff_client, posted, stored):
    data = defaults_form_data(staff_client)

    response = staff_client.post(DEFAULTS, {**data, "click_flag_per_hour": posted})

    assert response.status_code == 302
    assert defaults_get().click_flag_per_hour == stored
    change = DefaultsChange.objects.get()
    assert change.changes == {"click_flag_per_hour": {"old": 1000, "new": stored}}
    history = text(staff_client.get(f"{DEFAULTS}history/"))
    assert "Flag a partner for review above (clicks per hour)" in history


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        pytest.param("0", "Ensure this value is greater than or equal to 1.", id="zero"),
        pytest.param("-5", "Ensure this value is greater than or equal to", id="negative"),
        pytest.param("lots", "Enter a whole number.", id="not-a-number"),
    ],
)
def test_the_defaults_page_refuses_a_bad_limit_and_writes_nothing(staff_client, posted, message):
    data = defaults_form_data(staff_client)

    response = staff_client.post(DEFAULTS, {**data, "click_flag_per_hour": posted})

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["click_flag_per_hour"]
    assert message in response.context["form"].errors["click_flag_per_hour"][0]
    assert defaults_get().click_flag_per_hour == 1000
    assert not DefaultsChange.objects.exists()


def test_the_api_reads_and_writes_the_limit(api):
    read = api.get("/api/v1/defaults/")
    set_ = api.patch("/api/v1/defaults/", {"click_flag_per_hour": 250}, format="json")
    off = api.patch("/api/v1/defaults/", {"click_flag_per_hour": None}, format="json")

    assert read.json()["click_flag_per_hour"] == 1000
    assert (set_.status_code, set_.json()["click_flag_per_hour"]) == (200, 250)
    assert (off.status_code, off.json()["click_flag_per_hour"]) == (200, None)
    assert defaults_get().click_flag_per_hour is None


@pytest.mark.parametrize(
    "value",
    [pytest.param(0, id="zero"), pytest.param(-1, id="negative"), pytest.param("x", id="text")],
)
def test_the_api_refuses_a_bad_limit_and_writes_nothing(api, value):
    response = api.patch("/api/v1/defaults/", {"click_flag_per_hour": value}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["click_flag_per_hour"]
    assert defaults_get().click_flag_per_hour == 1000
    assert not DefaultsChange.objects.exists()


def test_a_put_without_the_limit_keeps_it(api):
    api.patch("/api/v1/defaults/", {"click_flag_per_hour": 250}, format="json")
    body = {
        name: value
        for name, value in api.get("/api/v1/defaults/").json().items()
        if name != "click_flag_per_hour"
    }

    response = api.put("/api/v1/defaults/", {**body, "levels": 3}, format="json")

    assert response.status_code == 200
    assert defaults_get().click_flag_per_hour == 250
    assert defaults_get().levels == 3


def test_staff_need_the_change_permission_for_the_page_action_too(client, board):
    reviewer = UserFactory(is_staff=True)
    reviewer.user_permissions.add(Permission.objects.get(codename="change_clickflag"))
    client.force_login(reviewer)

    response = client.post(FLAGS, {"review": str(board["busy_first"].pk)})

    assert response.status_code == 302
    assert ClickFlag.objects.get(pk=board["busy_first"].pk).reviewed_by == reviewer.username
