"""Settings > Webhooks, Hosted forms and API keys (issue 20): what the admin offered, where a
merchant looks for it, through the same services and checks."""

import json
import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.forms.models import model_to_dict
from django.utils import timezone

from commissions.models import HostedForm, WebhookDelivery, WebhookEndpoint
from commissions.webhooks import webhook_endpoint_create
from partners.models import ApiKey
from partners.services.api_keys import api_key_create, api_key_hash
from tests.factories import UserFactory
from tests.webhook_receiver import documented_verifier, webhook_receiver

pytestmark = pytest.mark.django_db

SECRET = "whsec_settings-page-secret-0123456789"
WEBHOOKS, DELIVERIES = "/staff/settings/webhooks/", "/staff/settings/webhooks/deliveries/"
HOSTED_FORMS, API_KEYS = "/staff/settings/hosted-forms/", "/staff/settings/api-keys/"


def rows(model) -> list[dict]:
    return [model_to_dict(row) for row in model.objects.order_by("pk")]


def staff_with(client, *codenames: str):
    """A logged-in staff member with only these permissions (app_label.codename)."""
    user = UserFactory(is_staff=True)
    for name in codenames:
        app, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client.force_login(user)
    return client


def test_settings_lists_every_page_in_its_menu(staff_client):
    html = staff_client.get("/staff/settings/").content.decode()
    menu = re.search(r'<nav aria-label="Settings">.*?</nav>', html, re.S).group()
    assert re.findall(r'href="([^"]+)"', menu) == [
        "/staff/settings/referral-partner-defaults/",
        "/staff/settings/referral-partner-defaults/history/",
        WEBHOOKS,
        DELIVERIES,
        HOSTED_FORMS,
        "/staff/settings/partner-center/",
        "/staff/settings/resources/",
        API_KEYS,
        "/staff/settings/locked-logins/",
    ]


# --- Webhooks -----------------------------------------------------------------------------


def test_add_an_endpoint_with_a_random_secret(staff_client):
    response = staff_client.post(
        "/staff/settings/webhooks/new/",
        {
            "url": "https://hooks.shop.example/rp",
            "description": "Shop",
            "events": ["commission.created", "payout.made"],
            "is_active": "on",
        },
    )

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/staff/settings/webhooks/{endpoint.pk}/"
    assert (endpoint.url, endpoint.events, endpoint.is_active) == (
        "https://hooks.shop.example/rp",
        ["commission.created", "payout.made"],
        True,
    )
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 30
    page = staff_client.get(response["Location"]).content.decode()
    assert f'value="{endpoint.secret}"' in page  # superuser: may view endpoints
    listed = staff_client.get(WEBHOOKS).content.decode()
    assert f'data-endpoint="{endpoint.pk}"' in listed


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "ftp://hooks.example/x", "events": ["payout.made"]}, "url"),
        ({"url": "https://hooks.example/x", "events": []}, "events"),
        ({"url": "https://hooks.example/x", "events": ["webhook.test"]}, "events"),
        (
            {"url": "https://hooks.example/x", "events": ["payout.made"], "new_secret": "short"},
            "new_secret",
        ),
    ],
    ids=["not-http", "no-events", "test-is-not-an-event-to-ask-for", "short-secret"],
)
def test_a_refused_endpoint_points_at_the_field_and_writes_nothing(staff_client, data, field):
    response = staff_client.post("/staff/settings/webhooks/new/", data)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert f'data-field="{field}"' in response.content.decode()  # in the error summary
    assert not WebhookEndpoint.objects.exists()


def test_change_an_endpoint_and_keep_its_secret(staff_client):
    endpoint = webhook_endpoint_create(
        url="https://a.example/h", events=["payout.made"], secret=SECRET
    )
    response = staff_client.post(
        f"/staff/settings/webhooks/{endpoint.pk}/",
        {"url": "https://b.example/h", "events": ["commission.clawed_back"], "new_secret": ""},
    )
    endpoint.refresh_from_db()
    assert response.status_code == 302
    assert (endpoint.url, endpoint.events, endpoint.secret, endpoint.is_active) == (
        "https://b.example/h",
        ["commission.clawed_back"],
        SECRET,
        False,  # the box was not ticked
    )


def test_a_new_secret(staff_client):
    endpoint = webhook_endpoint_create(
        url="https://a.example/h", events=["payout.made"], secret=SECRET
    )
    response = staff_client.post(f"/staff/settings/webhooks/{endpoint.pk}/secret/")
    endpoint.refresh_from_db()
    assert response.status_code == 302
    assert endpoint.secret != SECRET and endpoint.secret.startswith("whsec_")


@pytest.mark.parametrize(("answer", "delivered"), [(200, True), (500, False)])
def test_send_a_test_event(staff_client, settings, answer, delivered):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on this machine
    with webhook_receiver() as receiver:
        receiver.script[:] = [answer]
        endpoint = webhook_endpoint_create(
            url=receiver.url, events=["payout.made"], secret=SECRET, is_active=False
        )
        response = staff_client.post(f"/staff/settings/webhooks/{endpoint.pk}/test/", follow=True)

    (received,) = receiver.received  # once: a test is not retried
    assert received.headers["RP-Event"] == "webhook.test"
    assert documented_verifier()(SECRET, received.body, received.headers["RP-Signature"])
    assert json.loads(received.body)["type"] == "webhook.test"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event_type, delivery.attempts) == ("webhook.test", 1)
    assert delivery.status == ("delivered" if delivered else "failed")
    text = response.content.decode()
    if delivered:
        assert f"Test event delivered: {receiver.url} answered 200" in text
    else:
        assert "The test event was not delivered: HTTP 500." in text


def test_the_delivery_log_filters_and_sends_again(staff_client):
    endpoint = webhook_endpoint_create(
        url="https://a.example/h", events=["payout.made"], secret=SECRET
    )
    made = {}
    for status, attempts in [("failed", 10), ("pending", 2), ("pending", 0), ("delivered", 1)]:
        made[(status, attempts)] = WebhookDelivery.objects.create(
            uid=uuid.uuid4(),
            endpoint=endpoint,
            event_type="payout.made",
            subject_id=1,
            status=status,
            attempts=attempts,
            created_at=timezone.now(),
        )

    def listed(**query) -> set[int]:
        html = staff_client.get(DELIVERIES, query).content.decode()
        return {int(pk) for pk in re.findall(r'data-delivery="(\d+)"', html)}

    assert listed() == {d.pk for d in made.values()}
    assert listed(status="troubled") == {made[("failed", 10)].pk, made[("pending", 2)].pk}
    assert listed(status="delivered", endpoint=str(endpoint.pk)) == {made[("delivered", 1)].pk}

    failed = made[("failed", 10)]
    response = staff_client.post(f"{DELIVERIES}?status=troubled", {"delivery": [failed.pk]})
    assert response.status_code == 302
    assert response["Location"] == f"{DELIVERIES}?status=troubled"
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)


# --- Hosted forms ---------------------------------------------------------------------------


def test_add_a_hosted_form_and_see_how_to_use_it(staff_client):
    response = staff_client.post(
        "/staff/settings/hosted-forms/new/",
        {
            "code": "Newsletter",
            "name": "Newsletter",
            "honeypot_field": "website",
            "is_active": "on",
        },
    )
    hosted_form = HostedForm.objects.get()
    assert response.status_code == 302
    assert hosted_form.code == "newsletter"
    page = staff_client.get(response["Location"]).content.decode()
    assert 'value="http://127.0.0.1:8000/f/newsletter/"' in page
    assert "action=&quot;http://127.0.0.1:8000/f/newsletter/&quot;" in page or (
        'action="http://127.0.0.1:8000/f/newsletter/"' in page
    )


def test_a_refused_hosted_form_points_at_the_field_and_writes_nothing(staff_client):
    response = staff_client.post(
        "/staff/settings/hosted-forms/new/",
        {
            "code": "join",
            "name": "Join",
            "honeypot_field": "website",
            "thank_you_url": "https://elsewhere.example/thanks",
        },
    )
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["thank_you_url"]
    assert 'data-field="thank_you_url"' in response.content.decode()
    assert not HostedForm.objects.exists()


# --- API keys ---------------------------------------------------------------------------------


def test_a_new_api_key_is_shown_once_and_works(staff_client, client):
    response = staff_client.post(API_KEYS, {"name": "shop"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw_key = response.context["raw_key"]
    key = ApiKey.objects.get()
    assert key.key_hash == api_key_hash(raw_key) and raw_key not in key.key_hash
    assert f'value="{raw_key}"' in response.content.decode()
    assert raw_key not in staff_client.get(API_KEYS).content.decode()  # once
    answer = client.get("/api/v1/partners/", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert answer.status_code == 200


def test_an_api_key_needs_a_name(staff_client):
    response = staff_client.post(API_KEYS, {"name": ""})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["name"]
    assert not ApiKey.objects.exists()


def test_revoke_an_api_key(staff_client, client):
    key, raw_key = api_key_create(name="old shop")
    response = staff_client.post(f"{API_KEYS}{key.pk}/revoke/")
    key.refresh_from_db()
    assert response.status_code == 302 and key.revoked_at is not None
    answer = client.get("/api/v1/partners/", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert answer.status_code == 401


# --- Who may do what ----------------------------------------------------------------------------


def test_staff_without_the_permissions_may_look_but_not_change(client):
    endpoint = webhook_endpoint_create(
        url="https://a.example/h", events=["payout.made"], secret=SECRET
    )
    key, _ = api_key_create(name="shop")
    before = (rows(WebhookEndpoint), rows(HostedForm), rows(ApiKey), rows(WebhookDelivery))
    staff_with(client)

    for url in (WEBHOOKS, DELIVERIES, HOSTED_FORMS, API_KEYS):
        assert client.get(url).status_code == 200, url
    for url in (
        "/staff/settings/webhooks/new/",
        f"/staff/settings/webhooks/{endpoint.pk}/",
        "/staff/settings/hosted-forms/new/",
    ):
        assert client.get(url).status_code == 403, url
    for url, data in [
        ("/staff/settings/webhooks/new/", {"url": "https://x.example/", "events": ["payout.made"]}),
        (f"/staff/settings/webhooks/{endpoint.pk}/test/", {}),
        (f"/staff/settings/webhooks/{endpoint.pk}/secret/", {}),
        (DELIVERIES, {"delivery": ["1"]}),
        ("/staff/settings/hosted-forms/new/", {"code": "x", "name": "x"}),
        (API_KEYS, {"name": "mine"}),
        (f"{API_KEYS}{key.pk}/revoke/", {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert SECRET not in client.get(WEBHOOKS).content.decode()
    assert (rows(WebhookEndpoint), rows(HostedForm), rows(ApiKey), rows(WebhookDelivery)) == before


def test_the_secret_is_shown_only_to_staff_who_may_view_endpoints(client):
    endpoint = webhook_endpoint_create(
        url="https://a.example/h", events=["payout.made"], secret=SECRET
    )
    url = f"/staff/settings/webhooks/{endpoint.pk}/"
    staff_with(client, "commissions.change_webhookendpoint")
    assert SECRET not in client.get(url).content.decode()
    staff_with(client, "commissions.change_webhookendpoint", "commissions.view_webhookendpoint")
    assert SECRET in client.get(url).content.decode()
