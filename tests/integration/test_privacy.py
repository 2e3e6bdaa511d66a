"""Data protection (issue 7, part 5; docs/privacy.md): clicks' raw IP addresses are erased
after the retention period; staff export and erase a partner's personal data, and an
erased partner's commissions stay in the ledger, under the anonymised partner."""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from commissions.models import Commission, Notification, Payment
from commissions.payouts import payout_batch_create
from partners.models import Click, Partner, PartnerSignup, PartnerStatus, SignupEmail
from partners.services.clicks import clicks_erase_old_ips
from partners.services.defaults import defaults_update
from partners.services.partners import partner_create
from partners.services.privacy import partner_erase, partner_export
from partners.tasks import erase_old_click_ips
from referral_program.celery import app as celery_app
from tests.factories import PartnerFactory, ProgramFactory, UserFactory
from tests.functional.test_partner_center import logged_in, partner_with_login, sell

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
D = Decimal


def click(partner: Partner, at: datetime, ip: str | None = "203.0.113.5") -> Click:
    return Click.objects.create(
        id=uuid.uuid4(),
        partner=partner,
        ip=ip,
        user_agent="Mozilla/5.0",
        referrer="https://blog.example/",
        ad_code="spring",
        at=at,
    )


# --- Click IP addresses -----------------------------------------------------------------------


def test_ip_addresses_older_than_the_retention_are_erased_and_nothing_else():
    alice = PartnerFactory(code="alice")
    kept = [
        click(alice, NOW - timedelta(days=89, hours=23)),
        click(alice, NOW - timedelta(days=90)),  # exactly 90 days: kept
    ]
    erased = [
        click(alice, NOW - timedelta(days=90, seconds=1)),
        click(alice, NOW - timedelta(days=400)),
    ]
    click(alice, NOW - timedelta(days=500), ip=None)
    before = {c["id"]: c for c in Click.objects.values()}

    count = clicks_erase_old_ips(at=NOW)

    assert count == 2
    after = {c["id"]: c for c in Click.objects.values()}
    assert {pk for pk, c in after.items() if c["ip"]} == {c.pk for c in kept}
    for row in erased:
        assert after[row.pk] == {**before[row.pk], "ip": None}
    assert clicks_erase_old_ips(at=NOW) == 0


def test_the_erasure_goes_in_batches_until_done():
    alice = PartnerFactory(code="alice")
    for n in range(7):
        click(alice, NOW - timedelta(days=100 + n), ip=f"198.51.100.{n}")

    assert clicks_erase_old_ips(at=NOW, batch_size=2) == 7
    assert not Click.objects.filter(ip__isnull=False).exists()


def test_the_retention_is_a_setting(settings):
    settings.CLICK_IP_RETENTION_DAYS = 120
    alice = PartnerFactory(code="alice")
    click(alice, NOW - timedelta(days=100))
    click(alice, NOW - timedelta(days=121))

    assert clicks_erase_old_ips(at=NOW) == 1
    assert Click.objects.filter(ip__isnull=False).get().at == NOW - timedelta(days=100)


def test_the_daily_task_erases_with_the_current_time():
    alice = PartnerFactory(code="alice")
    click(alice, timezone.now() - timedelta(days=91))
    click(alice, timezone.now() - timedelta(days=1))

    assert erase_old_click_ips.apply().get() == 1
    assert Click.objects.filter(ip__isnull=False).count() == 1


def test_beat_runs_the_task_every_day():
    entry = django_settings.CELERY_BEAT_SCHEDULE["erase-old-click-ips"]

    assert entry["task"] == "partners.tasks.erase_old_click_ips"
    assert entry["task"] in celery_app.tasks
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {17})


@pytest.mark.parametrize(
    ("retention", "window", "refused"),
    [
        pytest.param("89", "90", True, id="shorter-than-the-ip-window"),
        pytest.param("90", "90", False, id="the-default"),
        pytest.param("365", "90", False, id="longer"),
    ],
)
def test_the_retention_may_not_be_shorter_than_the_ip_attribution_window(
    retention, window, refused
):
    env = {
        **os.environ,
        "CLICK_IP_RETENTION_DAYS": retention,
        "IP_ATTRIBUTION_MAX_DAYS": window,
        "DJANGO_SETTINGS_MODULE": "referral_program.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (result.returncode != 0) is refused
    if refused:
        assert (
            "CLICK_IP_RETENTION_DAYS (89) must be at least IP_ATTRIBUTION_MAX_DAYS (90)"
            in result.stderr
        )


def test_attribution_by_ip_address_still_finds_clicks_inside_the_window(api):
    defaults_update(data={"use_ip_address": True}, acting_user=None)
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    alice = PartnerFactory(code="alice")
    bobby = PartnerFactory(code="bobby")
    click(alice, timezone.now() - timedelta(days=30), ip="203.0.113.7")
    click(bobby, timezone.now() - timedelta(days=95), ip="203.0.113.8")
    erase_old_click_ips.apply()

    recent = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": "o-1",
            "ip": "203.0.113.7",
            "contact": {"email": "ann@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": "20.00"}],
        },
        format="json",
    ).json()

    assert (recent["sale_partner"], recent["attribution"]["source"]) == ("alice", "ip")


# --- A partner's data -------------------------------------------------------------------------


@pytest.fixture
def alice(api):
    """alice (login, sign-up, recruited by paula, recruited carl): 3 clicks, two paid sales.
    bobby: a click and a sale of his own."""
    ProgramFactory(name="Standard", priority=1, rates={1: {"sale_amount": D("10.00")}})
    paula = PartnerFactory(code="paula", name="Paula Parent")
    alice = partner_with_login(
        "alice", name="Alice Able", email="alice@partners.example", parent=paula
    )
    PartnerFactory(code="carl", name="Carl Child", parent=alice)
    PartnerSignup.objects.create(
        partner=alice,
        website="https://alice.blog.example/",
        promotion="My hair blog.",
        ip="198.51.100.23",
        user_agent="Firefox",
        created_at=NOW - timedelta(days=30),
        decision_note="Known blogger.",
    )
    SignupEmail.objects.create(partner=alice, kind="approved", note="Welcome!", created_at=NOW)
    bobby = PartnerFactory(code="bobby", name="Bob Baker")
    for days in (3, 2, 1):
        click(alice, NOW - timedelta(days=days), ip="203.0.113.77")
    click(bobby, NOW - timedelta(days=1), ip="203.0.113.88")
    sell(api, "o-1", "2026-11-18T10:00:00Z", "70.00", "alice", email="ann@example.com")
    sell(api, "o-2", "2026-11-19T10:00:00Z", "70.00", "alice", email="ann@example.com")
    sell(api, "o-3", "2026-11-19T11:00:00Z", "70.00", "bobby", email="ben@example.com")
    payout_batch_create(
        start=date(2026, 11, 1), end=date(2026, 11, 30), method="earned_in_range", at=NOW
    )
    alice.refresh_from_db()
    return alice


def ledger_rows() -> list[dict]:
    return list(Commission.objects.order_by("pk").values()) + list(
        Payment.objects.order_by("pk").values()
    )


def test_the_export_holds_the_partners_data_and_nobody_elses(alice, staff_user):
    data = partner_export(partner=alice, acting_user=staff_user, at=NOW)

    lines = Commission.objects.filter(partner=alice).order_by("pk")
    payment = Payment.objects.get(partner=alice)
    assert data["format"] == "referral-program partner export 1"
    assert data["exported_at"] == "2026-11-20T12:00:00+00:00"
    assert data["partner"] == {
        "code": "alice",
        "name": "Alice Able",
        "email": "alice@partners.example",
        "status": "active",
        "parent": "paula",
        "program": None,
        "cookie_days": None,
        "notify_lead": True,
        "notify_sale": True,
        "created_at": alice.created_at.isoformat(),
        "link": "http://127.0.0.1:8000/go/alice/",
    }
    assert data["login"] == {
        "username": "alice",
        "email": "alice@partners.example",
        "date_joined": alice.user.date_joined.isoformat(),
        "last_login": None,
    }
    assert data["signup"] == {
        "website": "https://alice.blog.example/",
        "promotion": "My hair blog.",
        "ip": "198.51.100.23",
        "user_agent": "Firefox",
        "created_at": "2026-10-21T12:00:00+00:00",
        "email_confirmed_at": None,
        "decided_at": None,
        "decision_note": "Known blogger.",
    }
    assert data["clicks"] == {
        "count": 3,
        "first_at": "2026-11-17T12:00:00+00:00",
        "last_at": "2026-11-19T12:00:00+00:00",
    }
    assert data["commissions"] == [
        {
            "id": line.pk,
            "order_id": order_id,
            "level": 1,
            "kind": "sale",
            "entry": "commission",
            "amount": "10.00",
            "currency": "USD",
            "occurred_at": at,
            "paid": True,
        }
        for line, order_id, at in zip(
            lines,
            ["o-1", "o-2"],
            ["2026-11-18T10:00:00+00:00", "2026-11-19T10:00:00+00:00"],
            strict=True,
        )
    ]
    assert data["payments"] == [
        {
            "batch": payment.batch_id,
            "amount": "20.00",
            "currency": "USD",
            "paid_at": "2026-11-20T12:00:00+00:00",
        }
    ]
    assert [(n["kind"], n["status"]) for n in data["notifications"]] == [
        (n.kind, n.status) for n in Notification.objects.filter(partner=alice).order_by("pk")
    ]
    text = json.dumps(data)
    for other in ("bobby", "Bob Baker", "carl", "ann@example.com", "203.0.113.", "o-3"):
        assert other not in text, other


def test_the_export_costs_the_same_queries_however_long_the_ledger(
    api, alice, staff_user, django_assert_max_num_queries
):
    for n in range(30):
        sell(api, f"more-{n}", "2026-11-19T12:00:00Z", "10.00", "alice", email=f"c{n}@ex.com")

    with django_assert_max_num_queries(10):
        data = partner_export(partner=alice, acting_user=staff_user, at=NOW)

    assert len(data["commissions"]) == 32


def test_the_export_is_recorded_in_the_partners_history(alice, staff_user):
    partner_export(partner=alice, acting_user=staff_user, at=NOW)

    entry = LogEntry.objects.get(object_id=str(alice.pk))
    assert (entry.user, entry.get_change_message()) == (staff_user, "Personal data exported.")


def test_erasing_blanks_the_person_and_keeps_the_ledger(alice, staff_user, api):
    session = logged_in(alice)
    assert session.get("/partner/").status_code == 200
    user_pk = alice.user.pk
    AccessAttempt.objects.create(
        username="alice",
        ip_address="203.0.113.1",
        user_agent="x",
        failures_since_start=2,
        attempt_time=timezone.now(),
        get_data="",
        post_data="",
        http_accept="",
        path_info="/",
    )
    ledger = ledger_rows()
    balance = api.get("/api/v1/partners/alice/ledger/").json()

    erased = partner_erase(partner=alice, acting_user=staff_user)

    assert Partner.objects.filter(pk=alice.pk).values(
        "code", "name", "email", "status", "notify_lead", "notify_sale", "user", "parent__code"
    ).get() == {
        "code": f"erased-{alice.pk}",
        "name": "Erased partner",
        "email": "",
        "status": PartnerStatus.INACTIVE,
        "notify_lead": False,
        "notify_sale": False,
        "user": None,
        "parent__code": "paula",
    }
    assert erased.code == f"erased-{alice.pk}"
    assert not get_user_model().objects.filter(pk=user_pk).exists()
    assert session.get("/partner/").status_code == 302  # the session ended with the login
    assert PartnerSignup.objects.filter(partner=alice).values(
        "website", "promotion", "ip", "user_agent", "decision_note"
    ).get() == {"website": "", "promotion": "", "ip": None, "user_agent": "", "decision_note": ""}
    assert SignupEmail.objects.get(partner=alice).note == ""
    assert not AccessAttempt.objects.exists()
    assert ledger_rows() == ledger
    after = api.get(f"/api/v1/partners/erased-{alice.pk}/ledger/").json()
    assert {**after, "partner": "alice"} == balance
    assert Partner.objects.get(code="carl").parent_id == alice.pk
    entry = LogEntry.objects.get(object_id=str(alice.pk))
    assert entry.get_change_message() == "Personal data erased."


# Where an erased partner's old code, name or email may still be found, as docs/privacy.md
# lists them under "Kept" (table.column): accounting records of what was sent and why.
KEPT_AFTER_ERASURE = {
    "commissions_event.payload",  # the events as the shop sent them
    "commissions_event.result",  # each event's first answer, given again to its repeats
    "commissions_webhookdelivery.body",  # the webhooks as they were sent
    "partners_defaultschange.changes",  # the defaults' history, when they chose the partner
}


def places_naming(*needles: str) -> set[str]:
    """Every text or JSON column, in every table, that holds one of `needles`."""
    from django.apps import apps
    from django.db import models
    from django.db.models.functions import Cast

    found = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField | models.JSONField):
                continue
            text = Cast(field.name, models.TextField())
            rows = model.objects.annotate(_text=text)
            for needle in needles:
                if rows.filter(_text__icontains=needle).exists():
                    found.add(f"{model._meta.db_table}.{field.column}")
    return found


def test_after_erasing_the_partner_is_found_only_where_docs_privacy_says(alice, staff_user):
    """Issue 21, finding 9: every place a partner's code or email remains is listed."""
    from commissions.models import Order, WebhookDelivery, WebhookEndpoint
    from commissions.webhooks import delivery_body

    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/", events=["x"])
    delivery = WebhookDelivery.objects.create(
        uid=uuid.uuid4(),
        endpoint=endpoint,
        event_type="commission.created",
        subject_id=Order.objects.get(order_id="o-1").pk,
        created_at=NOW,
    )
    delivery.body = delivery_body(delivery)
    delivery.save()
    defaults_update(
        data={"signup_parent": "fixed", "signup_parent_partner": alice}, acting_user=None
    )
    partner_export(partner=alice, acting_user=staff_user, at=NOW)  # an admin history entry
    defaults_update(data={"signup_parent": "none", "signup_parent_partner": None}, acting_user=None)
    assert places_naming("Alice Able", "alice@partners.example")  # the check finds them

    partner_erase(partner=alice, acting_user=staff_user)

    assert places_naming("Alice Able", "alice@partners.example") == set()
    assert places_naming('"alice"') == KEPT_AFTER_ERASURE
    documented = (ROOT / "docs" / "privacy.md").read_text()
    for place in KEPT_AFTER_ERASURE:
        assert f"`{place}`" in documented, place


def test_links_handed_out_under_the_old_code_stop_counting(alice, staff_user, client):
    partner_erase(partner=alice, acting_user=staff_user)
    clicks = Click.objects.count()

    response = client.get("/go/alice/")

    assert response.status_code == 302
    assert "rp_ref" not in response.cookies
    assert Click.objects.count() == clicks


def test_the_export_after_erasing_holds_no_person(alice, staff_user):
    partner_erase(partner=alice, acting_user=staff_user)

    data = partner_export(partner=Partner.objects.get(pk=alice.pk), acting_user=None, at=NOW)

    assert (data["partner"]["name"], data["partner"]["email"], data["login"]) == (
        "Erased partner",
        "",
        None,
    )
    assert {name: data["signup"][name] for name in ("website", "promotion", "ip")} == {
        "website": "",
        "promotion": "",
        "ip": None,
    }
    text = json.dumps(data)
    for trace in ("Alice", "alice@partners.example", "alice.blog", "198.51.100.23", "Firefox"):
        assert trace not in text, trace
    assert [c["amount"] for c in data["commissions"]] == ["10.00", "10.00"]


def test_erasing_twice_changes_nothing_more(alice, staff_user):
    partner_erase(partner=alice, acting_user=staff_user)
    before = Partner.objects.filter(pk=alice.pk).values().get()

    partner_erase(partner=Partner.objects.get(pk=alice.pk), acting_user=staff_user)

    assert Partner.objects.filter(pk=alice.pk).values().get() == before
    assert LogEntry.objects.filter(object_id=str(alice.pk)).count() == 1


def test_a_staff_login_linked_to_a_partner_is_only_unlinked(staff_user):
    partner = PartnerFactory(code="kim01", user=staff_user)

    partner_erase(partner=partner, acting_user=None)

    partner.refresh_from_db()
    assert partner.user is None
    assert get_user_model().objects.filter(pk=staff_user.pk).exists()


def test_the_old_code_is_free_again(alice, staff_user):
    partner_erase(partner=alice, acting_user=staff_user)

    assert partner_create(data={"code": "alice", "name": "Another Alice", "email": "a@x.example"})


# --- The staff pages --------------------------------------------------------------------------


def test_the_staff_partner_page_offers_export_and_erase(alice, staff_client):
    page = staff_client.get("/staff/partners/alice/").text

    assert 'href="/staff/partners/alice/export/"' in page
    assert 'href="/staff/partners/alice/erase/"' in page


def test_the_export_page_downloads_the_json_file(alice, staff_client):
    page = staff_client.get("/staff/partners/alice/export/")
    response = staff_client.post("/staff/partners/alice/export/")

    assert page.status_code == 200
    assert "csrfmiddlewaretoken" in page.text
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="partner-alice.json"'
    assert response["Cache-Control"] == "no-store"
    assert json.loads(response.content)["partner"]["email"] == "alice@partners.example"


def test_the_erase_page_says_what_goes_and_what_stays(alice, staff_client):
    page = staff_client.get("/staff/partners/alice/erase/").text

    assert "Blanked for good" in page
    assert "Every commission, clawback and payment" in page
    assert f"erased-{alice.pk}" in page


def test_erasing_needs_the_code_typed(alice, staff_client):
    before = Partner.objects.filter(pk=alice.pk).values().get()

    response = staff_client.post("/staff/partners/alice/erase/", {"confirm": "bobby"})

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["confirm"]
    assert Partner.objects.filter(pk=alice.pk).values().get() == before


def test_erasing_from_the_staff_page(alice, staff_client):
    response = staff_client.post("/staff/partners/alice/erase/", {"confirm": "ALICE"}, follow=True)

    assert response.redirect_chain == [(f"/staff/partners/erased-{alice.pk}/", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        f"The personal data of partner alice is erased; they are now erased-{alice.pk}."
    ]
    assert Partner.objects.get(pk=alice.pk).name == "Erased partner"


def test_erasing_needs_the_delete_permission(alice):
    editor = UserFactory(is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="change_partner"))
    client = Client()
    client.force_login(editor)
    before = Partner.objects.filter(pk=alice.pk).values().get()

    page = client.get("/staff/partners/alice/")
    got = client.get("/staff/partners/alice/erase/")
    posted = client.post("/staff/partners/alice/erase/", {"confirm": "alice"})

    assert 'href="/staff/partners/alice/erase/"' not in page.text
    assert (got.status_code, posted.status_code) == (403, 403)
    assert Partner.objects.filter(pk=alice.pk).values().get() == before


def test_the_erase_form_needs_its_csrf_token(alice, staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.post("/staff/partners/alice/erase/", {"confirm": "alice"})

    assert response.status_code == 403
    assert Partner.objects.get(pk=alice.pk).name == "Alice Able"


@pytest.mark.parametrize("path", ["export", "erase"])
@pytest.mark.parametrize("who", ["anonymous", "partner"])
def test_only_staff_reach_the_personal_data_pages(alice, path, who):
    client = Client() if who == "anonymous" else logged_in(alice)

    got = client.get(f"/staff/partners/alice/{path}/")
    posted = client.post(f"/staff/partners/alice/{path}/", {"confirm": "alice"})

    if who == "anonymous":
        assert got.status_code == posted.status_code == 302
        assert got["Location"].startswith("/accounts/login/")
    else:
        assert got.status_code == posted.status_code == 403
    assert Partner.objects.get(pk=alice.pk).name == "Alice Able"
    assert not LogEntry.objects.exists()


# --- The admin --------------------------------------------------------------------------------


def admin_action(client, action: str, partners: list[Partner], **data):
    return client.post(
        "/admin/partners/partner/",
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [p.pk for p in partners], **data},
    )


def test_the_admin_exports_one_partner(alice, admin_client):
    response = admin_action(admin_client, "export_personal_data", [alice])

    assert response["Content-Disposition"] == 'attachment; filename="partner-alice.json"'
    assert json.loads(response.content)["partner"]["code"] == "alice"


def test_the_admin_exports_one_partner_at_a_time(alice, admin_client):
    response = admin_action(
        admin_client, "export_personal_data", [alice, Partner.objects.get(code="bobby")]
    )

    assert response.status_code == 302
    assert "Choose exactly one partner." in admin_client.get(response["Location"]).text
    assert not LogEntry.objects.exists()


def test_the_admin_erases_after_the_code_is_typed(alice, admin_client):
    confirm = admin_action(admin_client, "erase_personal_data", [alice])
    wrong = admin_action(admin_client, "erase_personal_data", [alice], apply="1", confirm="x")
    assert Partner.objects.get(pk=alice.pk).name == "Alice Able"

    done = admin_action(admin_client, "erase_personal_data", [alice], apply="1", confirm="alice")

    assert confirm.status_code == 200
    assert "This cannot be undone." in confirm.text
    assert wrong.status_code == 200
    assert "That is not the code of this partner" in wrong.text
    assert done.status_code == 302
    assert Partner.objects.get(pk=alice.pk).code == f"erased-{alice.pk}"


def test_the_admin_erase_action_needs_the_delete_permission(alice):
    editor = UserFactory(is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_partner", "view_partner"])
    )
    client = Client()
    client.force_login(editor)

    changelist = client.get("/admin/partners/partner/")
    response = admin_action(client, "erase_personal_data", [alice], apply="1", confirm="alice")

    actions = dict(changelist.context["action_form"].fields["action"].choices)
    assert "export_personal_data" in actions
    assert "erase_personal_data" not in actions
    assert response.status_code in (200, 302)
    assert Partner.objects.get(pk=alice.pk).name == "Alice Able"
