"""Who gets an email, and the log of every notification (SPEC §5.6)."""

from decimal import Decimal

import pytest
from django.core import mail

from commissions.models import Notification
from commissions.services.notifications import notification_send
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jane(db):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("7.00")}})
    return PartnerFactory(code="jane", name="Jane Roe", email="jane@partners.example")


def sell(api, n=1):
    return api.post(
        "/api/v1/events/orders/",
        {
            "event_id": f"o{n}",
            "contact": {"email": "ada@example.com"},
            "sale_partner": "jane",
            "items": [{"sku": "A", "quantity": 1, "unit_price": "50.00"}],
        },
        format="json",
    )


def fill_form(api, n=1):
    return api.post(
        "/api/v1/events/web-forms/",
        {
            "event_id": f"f{n}",
            "contact": {"email": "ada@example.com"},
            "lead_partner": "jane",
            "form": "newsletter",
        },
        format="json",
    )


def log():
    return list(Notification.objects.values_list("partner__code", "kind", "status", "reason"))


def test_a_sale_emails_the_partner_after_commit(api, jane, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert sell(api).status_code == 201

    assert log() == [("jane", "sale", "sent", "")]
    [message] = mail.outbox
    assert message.to == ["jane@partners.example"]
    assert message.subject == "You earned 7.00 USD on a sale"


def test_a_web_form_emails_the_lead_partner(api, jane, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        fill_form(api)

    assert log() == [("jane", "lead", "sent", "")]
    assert mail.outbox[0].subject == "Someone you referred filled out a form"
    assert 'the form "newsletter"' in mail.outbox[0].body


def test_skip_notifications_wins_over_the_partners_switches(
    api, jane, django_capture_on_commit_callbacks
):
    defaults_update(data={"skip_notifications": True}, acting_user=None)
    with django_capture_on_commit_callbacks(execute=True):
        sell(api)
        fill_form(api)

    assert sorted(log()) == [
        ("jane", "lead", "skipped", "Skip notifications is on in the defaults."),
        ("jane", "sale", "skipped", "Skip notifications is on in the defaults."),
    ]
    assert mail.outbox == []


@pytest.mark.parametrize(("switch", "kind"), [("notify_sale", "sale"), ("notify_lead", "lead")])
def test_a_partner_can_turn_off_one_kind(
    api, jane, switch, kind, django_capture_on_commit_callbacks
):
    setattr(jane, switch, False)
    jane.save()
    with django_capture_on_commit_callbacks(execute=True):
        sell(api)
        fill_form(api)

    statuses = {k: (status, reason) for _, k, status, reason in log()}
    assert statuses[kind] == ("skipped", f"The partner turned off {kind} emails.")
    other = "lead" if kind == "sale" else "sale"
    assert statuses[other] == ("sent", "")
    assert len(mail.outbox) == 1


def test_sending_twice_sends_once(api, jane, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        sell(api)
    notification = Notification.objects.get()

    assert notification_send(notification_id=notification.pk) is True
    assert notification_send(notification_id=notification.pk) is False
    assert len(mail.outbox) == 1


def test_the_log_is_listed_in_the_api(api, jane, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sell(api)
    [row] = api.get("/api/v1/notifications/?partner=JANE").json()["results"]
    assert (row["partner"], row["event_kind"], row["event_id"], row["status"]) == (
        "jane",
        "order",
        "o1",
        "sent",
    )
