"""Concurrent copies of one event, and the cost of an event (SPEC §6, issue 4)."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from commissions.models import Commission, Contact, Event, Order, Referral
from partners.services import api_key_create, defaults_update
from tests.factories import PartnerFactory, ProgramFactory

ORDERS = "/api/v1/events/orders/"


def payload(event_id="order-1", items=1, **fields):
    return {
        "event_id": event_id,
        "contact": {"email": "ada@example.com"},
        "items": [{"sku": f"S{n}", "quantity": 1, "unit_price": "10.00"} for n in range(items)],
        "sale_partner": "salesrep",
        **fields,
    }


def three_levels():
    defaults_update(data={"levels": 3, "payout_on_lead": True}, acting_user=None)
    ProgramFactory(
        priority=1,
        levels=3,
        payout_on_lead=True,
        rates={n: {"sale_amount": Decimal("3"), "lead_amount": Decimal("1")} for n in (1, 2, 3)},
    )
    top = PartnerFactory(code="grandma")
    PartnerFactory(code="salesrep", parent=PartnerFactory(code="mother", parent=top))


@pytest.mark.django_db(transaction=True)
def test_sixteen_copies_at_once_make_one_order():
    three_levels()
    _, raw_key = api_key_create(name="shop")
    barrier = threading.Barrier(16)
    answers = []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait()
            response = client.post(ORDERS, payload(), format="json")
            answers.append((response.status_code, response.json()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 15 + [201]
    assert all(body["duplicate"] is (status == 200) for status, body in answers)
    first = next(body for status, body in answers if status == 201)
    assert all({**body, "duplicate": False} == first for _, body in answers)
    assert (Event.objects.count(), Order.objects.count(), Contact.objects.count()) == (1, 1, 1)
    assert Commission.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("history", "items"),
    [(1, 1), (500, 1), (1, 100), (500, 100)],
    ids=["1-entry-1-item", "500-entries-1-item", "1-entry-100-items", "500-entries-100-items"],
)
def test_an_order_costs_the_same_queries_whatever_the_history_and_items(api, history, items):
    three_levels()
    defaults_update(
        data={"tracking_method": "history_and_cookies", "use_ip_address": True}, acting_user=None
    )
    contact = Contact.objects.create(email="ada@example.com")
    partners = [PartnerFactory() for _ in range(5)]
    start = timezone.now() - timedelta(days=30)
    Referral.objects.bulk_create(
        Referral(
            contact=contact,
            partner=partners[n % 5],
            source="manual",
            set_at=start + timedelta(minutes=n),
        )
        for n in range(history)
    )
    body = payload(items=items, sale_partner=None, ip="198.51.100.1")
    body.pop("sale_partner")

    with CaptureQueriesContext(connection) as queries:
        response = api.post(ORDERS, body, format="json")

    assert response.status_code == 201, response.data
    assert response.json()["sale_partner"] is not None
    assert len(queries) == 22, "\n".join(q["sql"][:120] for q in queries)
