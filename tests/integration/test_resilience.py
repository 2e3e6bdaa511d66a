"""The pieces behind tests/integration/test_faults.py, in-process (docs/reliability.md):
the 503 for a lost database, the task class that skips an unreachable broker, and the
sweeps that queue stranded notifications, webhook deliveries and sign-up emails again."""

import time
import uuid
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import IntegrityError, InterfaceError, OperationalError
from django.utils import timezone

from commissions.models import (
    Event,
    EventKind,
    Notification,
    NotificationStatus,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from commissions.requeue import (
    notifications_stranded,
    requeue_notifications,
    requeue_webhook_deliveries,
    webhook_deliveries_stranded,
)
from commissions.tasks import send_notification
from commissions.webhooks import webhook_endpoint_create
from partners.models import SignupEmail
from partners.requeue import requeue_signup_emails, signup_emails_stranded
from partners.services.defaults import defaults_update
from partners.services.signup import partner_signup
from referral_program.celery import app as celery_app
from referral_program.resilience import BrokerTolerantTask
from tests.factories import PartnerFactory, ProgramFactory
from tests.integration.test_notifications_worker import drop_connections
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


# --- The database away: 503 with Retry-After ------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
    ids=["operational", "interface"],
)
def test_an_api_view_that_loses_the_database_answers_503_json(api, error):
    with mock.patch("partners.api.defaults_get", side_effect=error):
        response = api.get("/api/v1/defaults/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "detail": "The database is unavailable. Send the request again shortly (same event_id).",
        "code": "database_unavailable",
    }


def test_a_page_that_loses_the_database_answers_503_text(client, settings):
    settings.DATABASE_RETRY_AFTER_SECONDS = 30
    with mock.patch(
        "django.contrib.auth.views.LoginView.get", side_effect=OperationalError("refused")
    ):
        response = client.get("/accounts/login/")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_other_database_errors_stay_server_errors(api):
    with (
        mock.patch("partners.api.defaults_get", side_effect=IntegrityError("a bug")),
        pytest.raises(IntegrityError),
    ):
        api.get("/api/v1/defaults/")


# --- The broker away: skipped, not raised; queued again later --------------------------------


@pytest.fixture
def broker_down():
    """The app publishes to a broker nobody answers (as a web process with a broker would)."""
    saved = {k: celery_app.conf[k] for k in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=UNREACHABLE, task_always_eager=False)
    drop_connections()
    BrokerTolerantTask._broker_down_until = 0.0
    yield
    celery_app.conf.update(saved)
    drop_connections()
    BrokerTolerantTask._broker_down_until = 0.0


def test_a_task_the_broker_cannot_take_is_skipped_then_not_tried_for_a_while(broker_down):
    began = time.monotonic()
    assert send_notification.delay(1) is None
    first = time.monotonic() - began

    began = time.monotonic()
    assert send_notification.delay(2) is None
    second = time.monotonic() - began

    assert first < 3  # one failed connection and Celery's publish retries
    assert second < 0.05  # within BROKER_RETRY_AFTER_SECONDS: not tried at all
    assert BrokerTolerantTask._broker_down_until > time.monotonic()


def test_without_a_broker_task_errors_still_raise(settings):
    assert celery_app.conf.task_always_eager
    with (
        mock.patch("commissions.tasks.notification_send", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        send_notification.delay(1)


@pytest.fixture
def jane():
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("7.00")}})
    return PartnerFactory(code="jane", email="jane@partners.example")


def sell(api, n: int):
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


def test_an_order_commits_with_the_broker_down_and_its_email_goes_once_when_back(
    api, jane, broker_down, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = sell(api, 1)

    assert response.status_code == 201
    assert list(Notification.objects.values_list("status", flat=True)) == ["queued"]
    assert mail.outbox == []

    # The broker is back (here: tasks in-process); the sweep finds the stranded row.
    celery_app.conf.task_always_eager = True
    settings.NOTIFICATION_REQUEUE_AFTER_SECONDS = 0
    assert requeue_notifications() == 1
    assert requeue_notifications() == 0  # sent: nothing left to queue
    send_notification.delay(Notification.objects.get().pk)  # a late duplicate task

    assert list(Notification.objects.values_list("status", flat=True)) == ["sent"]
    assert [m.to for m in mail.outbox] == [["jane@partners.example"]]


@pytest.mark.parametrize(
    ("status", "age", "stranded"),
    [
        (NotificationStatus.QUEUED, timedelta(minutes=10), True),
        (NotificationStatus.QUEUED, timedelta(seconds=60), False),  # its task may be on its way
        (NotificationStatus.QUEUED, timedelta(hours=49), False),  # given up on
        (NotificationStatus.SENT, timedelta(minutes=10), False),
        (NotificationStatus.SKIPPED, timedelta(minutes=10), False),
    ],
    ids=["queued", "too-recent", "too-old", "sent", "skipped"],
)
def test_which_notifications_are_stranded(status, age, stranded):
    now = timezone.now()
    partner = PartnerFactory()
    event = Event.objects.create(
        kind=EventKind.ORDER,
        event_id="o1",
        payload={},
        received_at=now - age,
        occurred_at=now - timedelta(days=30),  # backfilled: the arrival counts, not this
    )
    notification = Notification.objects.create(
        partner=partner, event=event, kind="sale", status=status, created_at=event.occurred_at
    )

    assert notifications_stranded(at=now) == ([notification.pk] if stranded else [])


def test_the_sweep_reads_in_one_query_and_is_bounded(django_assert_num_queries):
    now = timezone.now()
    partner = PartnerFactory()
    for n in range(3):
        event = Event.objects.create(
            kind=EventKind.ORDER,
            event_id=f"o{n}",
            payload={},
            received_at=now - timedelta(minutes=10),
            occurred_at=now,
        )
        Notification.objects.create(
            partner=partner, event=event, kind="sale", status="queued", created_at=now
        )

    with django_assert_num_queries(1):
        assert len(notifications_stranded(at=now, limit=2)) == 2


# --- Webhook deliveries and sign-up emails: the same sweep --------------------------------


@pytest.fixture
def receiver():
    with webhook_receiver() as running:
        yield running


def test_a_webhook_made_with_the_broker_down_is_delivered_once_when_it_is_back(
    api, jane, receiver, broker_down, settings, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(url=receiver.url, events=["commission.created"], secret="s" * 32)
    with django_capture_on_commit_callbacks(execute=True):
        response = sell(api, 1)

    assert response.status_code == 201
    assert list(WebhookDelivery.objects.values_list("status", "attempts")) == [("pending", 0)]
    assert receiver.received == []

    celery_app.conf.task_always_eager = True  # the broker is back (here: in-process)
    settings.NOTIFICATION_REQUEUE_AFTER_SECONDS = 0
    assert requeue_webhook_deliveries() == 1
    assert requeue_webhook_deliveries() == 0  # delivered: nothing left to queue

    assert list(WebhookDelivery.objects.values_list("status", "attempts")) == [("delivered", 1)]
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("status", "due", "claimed", "stranded"),
    [
        (WebhookDeliveryStatus.PENDING, timedelta(minutes=-10), None, True),
        (WebhookDeliveryStatus.PENDING, timedelta(seconds=-60), None, False),  # on its way
        (WebhookDeliveryStatus.PENDING, timedelta(minutes=5), None, False),  # a retry waits
        (WebhookDeliveryStatus.PENDING, timedelta(hours=-49), None, False),  # given up on
        (WebhookDeliveryStatus.PENDING, timedelta(minutes=-10), timedelta(seconds=30), False),
        (WebhookDeliveryStatus.PENDING, timedelta(minutes=-10), timedelta(seconds=-30), True),
        (WebhookDeliveryStatus.DELIVERED, timedelta(minutes=-10), None, False),
        (WebhookDeliveryStatus.FAILED, timedelta(minutes=-10), None, False),
        (WebhookDeliveryStatus.CANCELLED, timedelta(minutes=-10), None, False),
    ],
    ids=[
        "pending", "too-recent", "retry-ahead", "too-old", "being-attempted",
        "attempt-timed-out", "delivered", "failed", "cancelled",
    ],
)  # fmt: skip
def test_which_webhook_deliveries_are_stranded(status, due, claimed, stranded):
    now = timezone.now()
    endpoint = webhook_endpoint_create(
        url="https://shop.example/hooks", events=["commission.created"], secret="s" * 32
    )
    delivery = WebhookDelivery.objects.create(
        uid=uuid.uuid4(),
        endpoint=endpoint,
        event_type="commission.created",
        subject_id=1,
        status=status,
        created_at=now - timedelta(days=1),  # when its next attempt is due counts, not this
        next_attempt_at=now + due,
        claimed_until=None if claimed is None else now + claimed,
    )

    assert webhook_deliveries_stranded(at=now) == ([delivery.pk] if stranded else [])


@pytest.mark.parametrize(
    ("due", "attempts", "handed_over"),
    [
        (timedelta(seconds=-1), 1, True),  # a retry: as soon as it is due
        (timedelta(seconds=30), 1, False),  # a retry not due yet
        (timedelta(seconds=-1), 0, False),  # a first attempt: its task may be on its way
        (timedelta(minutes=-10), 0, True),  # a first attempt whose task was lost
    ],
    ids=["retry-due", "retry-ahead", "first-recent", "first-lost"],
)
def test_webhook_retries_wait_in_the_database_and_the_sweep_hands_them_over(
    due, attempts, handed_over
):
    """Issue 21, finding 3: no retry waits in a worker (a countdown), where a Redis restart
    made celery 5.7 exit for good; the sweep queues a retry when it falls due, and an attempt
    that is not due yet is not made."""
    from commissions.webhooks import webhook_delivery_attempt

    now = timezone.now()
    endpoint = webhook_endpoint_create(
        url="https://shop.example/hooks", events=["commission.created"], secret="s" * 32
    )
    delivery = WebhookDelivery.objects.create(
        uid=uuid.uuid4(),
        endpoint=endpoint,
        event_type="commission.created",
        subject_id=1,
        attempts=attempts,
        created_at=now - timedelta(hours=1),
        next_attempt_at=now + due,
    )

    assert webhook_deliveries_stranded(at=now) == ([delivery.pk] if handed_over else [])
    if due > timedelta(0):
        assert webhook_delivery_attempt(delivery_id=delivery.pk) is None
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.claimed_until) == (attempts, None)


def test_no_task_of_the_program_is_ever_delayed_in_a_worker():
    """Retries of emails and webhooks are the sweeps' (a row waiting in the database), never
    a countdown, ETA or automatic retry held by the worker."""
    from pathlib import Path

    ours = [t for name, t in celery_app.tasks.items() if name.split(".")[0] in APPS]
    assert len(ours) >= 10
    for task in ours:
        assert not getattr(task, "autoretry_for", ()), task.name
    root = Path(__file__).resolve().parents[2]
    for app in APPS:
        for source in (root / app).rglob("*.py"):
            text = source.read_text()
            for word in ("countdown=", "eta=", ".retry("):
                assert word not in text, (source, word)


APPS = ("partners", "commissions", "referral_program")


def test_a_signup_email_made_with_the_broker_down_goes_once_when_it_is_back(
    broker_down, settings, django_capture_on_commit_callbacks
):
    defaults_update(data={"signup_enabled": True}, acting_user=None)
    with django_capture_on_commit_callbacks(execute=True):
        partner_signup(
            data={"name": "Ada Lovelace", "email": "ada@example.com", "password": "x7-Lantern-q"},
            tracking_token=None,
            ip="203.0.113.5",
            user_agent="Mozilla/5.0",
            at=timezone.now(),
        )

    assert list(SignupEmail.objects.values_list("kind", "sent_at")) == [("confirm", None)]
    assert mail.outbox == []

    celery_app.conf.task_always_eager = True
    settings.NOTIFICATION_REQUEUE_AFTER_SECONDS = 0
    assert requeue_signup_emails() == 1
    assert requeue_signup_emails() == 0

    assert SignupEmail.objects.get().sent_at is not None
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


@pytest.mark.parametrize(
    ("age", "sent", "stranded"),
    [
        (timedelta(minutes=10), False, True),
        (timedelta(seconds=60), False, False),  # its task may be on its way
        (timedelta(hours=49), False, False),  # given up on
        (timedelta(minutes=10), True, False),
    ],
    ids=["unsent", "too-recent", "too-old", "sent"],
)
def test_which_signup_emails_are_stranded(age, sent, stranded):
    now = timezone.now()
    email = SignupEmail.objects.create(
        partner=PartnerFactory(),
        kind="confirm",
        created_at=now - age,
        sent_at=now if sent else None,
    )

    assert signup_emails_stranded(at=now) == ([email.pk] if stranded else [])


def test_every_sweep_runs_on_the_beat_schedule(settings):
    sweeps = {
        "requeue-notifications": requeue_notifications,
        "requeue-webhook-deliveries": requeue_webhook_deliveries,
        "requeue-signup-emails": requeue_signup_emails,
    }
    for name, task in sweeps.items():
        entry = settings.CELERY_BEAT_SCHEDULE[name]
        assert entry["task"] == task.name
        assert entry["schedule"] == settings.NOTIFICATION_REQUEUE_SECONDS
        assert task.name in celery_app.tasks
    assert {"commissions.requeue", "partners.requeue"} <= set(settings.CELERY_IMPORTS)
