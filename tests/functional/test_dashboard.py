"""The staff dashboard (issue 20): its figures equal the ledger's over the same period, its
queries do not grow with the data, and the page shows what needs attention."""

import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commissions.dashboard import Period, owed_now, program_figures, top_partners
from commissions.ledger import ledger_totals
from commissions.models import (
    Commission,
    Contact,
    Event,
    Order,
    WebhookDelivery,
    WebhookEndpoint,
)
from commissions.money import ZERO
from commissions.payouts import payout_batch_create, payout_draft_create, payout_draft_discard
from partners.models import Partner
from partners.services.defaults import defaults_update
from tests.factories import (
    ClickFactory,
    ClickFlagFactory,
    PartnerFactory,
    PartnerSignupFactory,
    ProgramFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS, REFUNDS = "/api/v1/events/orders/", "/api/v1/events/refunds/"
DASHBOARD = "/staff/"


@pytest.fixture(autouse=True)
def _figures_worked_out_on_every_view(settings):
    settings.DASHBOARD_CACHE_SECONDS = 0


def at(day: date, hour: int = 12) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def post_order(api, event_id: str, day: date, price: str, **fields) -> None:
    response = api.post(
        ORDERS,
        {
            "event_id": event_id,
            "occurred_at": at(day, hour=fields.pop("hour", 12)),
            "contact": {"email": fields.pop("email", f"{event_id}@buyers.example")},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
            **fields,
        },
        format="json",
    )
    assert response.status_code == 201, response.data


def post_refund(api, event_id: str, order_id: str, day: date, amount: str | None) -> int:
    body = {"event_id": event_id, "order_id": order_id, "occurred_at": at(day, hour=18)}
    if amount:
        body["amount"] = amount
    return api.post(REFUNDS, body, format="json").status_code


# --- The figures equal the ledger's ------------------------------------------------------

JULY_1 = date(2026, 7, 1)
DAYS = 92  # July to September 2026


def random_history(api, seed: int) -> None:
    """Orders (some with a lead partner only, some with nobody), refunds of some of them
    (part or all), and payout batches of both methods, on random days of three months."""
    rng = random.Random(seed)
    defaults_update(data={"payout_amount": True, "payout_percent": True}, acting_user=None)
    ProgramFactory(
        priority=1,
        payout_amount=True,
        payout_percent=True,
        rates={
            1: {"sale_percent": D("12.5"), "sale_amount": D("1.10"), "lead_percent": D("3")},
            2: {"sale_percent": D("4.25")},
        },
    )
    top = PartnerFactory(code="top1")
    partners = [top, *PartnerFactory.create_batch(5, parent=top)]
    orders = []
    for n in range(40):
        day = JULY_1 + timedelta(days=rng.randrange(DAYS))
        price = f"{rng.randrange(1, 50_000) / 100:.2f}"
        who = rng.random()
        fields = {}
        if who < 0.6:
            fields["sale_partner"] = rng.choice(partners).code
        if 0.4 < who < 0.85:
            fields["lead_partner"] = rng.choice(partners).code
        post_order(api, f"o{n}", day, price, hour=rng.randrange(24), **fields)
        orders.append((f"o{n}", day, D(price)))
    for n, (order_id, day, price) in enumerate(rng.sample(orders, 12)):
        later = min(day + timedelta(days=rng.randrange(20)), JULY_1 + timedelta(days=DAYS - 1))
        amount = None if rng.random() < 0.4 else f"{price * D(rng.randrange(1, 100)) / 100:.2f}"
        assert post_refund(api, f"r{n}", order_id, later, amount) in (201, 400)
    for month in (7, 8):
        payout_batch_create(
            start=date(2026, month, 1),
            end=date(2026, month, 28),
            method=rng.choice(["earned_in_range", "balance_plus_earned"]),
            at=datetime(2026, month + 1, rng.randrange(1, 10), 9, tzinfo=UTC),
        )


def ledger_sums(period: Period) -> dict[str, Decimal]:
    """The ledger's earned, clawbacks and payments over every partner."""
    totals = ledger_totals(
        list(Partner.objects.values_list("pk", flat=True)), start=period.start, end=period.end
    )
    return {
        name: sum((getattr(summary, name) for summary in totals.values()), ZERO)
        for name in ("earned", "clawbacks", "payments")
    }


def referred_orders(period: Period) -> tuple[int, Decimal]:
    orders = [
        order
        for order in Order.objects.all()
        if period.start <= order.occurred_at.date() <= period.end
        and (order.sale_partner_id or order.lead_partner_id)
    ]
    return len(orders), sum((order.base for order in orders), ZERO)


PERIODS = [
    Period(date(2026, 7, 1), date(2026, 7, 31)),
    Period(date(2026, 8, 15), date(2026, 9, 13)),
    Period(date(2026, 9, 1), date(2026, 9, 30)),
    Period(date(2026, 7, 20), date(2026, 7, 26)),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_figures_equal_the_ledger_over_the_same_period(api, seed):
    random_history(api, seed)
    assert Commission.objects.filter(entry="clawback").exists()
    everyone = list(Partner.objects.values_list("pk", flat=True))
    all_time = ledger_totals(everyone, start=None, end=None)
    owed = sum((max(s.ending_balance, ZERO) for s in all_time.values()), ZERO)
    owing = sum(1 for s in all_time.values() if s.ending_balance > 0)

    for period in PERIODS:
        (figures,) = program_figures(period)
        for got, when in ((figures.now, period), (figures.before, period.previous())):
            ledger = ledger_sums(when)
            assert (got.earned, got.clawed_back, got.paid) == (
                ledger["earned"],
                ledger["clawbacks"],
                ledger["payments"],
            ), when
            assert (got.orders, got.revenue) == referred_orders(when), when
        assert (figures.owed.total, figures.owed.partners) == (owed, owing)
        # The chart's bars add up to the period's figures.
        assert sum((bar.earned for _, bar in figures.series), ZERO) == figures.now.earned
        assert sum((bar.revenue for _, bar in figures.series), ZERO) == figures.now.revenue
        assert sum(bar.orders for _, bar in figures.series) == figures.now.orders


def test_owed_counts_positive_balances_only(api):
    """A partner clawed back after being paid owes the merchant: that is not subtracted
    from what others are owed."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    PartnerFactory(code="alice")
    PartnerFactory(code="bob1")
    post_order(api, "a1", date(2026, 7, 1), "100.00", sale_partner="alice")
    payout_batch_create(start=date(2026, 7, 1), end=date(2026, 7, 31), method="earned_in_range")
    assert post_refund(api, "ra1", "a1", date(2026, 7, 2), None) == 201  # alice: -10
    post_order(api, "b1", date(2026, 7, 3), "100.00", sale_partner="bob1")  # bob: +10
    assert owed_now()["USD"].total == D("10.00")
    assert owed_now()["USD"].partners == 1


def test_the_page_shows_the_figures_and_the_change(staff_client, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    PartnerFactory(code="alice", name="Alice Example")
    post_order(api, "s1", date(2026, 9, 20), "1000.00", sale_partner="alice")
    post_order(api, "s2", date(2026, 10, 5), "1500.00", sale_partner="alice")
    post_order(api, "s3", date(2026, 10, 6), "1500.00", sale_partner="alice")
    post_order(api, "n1", date(2026, 10, 7), "99.00")  # nobody referred it

    response = staff_client.get(DASHBOARD, {"start": "2026-10-01", "end": "2026-10-31"})

    assert response.status_code == 200
    html = response.content.decode()
    cards = {
        name: (value, change)
        for name, value, change in re.findall(
            r'data-figure="(\w+)">\s*<span class="stat-label">[^<]*</span>\s*'
            r'<span class="stat-value">([^<]*)</span>\s*<span class="stat-sub">'
            r'<span class="change" data-change="([^"]*)"',
            html,
        )
    }
    assert cards["revenue"] == ("3,000.00", "+200 %")
    assert cards["orders"] == ("2", "+100 %")
    assert cards["earned"] == ("20.00", "+100 %")
    assert cards["clawed_back"] == ("0.00", "no change")
    assert (
        "From 2026-10-01 to 2026-10-31 (31 days, UTC), compared with 2026-08-31 to 2026-09-30"
    ) in html
    assert 'data-partner="alice"' in html  # the top partners
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in html
    day = '<th scope="row">2026-10-05</th><td class="num">1,500.00</td><td class="num">1</td>'
    assert day in html


def test_figures_are_kept_a_minute_and_refresh_works_them_out_again(staff_client, api, settings):
    settings.DASHBOARD_CACHE_SECONDS = 60
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    PartnerFactory(code="alice")
    october = {"start": "2026-10-01", "end": "2026-10-31"}
    post_order(api, "s1", date(2026, 10, 5), "100.00", sale_partner="alice")

    def earned(**extra) -> str:
        html = staff_client.get(DASHBOARD, {**october, **extra}).content.decode()
        return re.search(
            r'data-figure="earned">\s*<span class="stat-label">[^<]*</span>\s*'
            r'<span class="stat-value">([^<]*)<',
            html,
        ).group(1)

    assert earned() == "10.00"
    post_order(api, "s2", date(2026, 10, 6), "100.00", sale_partner="alice")
    assert earned() == "10.00"  # kept
    assert earned(fresh="1") == "20.00"  # worked out again, and kept
    assert earned() == "20.00"
    # Another period is worked out on its own.
    assert earned(start="2026-10-06") == "10.00"


def test_top_partners_by_earned_with_their_sales(api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}, 2: {"sale_amount": D("3")}})
    top = PartnerFactory(code="top1")
    PartnerFactory(code="kid1", parent=top)
    for n in range(3):
        post_order(api, f"k{n}", date(2026, 10, 1 + n), "50.00", sale_partner="kid1")
    post_order(api, "t1", date(2026, 10, 9), "70.00", sale_partner="top1")
    post_order(api, "t2", date(2026, 11, 9), "70.00", sale_partner="top1")  # outside

    rows = top_partners(Period(date(2026, 10, 1), date(2026, 10, 31)))

    assert [(r.partner.code, r.earned, r.orders, r.revenue) for r in rows] == [
        ("kid1", D("30.00"), 3, D("150.00")),
        ("top1", D("19.00"), 1, D("70.00")),  # 10 for its sale, 3 x 3 as kid1's parent
    ]


def test_needs_attention_counts_and_links(staff_client):
    PartnerSignupFactory.create_batch(2)
    PartnerSignupFactory(confirmed=False)  # not waiting for staff yet
    ClickFlagFactory()
    endpoint = WebhookEndpoint.objects.create(
        url="https://hooks.example/rp", secret="whsec_" + "x" * 30, events=["payout.made"]
    )
    now = datetime.now(UTC)
    for status, attempts, age in [
        ("failed", 10, 1),
        ("pending", 3, 0),
        ("pending", 0, 0),  # not tried yet: nothing wrong
        ("failed", 10, 30),  # too old to count
        ("delivered", 1, 0),
    ]:
        WebhookDelivery.objects.create(
            uid=uuid.uuid4(),
            endpoint=endpoint,
            event_type="payout.made",
            subject_id=1,
            status=status,
            attempts=attempts,
            created_at=now - timedelta(days=age),
        )

    html = staff_client.get(DASHBOARD).content.decode()

    assert "<strong>2</strong> sign-ups waiting for approval" in html
    assert "<strong>1</strong> click flag to review" in html
    assert "<strong>1</strong> webhook delivery failed, <strong>1</strong> being retried" in html
    assert "Nobody to pay" in html
    assert "No payout draft waiting" in html


def test_payout_drafts_waiting_are_counted_until_confirmed_or_thrown_away(staff_client):
    payout_batch_create(
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        method="earned_in_range",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    drafts = [
        payout_draft_create(
            start=date(2026, 11, 1),
            end=date(2026, 11, 30),
            method=method,
            at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        )
        for method in ("earned_in_range", "balance_plus_earned")
    ]

    waiting = staff_client.get(DASHBOARD).content.decode()
    payout_draft_discard(batch_id=drafts[0].pk)
    one_left = staff_client.get(DASHBOARD).content.decode()

    assert "<strong>2</strong> payout drafts to confirm or throw away" in waiting
    assert "<strong>1</strong> payout draft to confirm or throw away" in one_left
    assert "last payout 2026-11-02" in waiting  # a draft is no payout


def test_an_unreadable_period_shows_the_default_and_says_so(staff_client):
    response = staff_client.get(DASHBOARD, {"start": "2026-10-31", "end": "2026-10-01"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "The period was not understood" in html
    assert "The end must not be before the start." in html
    assert "(30 days, UTC)" in html

    only_start = staff_client.get(DASHBOARD, {"start": "2026-10-01"}).content.decode()
    assert "Give the last day of the period too." in only_start


def test_staff_only(client, db):
    assert client.get(DASHBOARD)["Location"].startswith("/accounts/login/")
    client.force_login(UserFactory())
    assert client.get(DASHBOARD).status_code == 403


# --- Constant queries ----------------------------------------------------------------------


def add_orders(count: int, partners: list[Partner], start: datetime) -> None:
    """`count` orders with a commission line each, spread over 60 days from `start`, written
    in bulk (the dashboard only reads them)."""
    stamp = uuid.uuid4().hex[:8]
    events = Event.objects.bulk_create(
        Event(
            kind="order",
            event_id=f"{stamp}-{n}",
            payload={},
            received_at=start,
            occurred_at=start + timedelta(days=60) * n / count,
        )
        for n in range(count)
    )
    contact = Contact.objects.create(email=f"{stamp}@buyers.example")
    orders = Order.objects.bulk_create(
        Order(
            event=event,
            order_id=event.event_id,
            contact=contact,
            currency="USD",
            items=[],
            discount=ZERO,
            shipping=ZERO,
            tax=ZERO,
            base=D("20.00"),
            total=D("20.00"),
            sale_partner=partners[n % len(partners)],
            occurred_at=event.occurred_at,
        )
        for n, event in enumerate(events)
    )
    Commission.objects.bulk_create(
        Commission(
            partner=order.sale_partner,
            order=order,
            level=1,
            kind="sale",
            entry="commission",
            base=order.base,
            amount=D("2.00"),
            currency="USD",
            occurred_at=order.occurred_at,
            payable_at=order.occurred_at,
        )
        for order in orders
    )


def count_queries(client, query: dict) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(DASHBOARD, query)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_queries_do_not_grow_with_orders(staff_client):
    partners = PartnerFactory.create_batch(20)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    october = {"start": "2026-10-01", "end": "2026-10-31"}
    add_orders(10, partners, start)
    payout_batch_create(start=date(2026, 9, 1), end=date(2026, 9, 15), method="earned_in_range")
    few, few_html = count_queries(staff_client, october)

    add_orders(9_990, partners, start)
    assert Order.objects.count() == 10_000
    many, many_html = count_queries(staff_client, october)

    assert many == few
    assert few <= 13  # the session, the user, and 11 for the page
    assert few_html != many_html


# --- The partners list and partner page ----------------------------------------------------


@pytest.fixture
def three_partners(api):
    """alice: 2 clicks, one order (10.00 earned, paid); bob: two orders (20.00 earned), one
    refunded in half (-5.00); carol: nothing."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    alice = PartnerFactory(code="alice", name="Alice")
    PartnerFactory(code="bob1", name="Bob")
    PartnerFactory(code="carol", name="Carol")
    ClickFactory.create_batch(2, partner=alice)
    post_order(api, "a1", date(2026, 7, 1), "100.00", sale_partner="alice")
    payout_batch_create(start=date(2026, 7, 1), end=date(2026, 7, 31), method="earned_in_range")
    post_order(api, "b1", date(2026, 8, 1), "100.00", sale_partner="bob1")
    post_order(api, "b2", date(2026, 8, 2), "100.00", sale_partner="bob1")
    assert post_refund(api, "rb1", "b1", date(2026, 8, 3), "50.00") == 201


def list_rows(client, **query) -> list[tuple[str, ...]]:
    response = client.get("/staff/partners/", query)
    assert response.status_code == 200
    return [
        (p.code, p.click_count, p.order_count, p.earned_total, p.balance)
        for p in response.context["object_list"]
    ]


def test_partner_list_shows_the_figures(staff_client, three_partners):
    assert list_rows(staff_client) == [
        ("alice", 2, 1, D("10.00"), D("0.00")),
        ("bob1", 0, 2, D("20.00"), D("15.00")),
        ("carol", 0, 0, D("0.00"), D("0.00")),
    ]
    html = staff_client.get("/staff/partners/").content.decode()
    assert '<td class="num">15.00</td>' in html


@pytest.mark.parametrize(
    ("sort", "codes"),
    [
        ("clicks", ["bob1", "carol", "alice"]),  # ties by code
        ("-clicks", ["alice", "bob1", "carol"]),
        ("-orders", ["bob1", "alice", "carol"]),
        ("earned", ["carol", "alice", "bob1"]),
        ("-balance", ["bob1", "alice", "carol"]),
        ("-name", ["carol", "bob1", "alice"]),
        ("nonsense", ["alice", "bob1", "carol"]),
    ],
)
def test_partner_list_sorts_by_any_column(staff_client, three_partners, sort, codes):
    assert [row[0] for row in list_rows(staff_client, sort=sort)] == codes


def test_partner_list_header_links_sort_and_say_how(staff_client, three_partners):
    html = staff_client.get("/staff/partners/", {"sort": "-earned", "q": "o"}).content.decode()
    assert 'aria-sort="descending"><a class="sort-link" href="?sort=earned&amp;q=o">' in html
    # Numbers sort biggest first on the first click; the search is kept.
    assert 'href="?sort=-clicks&amp;q=o"' in html
    assert '<input type="hidden" name="sort" value="-earned">' in html


def test_partner_page_shows_the_figures(staff_client, three_partners):
    response = staff_client.get("/staff/partners/bob1/")
    figures = response.context["figures"]
    assert (figures.click_count, figures.order_count, figures.earned_total, figures.balance) == (
        0,
        2,
        D("20.00"),
        D("15.00"),
    )


def test_partner_list_queries_do_not_grow_with_orders(staff_client):
    partners = PartnerFactory.create_batch(60)  # two pages
    start = datetime(2026, 9, 1, tzinfo=UTC)
    add_orders(10, partners, start)
    urls = [
        "/staff/partners/",
        "/staff/partners/?sort=-balance&page=2",
        "/staff/partners/?sort=clicks",
    ]
    few = [count_queries_at(staff_client, url) for url in urls]
    add_orders(9_990, partners, start)
    many = [count_queries_at(staff_client, url) for url in urls]
    assert many == few


def count_queries_at(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)
