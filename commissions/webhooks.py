"""Outgoing webhooks (SPEC §9): signed JSON to the merchant's URLs about the ledger.

Every write of webhooks lives here: endpoints, the deliveries an event queues, each attempt.

Queuing costs no query when no active endpoint wants the event (the active endpoints are
cached, and the cache is cleared whenever an endpoint is saved) and one INSERT of delivery
rows otherwise, inside the event's own transaction; the deliveries are sent by a task queued
after commit. The JSON body is made at the first attempt and sent as is on every retry.

A delivery is a POST with these headers (docs/integration.md shows how to verify them):

    Content-Type: application/json
    RP-Event: commission.created | commission.clawed_back | payout.made
    RP-Delivery: <uuid, the same on every retry: the receiver's idempotency key>
    RP-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body, keyed by the secret>
"""

import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Sequence, Sized
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from referral_program.background import task_queue

from . import webhook_guard
from .models import (
    Commission,
    CommissionEntry,
    Order,
    Payment,
    PayoutBatch,
    Refund,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)
from .money import ZERO

ENDPOINTS_CACHE_KEY = "commissions:webhook-endpoints:v1"
SECRET_PREFIX = "whsec_"
SECRET_MIN_LENGTH = 24
USER_AGENT = "referral-program-webhooks/1"
# What the log keeps of a receiver's answer.
RESPONSE_KEPT = 200
# The event types an endpoint may ask for (a test event is sent on demand, to one endpoint).
SUBSCRIBABLE = tuple(value for value in WebhookEventType.values if value != WebhookEventType.TEST)


# --- Signing (pure) ----------------------------------------------------------------------


def signature(*, secret: str, body: bytes, timestamp: int) -> str:
    """The `RP-Signature` header: `t=<timestamp>,v1=<hex HMAC-SHA256("<t>." + body)>`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): doubling, capped."""
    base, cap = settings.WEBHOOK_RETRY_BASE_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS
    return min(base * 2 ** (attempt - 1), cap)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# --- Endpoints ----------------------------------------------------------------------------


def _forget_endpoints() -> None:
    """Every process reads the endpoints again (at once with a shared cache, see CACHE_URL)."""
    transaction.on_commit(lambda: cache.delete(ENDPOINTS_CACHE_KEY))


def endpoint_errors(endpoint: WebhookEndpoint) -> dict[str, list[str]]:
    """What is wrong with an endpoint, per field (empty: nothing)."""
    errors = {}
    try:
        endpoint.full_clean(exclude=["events", "secret"])
    except ValidationError as error:
        errors.update(error.message_dict)
    if "url" not in errors and (refusal := webhook_guard.url_refusal(endpoint.url)):
        errors["url"] = [refusal]
    events, known = endpoint.events, set(SUBSCRIBABLE)
    if not isinstance(events, list) or not events or not set(events) <= known:
        errors["events"] = [f"Choose one or more of {', '.join(SUBSCRIBABLE)}."]
    if len(endpoint.secret) < SECRET_MIN_LENGTH or len(endpoint.secret) > 100:
        errors["secret"] = [f"Use {SECRET_MIN_LENGTH} to 100 characters (or leave it empty)."]
    elif not endpoint.secret.isprintable() or any(c.isspace() for c in endpoint.secret):
        errors["secret"] = ["No spaces or control characters."]
    return errors


def _endpoint_check(endpoint: WebhookEndpoint) -> None:
    errors = endpoint_errors(endpoint)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def webhook_endpoint_create(
    *,
    url: str,
    events: Sequence[str],
    description: str = "",
    secret: str = "",
    is_active: bool = True,
) -> WebhookEndpoint:
    """A receiver of the merchant's; an empty secret gets a new random one."""
    endpoint = WebhookEndpoint(
        url=url,
        events=list(dict.fromkeys(events)),
        description=description,
        secret=secret or new_secret(),
        is_active=is_active,
    )
    _endpoint_check(endpoint)
    endpoint.save()
    _forget_endpoints()
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
    """Change the URL, events, description, secret or switch (an empty secret keeps it)."""
    for name in ("url", "description", "is_active"):
        if name in data:
            setattr(endpoint, name, data[name])
    if "events" in data:
        endpoint.events = list(dict.fromkeys(data["events"]))
    if data.get("secret"):
        endpoint.secret = data["secret"]
    _endpoint_check(endpoint)
    endpoint.save()
    _forget_endpoints()
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new random secret; deliveries from now on are signed with it."""
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret"])
    return endpoint.secret


def active_endpoints() -> tuple[tuple[int, tuple[str, ...]], ...]:
    """(id, event types) of every active endpoint, from the cache when it has them."""
    found = cache.get(ENDPOINTS_CACHE_KEY)
    if found is None:
        found = tuple(
            (pk, tuple(events))
            for pk, events in WebhookEndpoint.objects.filter(is_active=True)
            .order_by("id")
            .values_list("id", "events")
        )
        cache.set(ENDPOINTS_CACHE_KEY, found, settings.WEBHOOK_ENDPOINTS_CACHE_SECONDS)
    return found


# --- Queuing the deliveries of an event -----------------------------------------------------


def webhook_event_queue(*, event_type: str, subject_id: int) -> list[WebhookDelivery]:
    """One delivery per active endpoint that wants the event, sent after commit."""
    wanted = [pk for pk, events in active_endpoints() if event_type in events]
    if not wanted:
        return []
    now = timezone.now()
    rows = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            uid=uuid.uuid4(),
            endpoint_id=pk,
            event_type=event_type,
            subject_id=subject_id,
            created_at=now,
            next_attempt_at=now,
        )
        for pk in wanted
    )
    transaction.on_commit(partial(_send_later, [row.pk for row in rows]), robust=True)
    return rows


def _send_later(ids: Iterable[int]) -> None:
    for pk in ids:
        task_queue("commissions.tasks.deliver_webhook", pk)


def webhook_commission_created(*, order_pk: int, lines: Sized) -> None:
    """An order made commission lines: `commission.created`, one delivery for all of them."""
    if lines:
        webhook_event_queue(event_type=WebhookEventType.COMMISSION_CREATED, subject_id=order_pk)


def webhook_commission_clawed_back(*, refund_pk: int, lines: Sized) -> None:
    """A refund took commissions back: `commission.clawed_back` with every clawback line."""
    if lines:
        webhook_event_queue(
            event_type=WebhookEventType.COMMISSION_CLAWED_BACK, subject_id=refund_pk
        )


def webhook_payout_made(*, batch: PayoutBatch) -> None:
    """A payout batch paid someone: `payout.made` with its payments."""
    if batch.total > ZERO:
        webhook_event_queue(event_type=WebhookEventType.PAYOUT_MADE, subject_id=batch.pk)


# --- The JSON of each event type ------------------------------------------------------------


def _line(row: Commission) -> dict:
    return {
        "id": row.pk,
        "partner": row.partner.code,
        "level": row.level,
        "kind": row.kind,
        "amount": str(row.amount),
        "currency": row.currency,
    }


def _commission_created(order_pk: int) -> dict:
    order = Order.objects.get(pk=order_pk)
    lines = (
        Commission.objects.filter(order=order, entry=CommissionEntry.COMMISSION)
        .select_related("partner")
        .order_by("id")
    )
    return {
        "order_id": order.order_id,
        "occurred_at": order.occurred_at,
        "base": str(order.base),
        "commissions": [_line(row) for row in lines],
    }


def _commission_clawed_back(refund_pk: int) -> dict:
    refund = Refund.objects.select_related("order", "event").get(pk=refund_pk)
    lines = Commission.objects.filter(refund=refund).select_related("partner").order_by("id")
    return {
        "order_id": refund.order.order_id,
        "refund_id": refund.event.event_id,
        "refunded": str(refund.amount),
        "occurred_at": refund.occurred_at,
        "clawbacks": [{**_line(row), "clawback_of": row.clawback_of_id} for row in lines],
    }


def _payout_made(batch_pk: int) -> dict:
    batch = PayoutBatch.objects.get(pk=batch_pk)
    # The payments as recorded (a failed one's returned row is not a payment made).
    payments = (
        Payment.objects.filter(batch=batch, reverses__isnull=True)
        .select_related("partner")
        .order_by("id")
    )
    return {
        "batch_id": batch.pk,
        "start": batch.start,
        "end": batch.end,
        "method": batch.method,
        "created_at": batch.created_at,
        "total": str(batch.total),
        "payments": [
            {"partner": p.partner.code, "amount": str(p.amount), "currency": p.currency}
            for p in payments
        ],
    }


EVENT_DATA = {
    WebhookEventType.COMMISSION_CREATED: _commission_created,
    WebhookEventType.COMMISSION_CLAWED_BACK: _commission_clawed_back,
    WebhookEventType.PAYOUT_MADE: _payout_made,
}


def delivery_body(delivery: WebhookDelivery) -> str:
    """`{"id", "type", "created_at", "data"}` as compact JSON."""
    document = {
        "id": str(delivery.uid),
        "type": delivery.event_type,
        "created_at": delivery.created_at,
        "data": EVENT_DATA[delivery.event_type](delivery.subject_id),
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"))


# --- Sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int | None  # the HTTP status, None when no answer came
    error: str
    response: str


def http_post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with webhook_guard.OPENER.open(request, timeout=timeout) as response:
            text = response.read(RESPONSE_KEPT).decode(errors="replace")
            return Answer(status=response.status, error="", response=text)
    except urllib.error.HTTPError as error:
        text = error.read(RESPONSE_KEPT).decode(errors="replace") if error.fp else ""
        return Answer(status=error.code, error=f"HTTP {error.code}", response=text)
    except urllib.error.URLError as error:
        return Answer(status=None, error=str(error.reason)[:RESPONSE_KEPT], response="")
    except (OSError, http.client.HTTPException, ValueError) as error:
        message = str(error) or type(error).__name__
        return Answer(status=None, error=message[:RESPONSE_KEPT], response="")


@dataclass(frozen=True)
class Attempt:
    status: str
    retry_in: float | None  # seconds until the next attempt; None: no more attempts


def webhook_delivery_attempt(*, delivery_id: int, due_only: bool = True) -> Attempt | None:
    """POST one delivery once and log the attempt; None when there is nothing to do (also
    when its next attempt is not due yet, unless `due_only` is off).

    Safe to run twice and from several workers: the delivery is claimed first (an attempt
    in progress holds it for the timeout), and one that is delivered or given up on is
    never sent again. A failed attempt sets when the next one is due (`next_attempt_at`).
    """
    now = timezone.now()
    hold = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 30)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now) if due_only else Q()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDeliveryStatus.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(due)
        .update(claimed_until=hold)
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    test = delivery.event_type == WebhookEventType.TEST  # sent once, whatever the endpoint
    if not test and (not endpoint.is_active or delivery.event_type not in endpoint.events):
        entry = {"at": now.isoformat(), "status": None, "error": "The endpoint was turned off."}
        _finish(delivery, status=WebhookDeliveryStatus.CANCELLED, entry=entry, at=now)
        return Attempt(status=WebhookDeliveryStatus.CANCELLED, retry_in=None)
    if not delivery.body:
        delivery.body = delivery_body(delivery)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(body=delivery.body)

    number = delivery.attempts + 1
    body = delivery.body.encode()
    sent_at = timezone.now()
    started = time.monotonic()
    answer = http_post(
        url=endpoint.url,
        body=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "RP-Event": delivery.event_type,
            "RP-Delivery": str(delivery.uid),
            "RP-Attempt": str(number),
            "RP-Signature": signature(
                secret=endpoint.secret, body=body, timestamp=int(sent_at.timestamp())
            ),
        },
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
    )
    entry = {
        "attempt": number,
        "at": sent_at.isoformat(),
        "status": answer.status,
        "error": answer.error,
        "response": answer.response,
        "ms": round((time.monotonic() - started) * 1000),
    }
    if answer.status is not None and 200 <= answer.status < 300:
        _finish(delivery, status=WebhookDeliveryStatus.DELIVERED, entry=entry, at=sent_at)
        return Attempt(status=WebhookDeliveryStatus.DELIVERED, retry_in=None)
    if number >= settings.WEBHOOK_MAX_ATTEMPTS or test:
        _finish(delivery, status=WebhookDeliveryStatus.FAILED, entry=entry, at=sent_at)
        return Attempt(status=WebhookDeliveryStatus.FAILED, retry_in=None)
    wait = retry_delay(number)
    _finish(
        delivery,
        status=WebhookDeliveryStatus.PENDING,
        entry=entry,
        at=sent_at,
        next_at=sent_at + timedelta(seconds=wait),
    )
    return Attempt(status=WebhookDeliveryStatus.PENDING, retry_in=wait)


def _finish(
    delivery: WebhookDelivery,
    *,
    status: str,
    entry: dict,
    at: datetime,
    next_at: datetime | None = None,
) -> None:
    """Log the attempt and let go of the delivery."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempts=delivery.attempts + (1 if "attempt" in entry else 0),
        log=[*delivery.log, entry],
        next_attempt_at=next_at,
        delivered_at=at if status == WebhookDeliveryStatus.DELIVERED else None,
        claimed_until=None,
    )


@transaction.atomic
def webhook_deliveries_resend(*, deliveries: QuerySet[WebhookDelivery]) -> int:
    """Send again, with a fresh round of attempts, deliveries not yet delivered."""
    ids = list(
        deliveries.exclude(status=WebhookDeliveryStatus.DELIVERED)
        .select_for_update()
        .values_list("pk", flat=True)
    )
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=WebhookDeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claimed_until=None,
        )
        transaction.on_commit(partial(_send_later, ids), robust=True)
    return len(ids)
