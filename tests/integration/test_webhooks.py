"""Outgoing webhooks: signed, retried with back-off, logged (SPEC §9).

A real HTTP receiver on a local port answers as each test scripts it; the signature is
checked with the recipe exactly as docs/integration.md prints it. Tasks run in-process
(no broker), so the retries follow each other at once; test_webhooks_worker.py shows the
back-off with a real worker.
"""

import json
import time
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from commissions.models import Order, WebhookDelivery, WebhookEndpoint
from commissions.payouts import payout_batch_create
from commissions.webhooks import (
    active_endpoints,
    retry_delay,
    signature,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_event_queue,
)
from tests.factories import PartnerFactory, ProgramFactory
from tests.webhook_receiver import documented_verifier, webhook_receiver

pytestmark = pytest.mark.django_db

SECRET = "whsec_test-secret-of-the-merchant-0123456789"
CREATED, CLAWED_BACK, PAID = "commission.created", "commission.clawed_back", "payout.made"


@pytest.fixture
def receiver():
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def jane(db):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("12.50")}})
    return PartnerFactory(code="jane", name="Jane Roe")


@pytest.fixture
def verify():
    return documented_verifier()


def endpoint_for(receiver, *events, **fields) -> WebhookEndpoint:
    return webhook_endpoint_create(
        url=receiver.url, events=list(events) or [CREATED], secret=SECRET, **fields
    )


def sell(api, event_id="order-1", price="125.00"):
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": event_id,
            "sale_partner": "jane",
            "contact": {"email": "ada@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    return response.json()


def refund(api, amount, event_id="refund-1", order_id="order-1"):
    response = api.post(
        "/api/v1/events/refunds/",
        {"event_id": event_id, "order_id": order_id, "amount": amount},
        format="json",
    )
    assert response.status_code == 201, response.data
    return response.json()


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_event_each_time(
    api, jane, receiver, verify, django_capture_on_commit_callbacks
):
    endpoint_for(receiver)
    receiver.script[:] = [500, 503]

    with django_capture_on_commit_callbacks(execute=True):
        sale = sell(api)

    assert len(receiver.received) == 3
    delivery = WebhookDelivery.objects.get()
    assert [r.headers["RP-Attempt"] for r in receiver.received] == ["1", "2", "3"]
    assert {r.headers["RP-Delivery"] for r in receiver.received} == {str(delivery.uid)}
    assert {r.headers["RP-Event"] for r in receiver.received} == {CREATED}
    assert {r.body for r in receiver.received} == {delivery.body.encode()}
    assert all(verify(SECRET, r.body, r.headers["RP-Signature"]) for r in receiver.received)
    assert delivery.status == "delivered"
    assert delivery.attempts == 3
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    assert [(e["attempt"], e["status"]) for e in delivery.log] == [(1, 500), (2, 503), (3, 200)]
    assert [e["error"] for e in delivery.log] == ["HTTP 500", "HTTP 503", ""]
    body = json.loads(receiver.received[0].body)
    assert body["id"] == str(delivery.uid)
    assert body["type"] == CREATED
    assert body["data"] == {
        "order_id": "order-1",
        "occurred_at": body["data"]["occurred_at"],
        "base": "125.00",
        "commissions": [
            {
                "id": sale["commissions"][0]["id"],
                "partner": "jane",
                "level": 1,
                "kind": "sale",
                "amount": "12.50",
                "currency": "USD",
            }
        ],
    }
    assert receiver.received[0].path == "/hooks/"


def test_a_tampered_body_another_secret_or_an_old_signature_fail_verification(verify):
    body = b'{"type":"commission.created","data":{"amount":"12.50"}}'
    now = int(time.time())
    header = signature(secret=SECRET, body=body, timestamp=now)

    assert verify(SECRET, body, header)
    assert not verify(SECRET, body.replace(b"12.50", b"99.50"), header)
    assert not verify("whsec_another-merchants-secret-000000", body, header)
    assert not verify(SECRET, body, header.replace(f"t={now}", f"t={now - 1}"))
    assert not verify(SECRET, body, signature(secret=SECRET, body=body, timestamp=now - 301))
    assert not verify(SECRET, body, "")


def test_a_refund_sends_the_clawbacks_and_a_payout_its_payments(
    api, jane, receiver, verify, django_capture_on_commit_callbacks
):
    endpoint_for(receiver, CLAWED_BACK, PAID)  # not commission.created
    with django_capture_on_commit_callbacks(execute=True):
        sale = sell(api)
        refund(api, "25.00")
        batch = payout_batch_create(
            start=date(2000, 1, 1), end=timezone.now().date(), method="earned_in_range"
        )

    assert [r.headers["RP-Event"] for r in receiver.received] == [CLAWED_BACK, PAID]
    assert all(verify(SECRET, r.body, r.headers["RP-Signature"]) for r in receiver.received)
    clawed, paid = (json.loads(r.body)["data"] for r in receiver.received)
    line_id = sale["commissions"][0]["id"]
    assert clawed["order_id"] == "order-1"
    assert (clawed["refund_id"], clawed["refunded"]) == ("refund-1", "25.00")
    [clawback] = clawed["clawbacks"]
    assert {**clawback, "id": None} == {
        "id": None,
        "partner": "jane",
        "level": 1,
        "kind": "sale",
        "amount": "-2.50",
        "currency": "USD",
        "clawback_of": line_id,
    }
    assert paid["batch_id"] == batch.pk
    assert (paid["total"], paid["method"]) == ("10.00", "earned_in_range")
    assert paid["payments"] == [{"partner": "jane", "amount": "10.00", "currency": "USD"}]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_payout_that_pays_nobody_and_an_order_without_commissions_send_nothing(
    api, receiver, django_capture_on_commit_callbacks
):
    endpoint_for(receiver, CREATED, PAID)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/events/orders/",
            {
                "event_id": "order-nobody",
                "contact": {"email": "ada@example.com"},
                "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
            },
            format="json",
        )
        payout_batch_create(start=date(2000, 1, 1), end=date(2000, 1, 31), method="earned_in_range")

    assert response.status_code == 201
    assert receiver.received == []
    assert WebhookDelivery.objects.count() == 0


def test_it_gives_up_after_the_last_attempt(
    api, jane, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    endpoint_for(receiver)
    receiver.script[:] = [500] * 5

    with django_capture_on_commit_callbacks(execute=True):
        sell(api)

    delivery = WebhookDelivery.objects.get()
    assert len(receiver.received) == 3
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("failed", 3, None)


def test_a_redirect_is_a_failure_and_is_not_followed(
    api, jane, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    endpoint_for(receiver)
    receiver.script[:] = [302]

    with django_capture_on_commit_callbacks(execute=True):
        sell(api)

    assert [r.path for r in receiver.received] == ["/hooks/"]  # not /hooks/moved
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.log[0]["status"]) == ("failed", 302)


def test_an_unreachable_receiver_is_logged_with_its_error(
    api, jane, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver was on 127.0.0.1
    with webhook_receiver() as gone:
        url = gone.url
    webhook_endpoint_create(url=url, events=[CREATED], secret=SECRET)

    with django_capture_on_commit_callbacks(execute=True):
        sell(api)

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert [e["status"] for e in delivery.log] == [None, None]
    assert "refused" in delivery.log[0]["error"].lower()


def test_an_endpoint_turned_off_before_its_turn_gets_nothing(
    api, jane, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    with django_capture_on_commit_callbacks() as queued:
        sell(api)
    webhook_endpoint_update(endpoint=endpoint, data={"is_active": False})

    for callback in queued:
        callback()

    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("cancelled", 0)


def test_a_delivery_run_twice_is_sent_once(api, jane, receiver, django_capture_on_commit_callbacks):
    from commissions.tasks import deliver_webhook

    endpoint_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        sell(api)
    delivery = WebhookDelivery.objects.get()

    assert deliver_webhook.delay(delivery.pk).get() is None

    assert len(receiver.received) == 1


def test_every_endpoint_that_wants_the_event_gets_its_own_delivery(
    api, jane, django_capture_on_commit_callbacks
):
    with webhook_receiver() as first, webhook_receiver() as second, webhook_receiver() as third:
        endpoint_for(first)
        webhook_endpoint_create(url=second.url, events=[CREATED], secret=SECRET + "-2")
        endpoint_for(third, PAID)
        with django_capture_on_commit_callbacks(execute=True):
            sell(api)

    assert (len(first.received), len(second.received), len(third.received)) == (1, 1, 0)
    assert first.received[0].headers["RP-Signature"] != second.received[0].headers["RP-Signature"]
    assert json.loads(first.received[0].body)["id"] != json.loads(second.received[0].body)["id"]


# --- The cost of an event -------------------------------------------------------------------


def test_without_an_active_endpoint_an_event_costs_no_query(db, django_assert_num_queries):
    WebhookEndpoint.objects.create(url="https://x.example/", events=[CREATED], is_active=False)
    active_endpoints()  # the first look fills the cache

    with django_assert_num_queries(0):
        assert webhook_event_queue(event_type=CREATED, subject_id=1) == []


def test_with_endpoints_an_event_costs_one_insert(
    jane, api, django_assert_num_queries, django_capture_on_commit_callbacks
):
    sell(api)
    order = Order.objects.get()
    with django_capture_on_commit_callbacks(execute=True):  # clears the cached list
        for n in range(3):
            webhook_endpoint_create(url=f"https://h{n}.example/", events=[CREATED], secret=SECRET)
    active_endpoints()

    with django_assert_num_queries(1):
        rows = webhook_event_queue(event_type=CREATED, subject_id=order.pk)

    assert len(rows) == 3


def test_saving_an_endpoint_clears_the_cached_list(db, django_capture_on_commit_callbacks):
    assert active_endpoints() == ()

    with django_capture_on_commit_callbacks(execute=True):
        endpoint = webhook_endpoint_create(url="https://hooks.example/", events=[CREATED])
    seen = active_endpoints()
    with django_capture_on_commit_callbacks(execute=True):
        webhook_endpoint_update(endpoint=endpoint, data={"is_active": False})

    assert seen == ((endpoint.pk, (CREATED,)),)
    assert active_endpoints() == ()


def test_the_back_off_doubles_from_the_base_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 3600

    assert [retry_delay(n) for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


# --- Staff register endpoints -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://hooks.example/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["order.created"]}, "events"),
        ({"secret": "too-short"}, "secret"),
        ({"secret": "whsec_has a space in the middle of it"}, "secret"),
    ],
    ids=["ftp", "not-a-url", "no-events", "unknown-event", "short-secret", "secret-space"],
)
def test_a_bad_endpoint_is_refused_naming_the_field(db, fields, field):
    data = {"url": "https://hooks.example/", "events": [CREATED], "secret": SECRET, **fields}

    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(**data)

    assert field in refused.value.message_dict
    assert WebhookEndpoint.objects.count() == 0


def test_an_empty_secret_gets_a_random_one(db):
    first = webhook_endpoint_create(url="https://a.example/", events=[CREATED])
    second = webhook_endpoint_create(url="https://b.example/", events=[CREATED])

    assert first.secret.startswith("whsec_") and len(first.secret) > 40
    assert first.secret != second.secret


def test_staff_register_an_endpoint_in_the_admin_and_read_the_delivery_log(
    staff_client, api, jane, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/commissions/webhookendpoint/add/",
            {"url": receiver.url, "description": "Shop", "events": [CREATED], "is_active": "on"},
        )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    page = staff_client.get(f"/admin/commissions/webhookendpoint/{endpoint.pk}/change/")
    assert endpoint.secret in page.text

    with django_capture_on_commit_callbacks(execute=True):
        sell(api)
    log = staff_client.get("/admin/commissions/webhookdelivery/")
    delivery = WebhookDelivery.objects.get()
    detail = staff_client.get(f"/admin/commissions/webhookdelivery/{delivery.pk}/change/")

    assert log.status_code == detail.status_code == 200
    assert "commission.created" in log.text and "delivered" in log.text.lower()
    assert "&quot;status&quot;: 200" in detail.text


def test_the_admin_refuses_a_bad_endpoint_and_writes_nothing(staff_client):
    response = staff_client.post(
        "/admin/commissions/webhookendpoint/add/",
        {"url": "https://hooks.example/", "new_secret": "short", "is_active": "on"},
    )

    assert response.status_code == 200
    assert "This field is required." in response.text  # no events chosen
    assert "Use 24 to 100 characters" in response.text
    assert WebhookEndpoint.objects.count() == 0


def test_staff_send_a_failed_delivery_again(
    staff_client, api, jane, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    endpoint_for(receiver)
    receiver.script[:] = [500]
    with django_capture_on_commit_callbacks(execute=True):
        sell(api)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/commissions/webhookdelivery/",
            {"action": "resend", "_selected_action": [delivery.pk]},
        )

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert [e["status"] for e in delivery.log] == [500, 200]
    assert len(receiver.received) == 2


def test_people_who_are_not_staff_cannot_reach_endpoints_or_deliveries(client, plain_user):
    client.force_login(plain_user)

    for path in ("/admin/commissions/webhookendpoint/", "/admin/commissions/webhookdelivery/"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
