"""Credit on customer payment (SPEC §10 "Credit timing"): payment events, the lines'
`credited`, ledgers by the payment's date, refunds of such orders, the importer."""

import json
import threading
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from rest_framework.test import APIClient

from commissions.ledger import partner_ledger
from commissions.lifecycle import commissions_reject
from commissions.models import Commission, Event, Order, OrderPayment, PayoutMethod, Refund
from commissions.partner_figures import partners_with_figures
from commissions.payouts import payout_batch_create
from partners.models import CreditOn, Enrollment, Partner, ProductRate, ProductRateLevel
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

D = Decimal
ORDERS, PAYMENTS, REFUNDS = (
    "/api/v1/events/orders/",
    "/api/v1/events/payments/",
    "/api/v1/events/refunds/",
)
DAY = "2026-03-0{}T10:00:00Z"


def setup_shop(credit_on=CreditOn.PAYMENT):
    """Two levels of sale percent: the sale partner 10 %, its parent 5 %."""
    defaults_update(
        data={"levels": 2, "payout_on_sale": True, "payout_percent": True, "hold_days": 0},
        acting_user=None,
    )
    program = ProgramFactory(
        priority=1,
        levels=2,
        payout_on_sale=True,
        payout_percent=True,
        credit_on=credit_on,
        rates={1: {"sale_percent": D("10")}, 2: {"sale_percent": D("5")}},
    )
    PartnerFactory(code="salesrep", parent=PartnerFactory(code="mother"), program=program)
    return program


def order(api, event_id="order-1", day=1):
    """Items 1,000.00 and tax 100.00: base 1,000.00, total 1,100.00; salesrep's line 100.00,
    mother's 50.00."""
    body = {
        "event_id": event_id,
        "contact": {"email": "ada@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "1000.00"}],
        "tax": "100.00",
        "sale_partner": "salesrep",
        "occurred_at": DAY.format(day),
    }
    response = api.post(ORDERS, body, format="json")
    assert response.status_code == 201, response.data
    return response.json()


def pay(api, event_id, amount, day, order_id="order-1"):
    body = {"event_id": event_id, "order_id": order_id, "amount": amount}
    return api.post(PAYMENTS, {**body, "occurred_at": DAY.format(day)}, format="json")


def refund(api, event_id, amount, day, order_id="order-1"):
    body = {"event_id": event_id, "order_id": order_id, "amount": amount}
    return api.post(REFUNDS, {**body, "occurred_at": DAY.format(day)}, format="json")


def credits(response) -> dict:
    assert response.status_code == 201, response.data
    return {c["partner"]: c["amount"] for c in response.json()["credits"]}


def clawbacks(response) -> dict:
    assert response.status_code == 201, response.data
    return {c["partner"]: c["amount"] for c in response.json()["clawbacks"]}


def line(code: str) -> Commission:
    return Commission.objects.get(partner__code=code, entry="commission")


def state() -> dict:
    """Every row a payment or refund can write."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Event, Order, OrderPayment, Refund, Commission)
    }


@pytest.mark.django_db
def test_an_order_paid_in_three_parts_and_refunded_in_two(api):
    """The worked example. Lines: salesrep 10 % of 1,000.00 = 100.00, mother 5 % = 50.00;
    the order's total (what the customer pays) is 1,100.00.

    day 1  order: nothing credited.
    day 1  payment 300.00: salesrep 100 x 300/1100 = 27.2727 -> 27.27,
                          mother    50 x 300/1100 = 13.6363 -> 13.64.
    day 2  payment 500.00: salesrep 100 x 500/1100 = 45.4545 -> 45.45,
                          mother    50 x 500/1100 = 22.7272 -> 22.73.
           credited so far: salesrep 72.72, mother 36.37; paid 800.00.
    day 3  refund 200.00 (of the 800.00 paid): salesrep 72.72 x 200/800 = 18.18,
                                             mother    36.37 x 200/800 = 9.0925 -> 9.09.
    day 4  payment 300.00 completes the total (1,100.00): what is left of each line,
           salesrep 100 - 72.72 = 27.28, mother 50 - 36.37 = 13.63.
    day 5  refund 900.00 completes what was paid (200 + 900 = 1,100): what is left
           credited, salesrep 100 - 18.18 = 81.82, mother 50 - 9.09 = 40.91.
    """
    setup_shop()
    body = order(api)
    # The order answers the lines in full; nothing is credited yet.
    assert [(c["partner"], c["amount"]) for c in body["commissions"]] == [
        ("salesrep", "100.00"),
        ("mother", "50.00"),
    ]
    assert (line("salesrep").credited, line("mother").credited) == (D("0.00"), D("0.00"))

    first = pay(api, "pay-1", "300.00", day=1)
    assert first.json() == {
        "event_id": "pay-1",
        "order_id": "order-1",
        "paid": "300.00",
        "credits": [
            {"partner": "salesrep", "level": 1, "kind": "sale", "amount": "27.27"},
            {"partner": "mother", "level": 2, "kind": "sale", "amount": "13.64"},
        ],
        "duplicate": False,
    }
    assert credits(pay(api, "pay-2", "500.00", day=2)) == {"salesrep": "45.45", "mother": "22.73"}
    assert (line("salesrep").credited, line("mother").credited) == (D("72.72"), D("36.37"))

    assert clawbacks(refund(api, "refund-1", "200.00", day=3)) == {
        "salesrep": "-18.18",
        "mother": "-9.09",
    }
    assert credits(pay(api, "pay-3", "300.00", day=4)) == {"salesrep": "27.28", "mother": "13.63"}
    assert clawbacks(refund(api, "refund-2", "900.00", day=5)) == {
        "salesrep": "-81.82",
        "mother": "-40.91",
    }

    # The commission resource: the line in full, and what was credited of it.
    rows = api.get("/api/v1/commissions/?partner=salesrep&entry=commission").json()["results"]
    assert [(r["amount"], r["credited"]) for r in rows] == [("100.00", "100.00")]
    # The ledger counts each credit and clawback on its own day, never the line itself.
    partner = line("salesrep").partner
    by_day = {
        n: partner_ledger(partner, start=date(2026, 3, n), end=date(2026, 3, n), currency="USD")
        for n in range(1, 6)
    }
    assert [(by_day[n].earned, by_day[n].clawbacks) for n in range(1, 6)] == [
        (D("27.27"), D("0.00")),
        (D("45.45"), D("0.00")),
        (D("0.00"), D("18.18")),
        (D("27.28"), D("0.00")),
        (D("0.00"), D("81.82")),
    ]
    ledger = api.get("/api/v1/partners/salesrep/ledger/").json()
    assert (ledger["earned"], ledger["clawbacks"], ledger["ending_balance"]) == (
        "100.00",
        "100.00",
        "0.00",
    )
    assert Order.objects.get().paid == D("1100.00")


@pytest.mark.django_db
def test_the_ledger_counts_what_was_credited_on_the_payments_date(api):
    setup_shop()
    order(api, day=1)
    # 550.00 of 1,100.00 on day 3: salesrep 100 x 550/1100 = 50.00.
    credits(pay(api, "pay-1", "550.00", day=3))

    day_one = api.get("/api/v1/partners/salesrep/ledger/?start=2026-03-01&end=2026-03-01").json()
    day_three = api.get("/api/v1/partners/salesrep/ledger/?start=2026-03-03&end=2026-03-03").json()
    assert (day_one["earned"], day_one["ending_balance"], day_one["entries"]) == (
        "0.00",
        "0.00",
        [],
    )
    assert (day_three["beginning_balance"], day_three["earned"], day_three["ending_balance"]) == (
        "0.00",
        "50.00",
        "50.00",
    )
    assert [(e["entry"], e["amount"]) for e in day_three["entries"]] == [("credit", "50.00")]
    # The staff partner list's balance and the report's totals count the same.
    figures = partners_with_figures(Partner.objects.filter(code="salesrep")).get()
    assert (figures.earned_total, figures.balance) == (D("50.00"), D("50.00"))


@pytest.mark.django_db
def test_a_payment_on_an_order_credited_in_full_credits_nothing(api):
    setup_shop(credit_on=CreditOn.ORDER)
    order(api)
    before = list(Commission.objects.order_by("pk").values())

    response = pay(api, "pay-1", "1100.00", day=2)

    assert response.status_code == 201
    assert response.json()["credits"] == []
    assert OrderPayment.objects.get().amount == D("1100.00")
    assert list(Commission.objects.order_by("pk").values()) == before
    rows = api.get("/api/v1/commissions/?partner=salesrep").json()["results"]
    assert [(r["amount"], r["credited"]) for r in rows] == [("100.00", "100.00")]


@pytest.mark.django_db
def test_a_repeat_answers_the_first_result(api):
    setup_shop()
    order(api)
    first = pay(api, "pay-1", "300.00", day=2)
    again = pay(api, "pay-1", "500.00", day=3)

    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    assert (OrderPayment.objects.count(), Commission.objects.filter(entry="credit").count()) == (
        1,
        2,
    )
    # A repeat whose body no longer validates is answered all the same.
    bad = api.post(PAYMENTS, {"event_id": "pay-1", "amount": "x"}, format="json")
    assert (bad.status_code, bad.json()["duplicate"]) == (200, True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"order_id": "order-1", "amount": "1100.01"}, 400, "amount"),
        ({"order_id": "order-1", "amount": "0"}, 400, "amount"),
        ({"order_id": "order-1", "amount": "-1"}, 400, "amount"),
        ({"order_id": "order-1", "amount": "lots"}, 400, "amount"),
        ({"order_id": "order-1"}, 400, "amount"),
        ({"amount": "10.00"}, 400, "order_id"),
        ({"order_id": "order-1", "amount": "1.00", "occurred_at": "soon"}, 400, "occurred_at"),
        ({"order_id": "no-such-order", "amount": "1.00"}, 404, "order_id"),
    ],
    ids=["beyond-total", "zero", "negative", "not-a-number", "no-amount", "no-order", "bad-date",
         "unknown-order"],
)  # fmt: skip
def test_refused_payments_write_nothing(api, body, status, field):
    setup_shop()
    order(api)
    before = state()

    response = api.post(PAYMENTS, {"event_id": "pay-x", **body}, format="json")

    assert response.status_code == status, response.data
    assert field in response.json()
    assert state() == before


@pytest.mark.django_db
def test_payments_beyond_what_is_left_and_refunds_beyond_what_was_paid_are_refused(api):
    setup_shop()
    order(api)
    credits(pay(api, "pay-1", "800.00", day=2))
    before = state()

    too_much = pay(api, "pay-2", "300.01", day=3)
    refund_too_much = refund(api, "refund-1", "800.01", day=3)

    assert (too_much.status_code, refund_too_much.status_code) == (400, 400)
    assert "300.00" in too_much.json()["amount"][0]
    assert "800.00" in refund_too_much.json()["amount"][0]
    assert state() == before
    # A refund without an amount takes back all that was paid (800.00 of 1,100.00), so
    # each line loses all it was credited: salesrep 100 x 800/1100 = 72.727 -> 72.73,
    # mother 50 x 800/1100 = 36.363 -> 36.36.
    everything = {"event_id": "refund-2", "order_id": "order-1"}
    assert clawbacks(api.post(REFUNDS, everything, format="json")) == {
        "salesrep": "-72.73",
        "mother": "-36.36",
    }


@pytest.mark.django_db
def test_an_order_not_yet_paid_cannot_be_refunded(api):
    setup_shop()
    order(api)
    before = state()

    response = refund(api, "refund-1", "10.00", day=2)

    assert response.status_code == 400
    assert "paid" in response.json()["amount"][0]
    assert state() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_credit_once_and_never_beyond_the_total():
    """Eight copies of one payment and four payments of 400.00 at once on a total of
    1,100.00: one copy records, and two of the four fit (800.00), the others are refused."""
    setup_shop()
    _, raw_key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    order(client)
    bodies = [{"event_id": "pay-same", "amount": "100.00"}] * 8
    bodies += [{"event_id": f"pay-{n}", "amount": "400.00"} for n in range(4)]
    barrier = threading.Barrier(len(bodies))
    answers = []

    def send(body):
        mine = APIClient()
        mine.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait()
            response = mine.post(PAYMENTS, {**body, "order_id": "order-1"}, format="json")
            answers.append((body["event_id"], response.status_code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    same = sorted(status for event_id, status in answers if event_id == "pay-same")
    assert same == [200] * 7 + [201]
    others = sorted(status for event_id, status in answers if event_id != "pay-same")
    assert others == [201, 201, 400, 400]
    assert Order.objects.get().paid == D("900.00")
    assert OrderPayment.objects.count() == 3
    # salesrep: 100 x 100/1100 = 9.09, 100 x 400/1100 = 36.36 twice: 81.81 credited.
    assert line("salesrep").credited == D("81.81")
    credited = sum(
        Commission.objects.filter(partner__code="salesrep", entry="credit").values_list(
            "amount", flat=True
        )
    )
    assert credited == D("81.81")


@pytest.mark.django_db
def test_the_program_api_reads_and_writes_credit_on(api):
    program = setup_shop(credit_on=CreditOn.ORDER)
    url = f"/api/v1/programs/{program.pk}/"
    assert api.get(url).json()["credit_on"] == "order"

    response = api.patch(url, {"credit_on": "payment"}, format="json")
    bad = api.patch(url, {"credit_on": "weekly"}, format="json")

    assert response.status_code == 200, response.data
    assert (bad.status_code, list(bad.json())) == (400, ["credit_on"])
    program.refresh_from_db()
    assert program.credit_on == CreditOn.PAYMENT


@pytest.mark.django_db
def test_switching_a_program_to_payment_leaves_recorded_lines_as_they_were(api):
    program = setup_shop(credit_on=CreditOn.ORDER)
    order(api)
    api.patch(f"/api/v1/programs/{program.pk}/", {"credit_on": "payment"}, format="json")
    order(api, event_id="order-2", day=2)

    assert list(Order.objects.order_by("order_id").values_list("order_id", flat=True)) == [
        "order-1",
        "order-2",
    ]
    lines = Commission.objects.filter(partner__code="salesrep").order_by("pk")
    assert [c.credited for c in lines] == [None, D("0.00")]


@pytest.mark.django_db
def test_the_staff_program_page_edits_credit_on(staff_client):
    program = setup_shop(credit_on=CreditOn.ORDER)
    page = staff_client.get(f"/staff/programs/{program.pk}/")
    assert "Credits commissions on order (in full)" in page.content.decode()
    form = staff_client.get(f"/staff/programs/{program.pk}/edit/")
    assert 'name="credit_on"' in form.content.decode()

    # The form as the page fills it in, with the timing changed.
    posted = {f.html_name: "" if f.value() is None else f.value() for f in form.context["form"]}
    posted["credit_on"] = "payment"
    response = staff_client.post(f"/staff/programs/{program.pk}/edit/", posted)

    assert response.status_code == 302, response.context["form"].errors
    program.refresh_from_db()
    assert program.credit_on == CreditOn.PAYMENT
    page = staff_client.get(f"/staff/programs/{program.pk}/").content.decode()
    assert "Credits commissions on customer payment" in page


@pytest.mark.django_db
def test_partners_may_not_write_programs_or_payments(client, api):
    """The program page is staff-only; a payment needs an API key or staff."""
    program = setup_shop()
    assert client.get(f"/staff/programs/{program.pk}/edit/").status_code == 302  # to the login
    response = client.post(
        PAYMENTS, {"event_id": "p", "order_id": "order-1", "amount": "1.00"}, "application/json"
    )
    assert response.status_code in (401, 403)
    assert not OrderPayment.objects.exists()


@pytest.mark.django_db
def test_the_importer_records_payment_lines(tmp_path):
    setup_shop()
    lines = [
        {
            "kind": "order",
            "event_id": "order-1",
            "contact": {"email": "ada@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": "1000.00"}],
            "tax": "100.00",
            "sale_partner": "salesrep",
            "occurred_at": DAY.format(1),
        },
        {"kind": "payment", "event_id": "p1", "order_id": "order-1", "amount": "550.00"},
        {"kind": "payment", "event_id": "p2", "order_id": "order-1", "amount": "600.00"},
        {"kind": "payment", "event_id": "p3", "order_id": "order-9", "amount": "1.00"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out, err = StringIO(), StringIO()

    with pytest.raises(Exception):  # noqa: B017 - the command exits non-zero on a failed line
        call_command("import_events", str(path), stdout=out, stderr=err)

    assert out.getvalue().splitlines()[0] == "4 lines: 2 recorded, 0 already recorded, 2 failed."
    assert "line 3" in err.getvalue() and "line 4" in err.getvalue()
    # p1: salesrep 100 x 550/1100 = 50.00; p2 (600.00 of the 550.00 left) is refused.
    assert line("salesrep").credited == D("50.00")
    assert Order.objects.get().paid == D("550.00")


@pytest.mark.django_db
def test_a_payout_pays_only_what_was_credited(api):
    setup_shop()
    order(api, day=1)
    # 550.00 of 1,100.00: salesrep 100 x 550/1100 = 50.00, mother 50 x 550/1100 = 25.00.
    credits(pay(api, "pay-1", "550.00", day=2))

    batch = payout_batch_create(
        start=date(2026, 3, 1), end=date(2026, 3, 31), method=PayoutMethod.EARNED_IN_RANGE
    )

    paid = {p.partner.code: p.amount for p in batch.payments.select_related("partner")}
    assert paid == {"salesrep": D("50.00"), "mother": D("25.00")}
    # The lines themselves stay unpaid: only their credits are ledger entries.
    assert not Commission.objects.filter(entry="commission", payment__isnull=False).exists()
    # The rest, credited later, is owed again.
    credits(pay(api, "pay-2", "550.00", day=3))
    assert partner_ledger(line("salesrep").partner, currency="USD").ending_balance == D("50.00")


@pytest.mark.django_db
def test_a_rejected_line_loses_what_was_credited_and_is_credited_no_more(api):
    setup_shop()
    order(api, day=1)
    # salesrep 100 x 440/1100 = 40.00 credited, then rejected: -40.00.
    credits(pay(api, "pay-1", "440.00", day=2))
    [rejection] = commissions_reject(ids=[line("salesrep").pk], reason="Fraud")

    assert rejection.amount == D("-40.00")
    # The rest of the payments credit mother only (50 - 20.00 = 30.00 completes her line).
    assert credits(pay(api, "pay-2", "660.00", day=3)) == {"mother": "30.00"}
    ledger = partner_ledger(line("salesrep").partner, currency="USD")
    assert (ledger.earned, ledger.rejections, ledger.ending_balance) == (
        D("40.00"),
        D("40.00"),
        D("0.00"),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("levels", [1, 2], ids=["one-line", "two-lines"])
def test_a_payment_costs_the_same_queries_whatever_its_lines(
    api, levels, django_assert_max_num_queries
):
    setup_shop()
    if levels == 1:
        defaults_update(data={"levels": 1}, acting_user=None)
    order(api)

    # The key; BEGIN; the event; the order (locked); its lines; the payment; the credits;
    # the lines' credited; the order's paid; the partners' codes; the result; COMMIT.
    with django_assert_max_num_queries(13):
        response = pay(api, "pay-1", "300.00", day=2)

    assert len(credits(response)) == levels


@pytest.mark.django_db
def test_the_order_page_shows_what_was_credited(api, staff_client):
    setup_shop()
    order(api)
    # 550.00 of 1,100.00: salesrep 50.00 and mother 25.00 credited, 75.00 earned.
    credits(pay(api, "pay-1", "550.00", day=2))

    page = staff_client.get("/staff/orders/order-1/").content.decode()

    assert 'id="credits"' in page
    assert "550.00 of 1,100.00 USD paid" in page
    assert "50.00 credited" in page
    assert "2 lines, 75.00 USD" in page
    # What may be refunded is what was paid: 550.00 - 100.00 = 450.00.
    clawbacks(refund(api, "refund-1", "100.00", day=3))
    page = staff_client.get("/staff/orders/order-1/").content.decode()
    assert "Left to refund: 450.00 USD" in page


@pytest.mark.django_db
def test_an_order_paid_by_two_programs_credits_only_the_lines_of_the_one_on_payment(api):
    """salesrep is enrolled in "Kits" (priority 1, credits at the order, pays only sku KIT:
    20 %) and "Main" (credits on payment, 10 %): the KIT item (500.00) earns 100.00 at the
    order, the other (500.00) earns 50.00, credited as the customer pays. Total 1,000.00;
    a payment of 400.00 credits 50 x 400/1000 = 20.00; a refund of 100.00 (of the 400.00
    paid) takes back 100 x 100/1000 = 10.00 from the Kits line and 20 x 100/400 = 5.00
    from the Main line."""
    main = setup_shop()
    kits = ProgramFactory(
        priority=0, levels=2, payout_on_sale=True, payout_percent=True, pays_default=False
    )
    product = ProductRate.objects.create(program=kits, sku="KIT")
    ProductRateLevel.objects.create(product_rate=product, level=1, sale_percent=D("20"))
    Enrollment.objects.create(partner=Partner.objects.get(code="salesrep"), program=kits)
    body = {
        "event_id": "order-1",
        "contact": {"email": "ada@example.com"},
        "items": [
            {"sku": "KIT", "quantity": 1, "unit_price": "500.00"},
            {"sku": "B", "quantity": 1, "unit_price": "500.00"},
        ],
        "sale_partner": "salesrep",
        "occurred_at": DAY.format(1),
    }
    assert api.post(ORDERS, body, format="json").status_code == 201
    lines = {c.program_id: c for c in Commission.objects.filter(partner__code="salesrep", level=1)}
    assert (lines[kits.pk].amount, lines[kits.pk].credited) == (D("100.00"), None)
    assert (lines[main.pk].amount, lines[main.pk].credited) == (D("50.00"), D("0.00"))

    assert credits(pay(api, "pay-1", "400.00", day=2)) == {"salesrep": "20.00", "mother": "10.00"}
    taken = clawbacks(refund(api, "refund-1", "100.00", day=3))

    assert sorted(
        Commission.objects.filter(entry="clawback", partner__code="salesrep").values_list(
            "amount", flat=True
        )
    ) == [D("-10.00"), D("-5.00")]
    assert taken["mother"] == "-2.50"
