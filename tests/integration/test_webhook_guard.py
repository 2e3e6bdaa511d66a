"""Webhooks go to public internet addresses only (issue 21, finding 2: SSRF).

Staff chose the URL and the worker POSTed to it, so a webhook could reach Redis, PostgreSQL,
the cloud's metadata service or the app itself from inside the merchant's network, and show
the reply in the delivery log. Refused when an endpoint is saved, and again when a delivery
connects, on the address actually connected to (commissions/webhook_guard.py).
"""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError

from commissions.models import WebhookDelivery, WebhookEndpoint
from commissions.webhook_guard import address_refusal
from commissions.webhooks import webhook_endpoint_create
from tests.integration.test_webhooks import CREATED, SECRET, jane, sell  # noqa: F401
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db

INTERNAL = [
    ("http://127.0.0.1:6379/", "loopback"),
    ("http://localhost:5432/", "loopback"),  # a name that resolves to 127.0.0.1
    ("http://[::1]:6379/", "loopback"),
    ("http://0.0.0.0:6379/", "unspecified"),
    ("http://[::]:6379/", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.0.0.5/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://100.64.0.1/hook", "non-public"),  # carrier-grade NAT
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://[::ffff:127.0.0.1]:6379/", "loopback"),  # IPv4-mapped
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize(("url", "kind"), INTERNAL, ids=[url for url, _ in INTERNAL])
def test_an_endpoint_on_an_internal_address_is_refused_when_saved(url, kind):
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(url=url, events=[CREATED], secret=SECRET)

    assert f"a {kind} address: webhooks go to public" in refused.value.message_dict["url"][0]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2001:4860:4860::8888", "93.184.215.14", "2a00:1450:4001::200e"]
)
def test_public_addresses_pass(address):
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_the_programs_own_site_is_refused_even_on_a_public_name(settings):
    settings.SITE_URL = "https://aff.shop.example"
    settings.ALLOWED_HOSTS = ["aff.shop.example", "partners.shop.example"]

    for url in ("https://aff.shop.example/api/v1/events/orders/", "https://partners.shop.example/"):
        with pytest.raises(ValidationError) as refused:
            webhook_endpoint_create(url=url, events=[CREATED], secret=SECRET)
        assert "own site" in refused.value.message_dict["url"][0]
    assert WebhookEndpoint.objects.count() == 0


def test_the_admin_refuses_the_metadata_service_and_writes_nothing(staff_client):
    response = staff_client.post(
        "/admin/commissions/webhookendpoint/add/",
        {"url": "http://169.254.169.254/latest/meta-data/", "events": [CREATED], "is_active": "on"},
    )

    assert response.status_code == 200
    assert "a link-local address" in response.text
    assert WebhookEndpoint.objects.count() == 0


def test_a_developer_may_allow_private_addresses(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True

    endpoint = webhook_endpoint_create(url="http://127.0.0.1:9/", events=[CREATED], secret=SECRET)

    assert endpoint.pk is not None


def rebinding(real, name: str, answers: list[str]):
    """A resolver where `name` answers each of `answers` in turn (the last one thereafter),
    as a hostile DNS server with a zero TTL does; other names resolve as usual."""

    def resolve(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, port or 0, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    return resolve


@pytest.mark.usefixtures("jane")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "rebind.test"])
def test_a_delivery_never_connects_to_an_internal_address_whatever_was_saved(
    api, settings, monkeypatch, host, django_capture_on_commit_callbacks
):
    """The endpoint was saved while the name looked public (or private addresses were
    allowed then); the receiver on 127.0.0.1 gets nothing and the log keeps no reply.

    `rebind.test` answers a public address to the first lookup and 127.0.0.1 to every later
    one: a guard that checked one lookup and let the connection make another would post to
    127.0.0.1. The one lookup here is the public address, and the connection goes there (it
    fails or answers, never reaching the receiver)."""
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    resolver = rebinding(socket.getaddrinfo, "rebind.test", ["8.8.8.8", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        endpoint = webhook_endpoint_create(
            url=f"http://{host}:{port}/hooks/", events=[CREATED], secret=SECRET
        )
        settings.WEBHOOK_ALLOW_PRIVATE = False
        with django_capture_on_commit_callbacks(execute=True):
            sell(api)

    assert receiver.received == []
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "failed"
    [entry] = delivery.log
    assert entry["status"] is None and entry["response"] == ""
    if host != "rebind.test":
        assert entry["error"].startswith(f"Refused: {host}")
        assert "a loopback address" in entry["error"]
