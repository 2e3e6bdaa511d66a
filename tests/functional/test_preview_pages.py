"""*Preview the effect* on the defaults and program pages (SPEC §13, issue 19 item 3), over
HTTP with the in-process fallback (no broker: the run is replayed as the request commits).

The shop: jane (sale partner of every order) recruited by boss; the program pays 10.00 a
sale at level 1 and 2.50 at level 2; two orders in November 2026. Saved: 2 levels.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from commissions.models import SimulationRun
from commissions.services.simulations import preview_create, preview_run
from partners.forms import program_edit_form
from partners.models import DefaultsChange, Program, ProgramVersion
from partners.selectors import defaults_get
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, StaffFactory, UserFactory
from tests.functional.test_defaults_page import form_data
from tests.functional.test_partner_center import partner_with_login, sell
from tests.integration.test_replay import order, token
from tests.tables import table_snapshot

# Transactional: the run is queued on commit, and without a broker it runs right then, in
# the request, as in production (SPEC §8), so the page answers with the result.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/staff/settings/referral-partner-defaults/"
PREVIEW_URL = "/staff/settings/referral-partner-defaults/preview/"
RANGE = {"preview_start": "2026-11-01", "preview_end": "2026-11-30"}
RUN_TABLE = SimulationRun._meta.db_table


@pytest.fixture
def shop(api):
    """The shop of the module's docstring; its program."""
    defaults_update(data={"levels": 2}, acting_user=None)
    program = ProgramFactory(
        priority=1,
        rates={1: {"sale_amount": Decimal("10.00")}, 2: {"sale_amount": Decimal("2.50")}},
    )
    boss = PartnerFactory(code="boss", name="The Boss")
    PartnerFactory(code="jane", name="Jane Roe", parent=boss)
    sell(api, "order-1", "2026-11-10T10:00:00Z", "80.00", "jane")
    sell(api, "order-2", "2026-11-20T10:00:00Z", "40.00", "jane", email="bo@example.com")
    return program


def outside_the_runs() -> dict:
    """Every table but the previews' runs (the one table a preview writes)."""
    return {table: value for table, value in table_snapshot().items() if table != RUN_TABLE}


def stored_run(**fields) -> SimulationRun:
    """A run of a defaults preview of November 2026, made now, as `fields` say."""
    return SimulationRun.objects.create(
        **{
            "kind": "defaults",
            "created_at": timezone.now(),
            "start": datetime(2026, 11, 1, tzinfo=UTC),
            "end": datetime(2026, 12, 1, tzinfo=UTC),
            **fields,
        }
    )


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def program_post(program: Program, **changes: str) -> dict[str, str]:
    """What the program page posts for `program` as it is (its form's values), with
    `changes`: ticked boxes as "on", others left out."""
    data = {}
    for field in program_edit_form(program):
        value = field.value()
        if value is True:
            data[field.html_name] = "on"
        elif value is not False and value is not None:
            data[field.html_name] = str(value)
    return {**data, **changes}


def test_the_pages_offer_a_preview_with_the_last_30_days(staff_client, shop):
    today = timezone.now().date()
    for url in (URL, f"/staff/programs/{shop.pk}/edit/"):
        body = text(staff_client.get(url))
        assert "Preview the effect" in body
        assert f'name="preview_start" value="{today - timedelta(days=29):%Y-%m-%d}"' in body
        assert f'name="preview_end" value="{today:%Y-%m-%d}"' in body
    # The program form still saves to its own address after a preview moved the page.
    assert f'action="/staff/programs/{shop.pk}/edit/"' in body


def test_a_defaults_preview_shows_the_table_and_saves_nothing(staff_client, shop):
    before, defaults_before = outside_the_runs(), defaults_get()

    response = staff_client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})

    assert response.status_code == 200
    run = SimulationRun.objects.get()
    assert run.status == "done", run.error
    assert (run.kind, run.start, run.end) == (
        "defaults",
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    answer = run.answer
    assert (answer["orders"], answer["orders_changing_partner"]) == (2, 0)
    assert (answer["total_now"], answer["total_proposed"], answer["change"]) == (
        "25.00",
        "20.00",
        "-5.00",
    )
    assert answer["partners"] == [
        {
            "partner": "boss",
            "name": "The Boss",
            "currency": "USD",
            "now": "5.00",
            "proposed": "0.00",
            "change": "-5.00",
        },
        {
            "partner": "jane",
            "name": "Jane Roe",
            "currency": "USD",
            "now": "20.00",
            "proposed": "20.00",
            "change": "0.00",
        },
    ]
    body = text(response)
    assert "Commissions per partner" in body
    assert '<td class="num change is-down" data-value="-5.00">\u22125.00</td>' in body
    # The form shows the values as typed (1 level), still unsaved.
    assert '<option value="1" selected>' in body
    assert outside_the_runs() == before
    assert defaults_get().levels == defaults_before.levels == 2
    assert not DefaultsChange.objects.filter(changes__has_key="levels", user__isnull=False)


def test_a_program_preview_replays_its_unsaved_rates(staff_client, shop):
    before = outside_the_runs()
    versions = ProgramVersion.objects.count()

    response = staff_client.post(
        f"/staff/programs/{shop.pk}/preview/",
        {**program_post(shop, rate_1_sale_amount="20.00"), **RANGE},
    )

    assert response.status_code == 200
    run = SimulationRun.objects.get()
    assert (run.kind, run.program_id, run.status) == ("program", shop.pk, "done")
    partners = {row["partner"]: row for row in run.answer["partners"]}
    assert (partners["jane"]["now"], partners["jane"]["proposed"]) == ("20.00", "40.00")
    assert (partners["boss"]["now"], partners["boss"]["proposed"]) == ("5.00", "5.00")
    assert run.answer["change"] == "20.00"
    assert "Orders that change" in text(response)
    assert outside_the_runs() == before
    assert ProgramVersion.objects.count() == versions
    shop.refresh_from_db()
    assert shop.rates.get(level=1).sale_amount == Decimal("10.00")


def test_an_order_that_changes_hands_shows_both_traces(staff_client, shop, api):
    """ben's link was clicked last, anna's first: the order is ben's; with "first" it is
    anna's, and the page says why on each side."""
    anna, ben = PartnerFactory(code="anna"), PartnerFactory(code="ben")
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    clicks = token((anna, at - timedelta(days=3)), (ben, at - timedelta(days=1)))
    body = {**order(3, at, "cy@example.com", clicks), "event_id": "order-3"}
    assert api.post("/api/v1/events/orders/", body, format="json").status_code == 201

    response = staff_client.post(PREVIEW_URL, {**form_data(partner_selection="first"), **RANGE})

    answer = SimulationRun.objects.get().answer
    assert answer["orders_changing_partner"] == 1
    assert {(p["partner"], p["now"], p["proposed"]) for p in answer["partners"]} >= {
        ("ben", "10.00", "0.00"),
        ("anna", "0.00", "10.00"),
    }
    page = text(response)
    assert re.search(
        r"order-3</a>.*?Paid.*?<span class=\"mono\">ben</span>\. <span class=\"why\">Credited "
        r"because they were the last partner whose link the contact clicked, 1 day before the "
        r"order \(tracking cookie\)\.</span>.*?With these values.*?<span class=\"mono\">anna"
        r"</span>\. <span class=\"why\">Credited because they were the first partner whose "
        r"link the contact clicked, 3 days before the order \(tracking cookie\)\.</span>",
        page,
    )


def test_settings_saved_inside_the_range_are_named(staff_client, shop):
    with time_machine.travel(datetime(2026, 11, 15, 9, tzinfo=UTC), tick=False):
        defaults_update(data={"hold_days": 14}, acting_user=None)

    response = staff_client.post(PREVIEW_URL, {**form_data(levels=1, hold_days=14), **RANGE})

    assert (
        SimulationRun.objects.get()
        .answer["settings_changed"][0]["at"]
        .startswith("2026-11-15T09:00")
    )
    assert re.search(
        r'id="preview-settings-changed">.*?<li>2026-11-15 09:00 UTC, the Referral Partner '
        r"Defaults: [^<]*hold[^<]*0 → 14[^<]*</li>",
        text(response),
    ), text(response)[text(response).find("preview-settings") :][:600]


@pytest.mark.parametrize(
    ("posted", "field", "message"),
    [
        ({**form_data(levels=7), **RANGE}, "levels", "Select a valid choice"),
        (
            {**form_data(), "preview_start": "2026-13-01", "preview_end": "2026-11-30"},
            "preview_start",
            "Enter a valid date (YYYY-MM-DD).",
        ),
        (
            {**form_data(), "preview_start": "2026-11-30", "preview_end": "2026-11-01"},
            "preview_end",
            "The end must not be before the start.",
        ),
        ({**form_data(), "preview_start": "2026-11-01"}, "preview_end", "This field is required."),
    ],
    ids=["bad-level", "bad-start", "end-before-start", "no-end"],
)
def test_bad_input_names_the_field_and_writes_nothing(staff_client, shop, posted, field, message):
    before = table_snapshot()

    response = staff_client.post(PREVIEW_URL, posted)

    assert response.status_code == 200
    assert re.search(
        rf'id="field-{field}".*?{re.escape(message)}', response.content.decode(), re.S
    ), f"no error under {field}"
    assert table_snapshot() == before


def test_a_bad_program_rate_is_refused_naming_the_field(staff_client, shop):
    before = table_snapshot()
    response = staff_client.post(
        f"/staff/programs/{shop.pk}/preview/",
        {**program_post(shop, rate_1_sale_percent="120"), **RANGE},
    )
    assert response.status_code == 200
    body = text(response)
    assert re.search(r'<input[^>]*name="rate_1_sale_percent"[^>]*aria-invalid="true"', body)
    assert "Level 1 sale percent: Ensure this value is less than or equal to 100" in body
    assert table_snapshot() == before


def test_a_value_the_save_would_refuse_fails_the_run_naming_the_field(staff_client, shop):
    """The form takes any partner's code, the save only an active one: the replay's own
    save refuses it, and the page names the field (on the form and in the preview)."""
    PartnerFactory(code="gone-away", status="inactive")
    before = outside_the_runs()

    response = staff_client.post(
        PREVIEW_URL,
        {**form_data(signup_parent="fixed", signup_parent_partner="gone-away"), **RANGE},
    )

    run = SimulationRun.objects.get()
    assert run.status == "failed"
    message = "gone-away is not active: only active partners recruit."
    assert run.error == {"defaults.signup_parent_partner": [message]}
    body = text(response)
    assert f"Chosen parent (partner code): {message}</a>" in body  # the error summary
    assert f"<li>Chosen parent (partner code): {message}</li>" in body  # the preview
    assert outside_the_runs() == before


def test_the_engine_refusing_the_proposal_fails_the_run_naming_the_field(shop, monkeypatch):
    """A proposal the replay refuses (its ValidationError) ends the run as failed, with the
    field's label and message for the page; nothing else is written."""
    from django.core.exceptions import ValidationError

    from commissions.services import simulations

    def refuse(**kwargs):
        raise ValidationError({"levels": "Three levels need a parent rule."})

    monkeypatch.setattr(simulations, "simulation_run", refuse)
    before = outside_the_runs()
    run = preview_create(
        kind="defaults",
        program=None,
        form_data={k: [v] for k, v in form_data(levels=3).items()},
        start=datetime(2026, 11, 1, tzinfo=UTC).date(),
        end=datetime(2026, 11, 30, tzinfo=UTC).date(),
        requested_by=None,
    )
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == {"levels": ["Three levels need a parent rule."]}
    assert outside_the_runs() == before
    client = Client()
    client.force_login(StaffFactory())
    html = client.get(f"/staff/simulations/{run.pk}/status/").json()["html"]
    words = "Referral partner # of levels: Three levels need a parent rule."
    assert words in re.sub(r"\s+", " ", html)


def test_a_run_is_started_once(shop):
    """The task is safe to run twice: the second run finds the run finished."""
    run = preview_create(
        kind="program",
        program=shop,
        form_data={k: [v] for k, v in program_post(shop).items()},
        start=datetime(2026, 11, 1, tzinfo=UTC).date(),
        end=datetime(2026, 11, 30, tzinfo=UTC).date(),
        requested_by=None,
    )
    run.refresh_from_db()
    assert run.status == "done"
    assert preview_run(run_id=run.pk) is None
    assert SimulationRun.objects.get().answer == run.answer


def test_the_status_answers_json_and_the_result_once_finished(staff_client, shop):
    queued = stored_run(done=40, total=100, status="running")
    response = staff_client.get(f"/staff/simulations/{queued.pk}/status/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {"status": "running", "done": 40, "total": 100}

    staff_client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})
    done = SimulationRun.objects.get(status="done")
    answer = staff_client.get(f"/staff/simulations/{done.pk}/status/").json()
    assert answer["status"] == "done"
    assert 'id="preview-partners"' in answer["html"]
    assert staff_client.get(f"/staff/simulations/{done.pk}/").status_code == 200


def test_the_table_downloads_as_csv(staff_client, shop):
    staff_client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})
    run = SimulationRun.objects.get()

    response = staff_client.get(f"/staff/simulations/{run.pk}/csv/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "partner,name,currency,now,proposed,change",
        "boss,The Boss,USD,5.00,0.00,-5.00",
        "jane,Jane Roe,USD,20.00,20.00,0.00",
    ]


def test_runs_older_than_a_day_go_when_a_new_one_is_made(staff_client, shop):
    old = stored_run(created_at=timezone.now() - timedelta(days=1, minutes=1))
    recent = stored_run(created_at=timezone.now() - timedelta(hours=23))
    staff_client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})
    runs = set(SimulationRun.objects.values_list("pk", flat=True))
    assert old.pk not in runs
    assert recent.pk in runs
    assert len(runs) == 2


def test_saving_ignores_the_preview_range(staff_client, shop):
    response = staff_client.post(URL, {**form_data(levels=1), **RANGE})
    assert response.status_code == 302
    assert defaults_get().levels == 1
    assert not SimulationRun.objects.exists()


def test_previewing_needs_what_saving_needs(client, shop):
    """Staff who may only look at the defaults or programs get 403; a partner gets 403; an
    anonymous visitor is sent to the login; nothing is written."""
    looker = UserFactory(is_staff=True)
    looker.user_permissions.add(Permission.objects.get(codename="view_program"))
    partner = partner_with_login("alice")
    clients = []
    for user in (looker, partner.user):
        clients.append(Client())
        clients[-1].force_login(user)
    before = table_snapshot()
    for url in (PREVIEW_URL, f"/staff/programs/{shop.pk}/preview/"):
        response = client.post(url, {**form_data(levels=1), **RANGE})
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
        for logged_in in clients:
            assert logged_in.post(url, {**form_data(levels=1), **RANGE}).status_code == 403
    assert table_snapshot() == before


def test_a_run_is_seen_only_by_staff(client, shop):
    run = stored_run()
    for suffix in ("", "status/", "csv/"):
        url = f"/staff/simulations/{run.pk}/{suffix}"
        assert Client().get(url)["Location"].startswith("/accounts/login/?next=")
        client.force_login(partner_with_login(f"p{len(suffix)}xx").user)
        assert client.get(url).status_code == 403


def test_the_preview_post_needs_the_csrf_token(shop):
    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffFactory())
    before = table_snapshot()
    response = client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})
    assert response.status_code == 403
    assert table_snapshot() == before


def test_erasing_a_partner_deletes_the_previews(staff_client, shop):
    """A preview names partners by code and name: erasing one deletes them all."""
    from partners.models import Partner
    from partners.services.privacy import partner_erase

    staff_client.post(PREVIEW_URL, {**form_data(levels=1), **RANGE})
    assert "Jane Roe" in str(SimulationRun.objects.get().answer)

    partner_erase(partner=Partner.objects.get(code="jane"), acting_user=None)

    assert not SimulationRun.objects.exists()
