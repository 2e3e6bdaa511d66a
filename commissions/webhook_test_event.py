"""Settings > Webhooks > "Send a test event": one signed `webhook.test` POST to one endpoint,
made while staff wait, so they see at once whether the receiver answers and checks the
signature. It is logged with the endpoint's deliveries, signed with its secret like any
delivery, and tried once (a test is not retried); the endpoint need not be active nor ask
for any event type.
"""

import json
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from .models import WebhookDelivery, WebhookEndpoint, WebhookEventType
from .webhooks import webhook_delivery_attempt


def webhook_test_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Record a test delivery for `endpoint`, send it now, and return it as it ended."""
    now = timezone.now()
    uid = uuid.uuid4()
    body = {
        "id": str(uid),
        "type": WebhookEventType.TEST,
        "created_at": now,
        "data": {
            "message": "A test event sent from Settings > Webhooks. Nothing happened in the "
            "ledger: answer with a 2xx status once the signature checks."
        },
    }
    delivery = WebhookDelivery.objects.create(
        uid=uid,
        endpoint=endpoint,
        event_type=WebhookEventType.TEST,
        subject_id=0,
        body=json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")),
        created_at=now,
        next_attempt_at=now,
    )
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery
