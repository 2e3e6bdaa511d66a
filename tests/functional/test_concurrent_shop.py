"""A shop sending orders in parallel, over HTTP against a live server (issue 14).

On the embedded default (SQLite, `make run`) concurrent events queue for the write lock
(WAL, IMMEDIATE transactions, a busy timeout) instead of failing with "database is
locked": every order is recorded, none answers 503, and the ledger adds up to the cent.
The same test runs on PostgreSQL.
"""

import threading
from decimal import Decimal

import pytest
import requests

from commissions.models import Commission, Order
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

CLIENTS, ORDERS_EACH = 8, 6
MONEY = r"^-?\d+\.\d{2}$"


@pytest.mark.django_db(transaction=True)
def test_eight_clients_sending_six_orders_each_at_once_are_all_recorded(live_server):
    # Leads and sales, two levels: each order of 33.33 pays 10 % (3.33) and 1.11 to the
    # seller, 5 % (1.67: 1.6665 rounded half-up) to her parent, and a 0.50 lead.
    defaults_update(data={"payout_on_lead": True, "payout_percent": True}, acting_user=None)
    ProgramFactory(
        priority=1,
        payout_on_lead=True,
        payout_percent=True,
        rates={
            1: {"sale_percent": Decimal("10"), "sale_amount": Decimal("1.11"),
                "lead_amount": Decimal("0.50")},
            2: {"sale_percent": Decimal("5")},
        },
    )  # fmt: skip
    PartnerFactory(code="seller", parent=PartnerFactory(code="parent"))
    _, key = api_key_create(name="shop")
    barrier = threading.Barrier(CLIENTS)
    answers: list[tuple[int, dict]] = []

    def shop(client: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {key}"
            barrier.wait()
            for n in range(ORDERS_EACH):
                response = session.post(
                    f"{live_server.url}/api/v1/events/orders/",
                    json={
                        "event_id": f"o-{client}-{n}",
                        "contact": {"email": f"buyer{client}-{n}@example.com"},
                        "items": [{"sku": "A", "quantity": 1, "unit_price": "33.33"}],
                        "sale_partner": "seller",
                        "lead_partner": "seller",
                    },
                    timeout=120,
                )
                answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=shop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in answers) == [201] * CLIENTS * ORDERS_EACH
    assert Order.objects.count() == 48
    per_order = {("sale", 1): "4.44", ("sale", 2): "1.67", ("lead", 1): "0.50"}
    for _, body in answers:
        lines = {(c["kind"], c["level"]): c["amount"] for c in body["commissions"]}
        assert lines == per_order
    ledger = requests.get(
        f"{live_server.url}/api/v1/partners/seller/ledger/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    assert (ledger["earned"], ledger["ending_balance"]) == ("237.12", "237.12")  # 48 x 4.94
    assert sum(Commission.objects.values_list("amount", flat=True)) == Decimal("317.28")
