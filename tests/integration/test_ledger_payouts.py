"""The ledger and payout batches, exact to the cent (SPEC §5.5)."""

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connections

from commissions.ledger import partner_ledger
from commissions.models import Commission, Payment, PayoutBatch
from commissions.payouts import payout_batch_create
from tests.factories import PartnerFactory, ProgramFactory

D = Decimal
ORDERS, REFUNDS = "/api/v1/events/orders/", "/api/v1/events/refunds/"
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
NOVEMBER = {"start": "2026-11-01", "end": "2026-11-30"}


def sell(api, event_id, day, price, partner="jane"):
    response = api.post(
        ORDERS,
        {
            "event_id": event_id,
            "occurred_at": f"{day}T12:00:00Z",
            "sale_partner": partner,
            "contact": {"email": "ada@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
        },
        format="json",
    )
    assert response.status_code == 201, response.data


def refund(api, event_id, order_id, day, amount=None):
    body = {"event_id": event_id, "order_id": order_id, "occurred_at": f"{day}T12:00:00Z"}
    if amount:
        body["amount"] = amount
    assert api.post(REFUNDS, body, format="json").status_code == 201


@pytest.fixture
def history(api, db):
    """Oct: +100, -25 (a quarter refunded), +20; paid 95 on Nov 2; Nov: +50, -20."""
    from partners.services.defaults import defaults_update

    defaults_update(data={"payout_amount": False, "payout_percent": True}, acting_user=None)
    ProgramFactory(
        priority=1, payout_amount=False, payout_percent=True, rates={1: {"sale_percent": D("10")}}
    )
    jane = PartnerFactory(code="jane")
    sell(api, "o1", "2026-10-05", "1000.00")
    refund(api, "r1", "o1", "2026-10-10", "250.00")
    sell(api, "o2", "2026-10-20", "200.00")
    payout_batch_create(
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        method="earned_in_range",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    sell(api, "o3", "2026-11-05", "500.00")
    refund(api, "r2", "o2", "2026-11-06")
    return jane


FIGURES = {
    "october": (OCTOBER, ("0.00", "120.00", "25.00", "0.00", "95.00")),
    "november": (NOVEMBER, ("95.00", "50.00", "20.00", "95.00", "30.00")),
    "all-time": ({}, ("0.00", "170.00", "45.00", "95.00", "30.00")),
}


@pytest.mark.django_db
@pytest.mark.parametrize("period", list(FIGURES))
def test_ledger_figures_are_exact(api, history, period):
    query, expected = FIGURES[period]

    body = api.get("/api/v1/partners/JANE/ledger/", query).json()

    assert (
        body["beginning_balance"],
        body["earned"],
        body["clawbacks"],
        body["payments"],
        body["ending_balance"],
    ) == expected
    summary = partner_ledger(
        history,
        start=date.fromisoformat(query["start"]) if query else None,
        end=date.fromisoformat(query["end"]) if query else None,
        currency="USD",
    )
    assert str(summary.ending_balance) == expected[-1]


@pytest.mark.django_db
def test_ledger_entries_in_time_order(api, history):
    body = api.get("/api/v1/partners/jane/ledger/", NOVEMBER).json()
    assert [(e["entry"], e["amount"], e["order_id"]) for e in body["entries"]] == [
        ("payment", "-95.00", None),
        ("commission", "50.00", "o3"),
        ("clawback", "-20.00", "o2"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [({"start": "2026-13-01"}, "start"), ({"start": "2026-11-02", "end": "2026-11-01"}, "end")],
    ids=["bad-date", "end-before-start"],
)
def test_bad_ledger_ranges_are_400(api, history, query, field):
    response = api.get("/api/v1/partners/jane/ledger/", query)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_a_batch_pays_positive_balances_over_the_minimum_only(api, db):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    for code in ("alice", "bobby", "carol"):
        PartnerFactory(code=code)
    sell(api, "a1", "2026-10-05", "10.00", "alice")
    sell(api, "a2", "2026-10-06", "10.00", "alice")  # alice: 20.00
    sell(api, "b1", "2026-10-05", "10.00", "bobby")  # bobby: 10.00, under the minimum
    sell(api, "c1", "2026-10-05", "10.00", "carol")
    refund(api, "c1-r", "c1", "2026-10-07")  # carol: 0.00

    batch = api.post(
        "/api/v1/payouts/",
        {**OCTOBER, "method": "earned_in_range", "minimum": "15.00"},
        format="json",
    )

    assert batch.status_code == 201, batch.data
    [payment] = batch.json()["payments"]
    # The fields of SPEC §6, and those issue 17 added.
    assert payment == {
        "partner": "alice",
        "amount": "20.00",
        "currency": "USD",
        "id": Payment.objects.get().pk,
        "status": "recorded",
        "reference": "",
        "payout_method": "",
    }
    assert batch.json()["status"] == "confirmed"
    assert batch.json()["total"] == "20.00"
    again = api.post("/api/v1/payouts/", {**OCTOBER, "method": "earned_in_range"}, format="json")
    assert [p["partner"] for p in again.json()["payments"]] == ["bobby"]  # alice was paid
    third = api.post("/api/v1/payouts/", {**OCTOBER, "method": "earned_in_range"}, format="json")
    assert third.json()["payments"] == []
    assert Payment.objects.count() == 2


@pytest.mark.django_db
def test_negative_balances_carry_forward(api, history):
    refund(api, "r3", "o3", "2026-11-07")  # November nets to -20.00 for jane
    batch = payout_batch_create(
        start=date(2026, 11, 1), end=date(2026, 11, 15), method="earned_in_range"
    )
    assert batch.payments.count() == 0
    sell(api, "o4", "2026-11-20", "300.00")  # +30.00
    paid = payout_batch_create(
        start=date(2026, 11, 16), end=date(2026, 11, 30), method="balance_plus_earned"
    )
    assert [(p.partner.code, p.amount) for p in paid.payments.all()] == [("jane", D("10.00"))]
    assert partner_ledger(history, currency="USD").ending_balance == D("0.00")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-10-31", "end": "2026-10-01", "method": "earned_in_range"}, "end"),
        ({**OCTOBER, "method": "everything"}, "method"),
        ({**OCTOBER, "method": "earned_in_range", "minimum": "-1"}, "minimum"),
        ({"end": "2026-10-31", "method": "earned_in_range"}, "start"),
    ],
    ids=["end-before-start", "unknown-method", "negative-minimum", "no-start"],
)
def test_bad_batches_are_refused_and_write_nothing(api, history, body, field):
    before = (
        PayoutBatch.objects.count(),
        Payment.objects.count(),
        list(Commission.objects.values_list("payment_id", flat=True)),
    )
    response = api.post("/api/v1/payouts/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    after = (
        PayoutBatch.objects.count(),
        Payment.objects.count(),
        list(Commission.objects.values_list("payment_id", flat=True)),
    )
    assert after == before


@pytest.mark.django_db(transaction=True)
def test_two_batches_at_once_never_pay_twice(api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    codes = [f"part{n:02d}" for n in range(20)]
    for code in codes:
        PartnerFactory(code=code)
        sell(api, f"o-{code}", "2026-10-05", "10.00", code)
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            payout_batch_create(
                start=date(2026, 10, 1), end=date(2026, 10, 31), method="balance_plus_earned"
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    paid = list(Payment.objects.values_list("partner__code", "amount"))
    assert sorted(paid) == [(code, D("10.00")) for code in codes]
    assert Commission.objects.filter(payment__isnull=True).count() == 0
    assert sum(b.total for b in PayoutBatch.objects.all()) == D("200.00")
