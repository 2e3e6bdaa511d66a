"""Staff reports (SPEC §5.5, §7): ledger, activity summary and payments, their filters, their
streamed CSV exports, and the number of queries they make."""

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from commissions import filters as report_filters
from commissions.filters import PartnerReportFilter, ledger_grand_totals
from commissions.ledger import day_after, day_start, ledger_totals
from commissions.models import Commission, Order, Payment
from commissions.payouts import payment_mark_failed, payment_mark_paid, payout_batch_create
from commissions.views import report_partners
from partners.models import Click
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db

D = Decimal
FORMS, ORDERS = "/api/v1/events/web-forms/", "/api/v1/events/orders/"
REFUNDS = "/api/v1/events/refunds/"
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
NOVEMBER = {"start": "2026-11-01", "end": "2026-11-30"}
LEDGER_FIGURES = ("beginning_balance", "earned", "clawbacks", "payments", "ending_balance")
LIFECYCLE_FIGURES = ("rejections", "pending", "payable")


def sell(api, event_id, day, price, partner="jane", email="ada@example.com", **fields):
    response = api.post(
        ORDERS,
        {
            "event_id": event_id,
            "occurred_at": f"{day}T12:00:00Z",
            "sale_partner": partner,
            "contact": {"email": email},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
            **fields,
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
    """Oct: +100, -25 (a quarter refunded), +20; paid 95 on Nov 2; Nov: +50, -20.

    (The constructed history of tests/integration/test_ledger_payouts.py.)
    """
    defaults_update(data={"payout_amount": False, "payout_percent": True}, acting_user=None)
    ProgramFactory(
        priority=1, payout_amount=False, payout_percent=True, rates={1: {"sale_percent": D("10")}}
    )
    jane = PartnerFactory(code="jane", name="Jane Doe")
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


class TableRows(HTMLParser):
    """The text of each cell of one table's body and foot rows, as the page shows them."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.part = table_id, False, None
        self.rows: dict[str, list[list[str]]] = {"tbody": [], "tfoot": []}
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag in ("tbody", "tfoot"):
            self.part = tag
        elif self.inside and self.part and tag == "tr":
            self.rows[self.part].append([])
        elif self.inside and self.part and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif tag in ("tbody", "tfoot"):
            self.part = None
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[self.part][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table(response, table_id: str) -> dict[str, list[list[str]]]:
    parser = TableRows(table_id)
    parser.feed(response.content.decode())
    return parser.rows


def plain(cells: list[str]) -> list[str]:
    """Page figures without the thousands separators the page adds."""
    return [cell.replace(",", "") for cell in cells]


def csv_rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- Ledger report ---------------------------------------------------------------------------


PERIODS = {"october": OCTOBER, "november": NOVEMBER, "all-time": {}}


@pytest.mark.parametrize("period", list(PERIODS))
def test_ledger_report_equals_the_api_ledger_and_the_csv(staff_client, api, history, period):
    PartnerFactory(code="zoe", name="Zoe Zero")
    query = PERIODS[period]

    page = staff_client.get("/staff/reports/ledger/", query)
    download = staff_client.get("/staff/reports/ledger/csv/", query)

    shown = table(page, "ledger-report")
    assert [row[0] for row in shown["tbody"]] == ["jane", "zoe"]
    for row in shown["tbody"]:
        api_ledger = api.get(f"/api/v1/partners/{row[0]}/ledger/", query).json()
        figures = (*LEDGER_FIGURES, *LIFECYCLE_FIGURES)
        assert plain(row[3:]) == [api_ledger[name] for name in figures]
    [header, *rows] = csv_rows(download)
    assert header == ["partner_code", "partner_name", "currency", "start", "end", *figures]
    assert [[r[0], r[1], r[2], *r[5:]] for r in rows] == [plain(row) for row in shown["tbody"]]
    assert {(r[3], r[4]) for r in rows} == {(query.get("start", ""), query.get("end", ""))}
    [totals] = shown["tfoot"]
    assert plain(totals) == ["Total", "USD", *(plain(shown["tbody"][0])[3:])]


def test_ledger_report_figures_in_context(staff_client, history):
    response = staff_client.get("/staff/reports/ledger/", NOVEMBER)

    [jane] = response.context["rows"]
    assert (jane["partner"].code, jane["currency"]) == ("jane", "USD")
    assert [jane[name] for name in LEDGER_FIGURES] == [
        D("95.00"),
        D("50.00"),
        D("20.00"),
        D("95.00"),
        D("30.00"),
    ]


@pytest.fixture
def tree(db):
    """Partners under two programs, with parents and statuses, for the filters."""
    gold, silver = ProgramFactory(name="Gold"), ProgramFactory(name="Silver")
    root = PartnerFactory(code="root", program=gold)
    PartnerFactory(code="kid1", parent=root, program=gold)
    PartnerFactory(code="kid2", parent=root, program=silver, status="inactive")
    PartnerFactory(code="solo", name="Solo Person", email="solo@elsewhere.example")
    return {"gold": gold, "silver": silver}


@pytest.mark.parametrize(
    ("query", "codes"),
    [
        (lambda t: {}, ["kid1", "kid2", "root", "solo"]),
        (lambda t: {"program": t["gold"].pk}, ["kid1", "root"]),
        (lambda t: {"program": "null"}, ["solo"]),
        (lambda t: {"parent": "ROOT"}, ["kid1", "kid2"]),
        (lambda t: {"parent": "nobody1"}, []),
        (lambda t: {"status": "inactive"}, ["kid2"]),
        (lambda t: {"status": "active", "parent": "root"}, ["kid1"]),
        (lambda t: {"q": "elsewhere"}, ["solo"]),
    ],
    ids=[
        "all",
        "program",
        "no-program",
        "parent",
        "unknown-parent",
        "status",
        "status-and-parent",
        "search",
    ],
)
@pytest.mark.parametrize("report", ["ledger", "activity"])
def test_partner_report_filters(staff_client, tree, report, query, codes):
    params = query(tree)

    page = staff_client.get(f"/staff/reports/{report}/", params)
    download = staff_client.get(f"/staff/reports/{report}/csv/", params)

    table_id = f"{report}-report"
    assert [row[0] for row in table(page, table_id)["tbody"]] == codes
    assert [row[0] for row in csv_rows(download)[1:]] == codes


@pytest.mark.parametrize("report", ["ledger", "activity", "payments"])
def test_a_range_that_ends_before_it_starts_is_refused(staff_client, history, report):
    query = {"start": "2026-11-02", "end": "2026-11-01"}

    page = staff_client.get(f"/staff/reports/{report}/", query)
    download = staff_client.get(f"/staff/reports/{report}/csv/", query)

    assert page.status_code == 400
    errors = page.context["filterset"].form.errors
    assert errors == {"end": ["The end must not be before the start."]}
    assert "Correct the filters above" in page.content.decode()
    assert download.status_code == 400
    assert download.content.decode() == (
        "Invalid filters. end: The end must not be before the start."
    )


@pytest.mark.parametrize("report", ["ledger", "activity", "payments"])
def test_csv_exports_stream(staff_client, history, report):
    response = staff_client.get(f"/staff/reports/{report}/csv/", NOVEMBER)

    assert isinstance(response, StreamingHttpResponse)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{report}-2026-11-01-to-2026-11-30.csv"'
    )


def test_the_csv_link_keeps_the_filters_but_not_the_page(staff_client, history):
    response = staff_client.get("/staff/reports/ledger/", {**NOVEMBER, "page": "1"})
    assert response.context["csv_url"] == (
        "/staff/reports/ledger/csv/?start=2026-11-01&end=2026-11-30"
    )


# --- Query counts --------------------------------------------------------------------------


def add_entries(partners, order, clicks_from, n):
    """n commission lines (1.00 each, October) and n clicks, spread over the partners."""
    Commission.objects.bulk_create(
        Commission(
            partner=partners[i % len(partners)],
            order=order,
            level=1,
            kind="sale",
            entry="commission",
            base=D("10.00"),
            amount=D("1.00"),
            currency="USD",
            occurred_at=datetime(2026, 10, 1 + i % 28, 12, tzinfo=UTC),
            payable_at=datetime(2026, 10, 1 + i % 28, 12, tzinfo=UTC),
        )
        for i in range(n)
    )
    Click.objects.bulk_create(
        Click(
            id=uuid.uuid4(),
            partner=partners[i % len(partners)],
            at=clicks_from + timedelta(minutes=i),
        )
        for i in range(n)
    )


def count_queries(client, url) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content


REPORT_URLS = [
    "/staff/reports/ledger/?start=2026-10-10&end=2026-10-31",
    "/staff/reports/ledger/?start=2026-10-10&end=2026-10-31&page=2",
    "/staff/reports/activity/?start=2026-10-10&end=2026-10-31",
    "/staff/reports/activity/?start=2026-10-10&end=2026-10-31&ordering=-earned&page=2",
]


def test_report_queries_do_not_grow_with_entries(staff_client, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("1.00")}})
    partners = PartnerFactory.create_batch(60)  # two pages
    sell(api, "o1", "2026-10-05", "10.00", partners[0].code)
    order = Order.objects.get()
    october = datetime(2026, 10, 1, tzinfo=UTC)
    add_entries(partners, order, october, 9)
    assert Commission.objects.count() == 10

    few = [count_queries(staff_client, url) for url in REPORT_URLS]
    add_entries(partners, order, october, 990)
    payout_batch_create(start=date(2026, 10, 1), end=date(2026, 10, 15), method="earned_in_range")
    assert (Commission.objects.count(), Payment.objects.count()) == (1000, 60)
    many = [count_queries(staff_client, url) for url in REPORT_URLS]

    assert [count for count, _ in many] == [count for count, _ in few]
    assert max(count for count, _ in few) <= 10
    assert all(before != after for (_, before), (_, after) in zip(few, many, strict=True))


def test_ledger_totals_cover_every_page(staff_client, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("1.00")}})
    partners = PartnerFactory.create_batch(55)
    sell(api, "o1", "2026-10-05", "10.00", partners[0].code)
    add_entries(partners, Order.objects.get(), datetime(2026, 10, 1, tzinfo=UTC), 109)

    first = staff_client.get("/staff/reports/ledger/", OCTOBER)
    second = staff_client.get("/staff/reports/ledger/", {**OCTOBER, "page": 2})

    rows = first.context["rows"] + second.context["rows"]
    assert len(rows) == 55
    [totals] = first.context["totals"]
    assert totals["earned"] == sum(row["earned"] for row in rows) == D("110.00")
    assert totals["ending_balance"] == D("110.00")
    assert table(second, "ledger-report")["tfoot"] == [
        [
            "Total of all 55 partners",
            "USD",
            "0.00",
            "110.00",
            "0.00",
            "0.00",
            "110.00",
            "0.00",
            "0.00",
            "110.00",
        ]
    ]


# --- Activity summary --------------------------------------------------------------------------


@pytest.fixture
def activity(api, db):
    """alice (recruited by bobby) in October: 3 clicks, 2 opt-ins, 2 orders (100.00 and
    50.00 less 10.00 discount), one refunded in part; plus a click, a form and an order in
    November. Gold pays 10 % at level 1 and 5 % at level 2."""
    defaults_update(data={"payout_amount": False, "payout_percent": True}, acting_user=None)
    ProgramFactory(
        priority=1,
        payout_amount=False,
        payout_percent=True,
        rates={1: {"sale_percent": D("10")}, 2: {"sale_percent": D("5")}},
    )
    bobby = PartnerFactory(code="bobby", name="Bob By")
    alice = PartnerFactory(code="alice", name="Alice Able", parent=bobby)
    PartnerFactory(code="carol", name="Carol C")
    at = [
        datetime(2026, 10, 1, 8, tzinfo=UTC),
        datetime(2026, 10, 31, 23, 59, tzinfo=UTC),
        datetime(2026, 10, 15, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    ]
    Click.objects.bulk_create(
        [Click(id=uuid.uuid4(), partner=alice, at=when) for when in at]
        + [Click(id=uuid.uuid4(), partner=bobby, at=at[2])]
    )
    for n, day in enumerate(["2026-10-02", "2026-10-03", "2026-11-02"]):
        response = api.post(
            FORMS,
            {
                "event_id": f"f{n}",
                "occurred_at": f"{day}T12:00:00Z",
                "contact": {"email": f"lead{n}@example.com"},
                "lead_partner": "alice",
            },
            format="json",
        )
        assert response.status_code == 201
    sell(api, "o1", "2026-10-05", "100.00", "alice")
    sell(api, "o2", "2026-10-20", "50.00", "alice", discount="10.00")
    refund(api, "r1", "o1", "2026-10-25", "50.00")
    sell(api, "o3", "2026-11-05", "80.00", "alice")


ACTIVITY_CSV_HEADER = [
    "partner_code",
    "partner_name",
    "start",
    "end",
    "clicks",
    "optins",
    "orders",
    "sales",
    "commissions_earned",
]


def test_activity_summary_figures_page_and_csv(staff_client, activity):
    page = staff_client.get("/staff/reports/activity/", OCTOBER)
    download = staff_client.get("/staff/reports/activity/csv/", OCTOBER)

    rows = [
        (p.code, p.click_count, p.optin_count, p.order_count, p.sales_total, p.earned_total)
        for p in page.context["page_obj"].object_list
    ]
    assert rows == [
        ("alice", 3, 2, 2, D("140.00"), D("14.00")),
        ("bobby", 1, 0, 0, D("0"), D("7.00")),
        ("carol", 0, 0, 0, D("0"), D("0")),
    ]
    assert page.context["totals"] == {
        "click_count": 4,
        "optin_count": 2,
        "order_count": 2,
        "sales_total": D("140.00"),
        "earned_total": D("21.00"),
    }
    shown = table(page, "activity-report")
    assert csv_rows(download) == [
        ACTIVITY_CSV_HEADER,
        ["alice", "Alice Able", "2026-10-01", "2026-10-31", "3", "2", "2", "140.00", "14.00"],
        ["bobby", "Bob By", "2026-10-01", "2026-10-31", "1", "0", "0", "0.00", "7.00"],
        ["carol", "Carol C", "2026-10-01", "2026-10-31", "0", "0", "0", "0.00", "0.00"],
    ]
    again = csv_rows(staff_client.get("/staff/reports/activity/csv/", OCTOBER))
    assert [plain(row) for row in shown["tbody"]] == [[r[0], r[1], *r[4:]] for r in again[1:]]
    assert plain(shown["tfoot"][0]) == ["Total", "4", "2", "2", "140.00", "21.00"]


def test_activity_summary_all_time_and_sorted(staff_client, activity):
    page = staff_client.get("/staff/reports/activity/", {"ordering": "-clicks"})

    rows = [
        (p.code, p.click_count, p.optin_count, p.order_count, p.sales_total, p.earned_total)
        for p in page.context["page_obj"].object_list
    ]
    assert rows == [
        ("alice", 4, 3, 3, D("220.00"), D("22.00")),
        ("bobby", 1, 0, 0, D("0"), D("11.00")),
        ("carol", 0, 0, 0, D("0"), D("0")),
    ]


# --- Payments ------------------------------------------------------------------------------


def test_payments_report_and_csv(staff_client, api, history):
    PartnerFactory(code="kim", name="Kim, K.")
    sell(api, "k1", "2026-11-07", "300.00", "kim", email="kb@example.com")
    november = payout_batch_create(
        start=date(2026, 11, 1),
        end=date(2026, 11, 30),
        method="balance_plus_earned",
        at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    )
    [october] = Payment.objects.exclude(batch=november)
    jane, kim = (november.payments.get(partner__code=code) for code in ("jane", "kim"))

    everything = staff_client.get("/staff/reports/payments/")
    jane_only = staff_client.get("/staff/reports/payments/", {"partner": "JANE"})
    december = staff_client.get("/staff/reports/payments/csv/", {"start": "2026-12-01"})
    by_batch = staff_client.get("/staff/reports/payments/csv/", {"batch": october.batch_id})

    assert [(p.batch_id, p.partner.code, p.amount) for p in everything.context["object_list"]] == [
        (november.pk, "kim", D("30.00")),
        (november.pk, "jane", D("30.00")),
        (october.batch_id, "jane", D("95.00")),
    ]
    assert [(t["currency"], t["count"], t["total"]) for t in everything.context["totals"]] == [
        ("USD", 3, D("155.00"))
    ]
    assert [p.amount for p in jane_only.context["object_list"]] == [D("30.00"), D("95.00")]
    header = [
        "payment_id",
        "batch_id",
        "partner_code",
        "partner_name",
        "amount",
        "currency",
        "paid_at",
        "status",
        "reference",
    ]
    assert csv_rows(december) == [
        header,
        [
            str(kim.pk),
            str(november.pk),
            "kim",
            "Kim, K.",
            "30.00",
            "USD",
            "2026-12-01T08:30:00+00:00",
            "recorded",
            "",
        ],
        [
            str(jane.pk),
            str(november.pk),
            "jane",
            "Jane Doe",
            "30.00",
            "USD",
            "2026-12-01T08:30:00+00:00",
            "recorded",
            "",
        ],
    ]
    assert csv_rows(by_batch) == [
        header,
        [
            str(october.pk),
            str(october.batch_id),
            "jane",
            "Jane Doe",
            "95.00",
            "USD",
            "2026-11-02T09:00:00+00:00",
            "recorded",
            "",
        ],
    ]
    shown = table(everything, "payments-report")
    assert [[row[2], *plain(row[4:])] for row in shown["tbody"]] == [
        ["kim", "30.00", "USD", "Recorded (not marked yet)"],
        ["jane", "30.00", "USD", "Recorded (not marked yet)"],
        ["jane", "95.00", "USD", "Recorded (not marked yet)"],
    ]
    assert shown["tfoot"] == [["Total of 3 payments", "155.00", "USD", ""]]


def test_payments_report_shows_and_filters_what_each_payment_became(staff_client, api, history):
    PartnerFactory(code="kim", name="Kim, K.")
    sell(api, "k1", "2026-11-07", "300.00", "kim", email="kb@example.com")
    november = payout_batch_create(
        start=date(2026, 11, 1),
        end=date(2026, 11, 30),
        method="balance_plus_earned",
        at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    )
    jane, kim = (november.payments.get(partner__code=code) for code in ("jane", "kim"))
    payment_mark_paid(payment_id=jane.pk, reference="PP-1234")
    failed_at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    payment_mark_failed(payment_id=kim.pk, reason="Account closed", at=failed_at)
    [returned] = Payment.objects.filter(reverses=kim)

    failed = staff_client.get("/staff/reports/payments/", {"status": "failed"})
    paid_csv = staff_client.get("/staff/reports/payments/csv/", {"status": "paid"})
    unknown = staff_client.get("/staff/reports/payments/", {"status": "lost"})
    everything = table(staff_client.get("/staff/reports/payments/"), "payments-report")

    assert [p.pk for p in failed.context["object_list"]] == [kim.pk]
    assert [row[-2:] for row in csv_rows(paid_csv)[1:]] == [["paid", "PP-1234"]]
    assert unknown.status_code == 400
    assert not unknown.context["object_list"]
    assert [[row[2], *plain(row[4:])] for row in everything["tbody"][:3]] == [
        ["kim", "-30.00", "USD", f"Returned to the balance (Payment {kim.pk} failed)"],
        ["kim", "30.00", "USD", "Failed (amount back on the balance) (Account closed)"],
        ["jane", "30.00", "USD", "Paid (PP-1234)"],
    ]
    assert returned.paid_at == failed_at


def test_payments_report_empty_state(staff_client):
    response = staff_client.get("/staff/reports/payments/")
    assert "No payments yet: payments are made by payout batches." in response.content.decode()


@pytest.mark.django_db
def test_ledger_totals_follow_the_filters(staff_client, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    for code in ("alice", "bobby"):
        PartnerFactory(code=code)
    for n, code in enumerate(("alice", "bobby", "bobby")):
        api.post(
            "/api/v1/events/orders/",
            {
                "event_id": f"tf-{n}",
                "sale_partner": code,
                "contact": {"email": "a@example.com"},
                "items": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}],
            },
            format="json",
        )
    PartnerFactory._meta.model.objects.filter(code="alice").update(status="inactive")

    everyone = staff_client.get("/staff/reports/ledger/").context["totals"]
    inactive = staff_client.get("/staff/reports/ledger/", {"status": "inactive"}).context["totals"]

    assert [t["earned"] for t in everyone] == [D("30.00")]
    assert [t["earned"] for t in inactive] == [D("10.00")]


@pytest.mark.django_db
def test_totals_follow_every_new_ledger_row(staff_client, api):
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    PartnerFactory(code="alice")

    def sell(n):
        api.post(
            "/api/v1/events/orders/",
            {
                "event_id": f"ct-{n}",
                "sale_partner": "alice",
                "contact": {"email": "a@x.com"},
                "items": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}],
            },
            format="json",
        )

    sell(1)
    first = staff_client.get("/staff/reports/ledger/").context["totals"]
    again = staff_client.get("/staff/reports/ledger/").context["totals"]
    sell(2)
    after = staff_client.get("/staff/reports/ledger/").context["totals"]

    assert [t["earned"] for t in first] == [t["earned"] for t in again] == [D("10.00")]
    assert [t["earned"] for t in after] == [D("20.00")]


# --- Grand totals without a full scan (issue 5) ---------------------------------------------


@pytest.fixture
def payouts_history(api, db):
    """USD for alice and carol, EUR for bob (alice's child); three payout batches: earned in
    range, balance plus earned with a minimum (pays nobody), and balance plus earned dated
    before an entry it pays. Clawbacks after payments leave balances negative. Orders take
    only the program currency, so bob's EUR lines are written directly on alice's first
    order (as the ledger of an installation that changed its currency holds them), and its
    refunds claw them back too.

    alice: +100 (06-10), -25 (06-20), paid 75 (07-01 09:00), +30 (07-05), -75 (07-06),
    +80 (08-03), paid 45 (09-01 00:00), +10 (09-05), +5 (09-10), -20 (09-11): -15 unpaid.
    carol: +0.50 (07-10), paid 0.50 (09-01).
    bob, EUR: +20 (06-12), -5 (06-20), paid 15 (07-01 09:00), -15 (07-06), +10 (08-04): -5.
    """
    defaults_update(data={"payout_amount": False, "payout_percent": True}, acting_user=None)
    ProgramFactory(
        priority=1, payout_amount=False, payout_percent=True, rates={1: {"sale_percent": D("10")}}
    )
    alice = PartnerFactory(code="alice")
    bob = PartnerFactory(code="bob", parent=alice)
    PartnerFactory(code="carol")
    sell(api, "p1", "2026-06-10", "1000.00", "alice")

    def eur_line(day: str, amount: str) -> None:
        Commission.objects.create(
            partner=bob,
            order=Order.objects.get(order_id="p1"),
            level=1,
            kind="sale",
            entry="commission",
            base=D(amount) * 10,
            amount=D(amount),
            currency="EUR",
            occurred_at=datetime.fromisoformat(f"{day}T12:00:00+00:00"),
            payable_at=datetime.fromisoformat(f"{day}T12:00:00+00:00"),
        )

    eur_line("2026-06-12", "20.00")
    refund(api, "pr1", "p1", "2026-06-20", "250.00")
    payout_batch_create(
        start=date(2026, 6, 1),
        end=date(2026, 6, 30),
        method="earned_in_range",
        at=datetime(2026, 7, 1, 9, tzinfo=UTC),
    )
    sell(api, "p3", "2026-07-05", "300.00", "alice")
    refund(api, "pr2", "p1", "2026-07-06")
    sell(api, "p4", "2026-07-10", "5.00", "carol")
    none_paid = payout_batch_create(
        start=date(2026, 7, 1),
        end=date(2026, 7, 31),
        method="balance_plus_earned",
        minimum=D("1.00"),
        at=datetime(2026, 8, 2, 9, tzinfo=UTC),
    )
    assert not none_paid.payments.exists()
    sell(api, "p5", "2026-08-03", "800.00", "alice")
    eur_line("2026-08-04", "10.00")
    sell(api, "p7", "2026-09-05", "100.00", "alice")
    payout_batch_create(
        start=date(2026, 8, 1),
        end=date(2026, 9, 30),
        method="balance_plus_earned",
        at=datetime(2026, 9, 1, tzinfo=UTC),
    )
    sell(api, "p8", "2026-09-10", "50.00", "alice")
    refund(api, "pr3", "p5", "2026-09-11", "200.00")
    assert (Commission.objects.count(), Payment.objects.count()) == (13, 4)


def money(*figures: str) -> dict[str, Decimal]:
    return dict(zip(LEDGER_FIGURES, map(D, figures), strict=True))


JULY = {"start": "2026-07-01", "end": "2026-07-31"}


def grand_totals(query: dict) -> dict[str, dict[str, Decimal]]:
    chosen = PartnerReportFilter(query, queryset=report_partners())
    assert chosen.is_valid()
    start, end = chosen.period
    totals = ledger_grand_totals(chosen.qs, start=start, end=end)
    return {
        currency: {name: got[name] for name in LEDGER_FIGURES} for currency, got in totals.items()
    }


def partner_sums(query: dict) -> dict[str, dict[str, Decimal]]:
    """The per-partner figures of `commissions.ledger.ledger_totals`, added up per currency;
    a currency whose figures are all 0 left out."""
    chosen = PartnerReportFilter(query, queryset=report_partners())
    assert chosen.is_valid()
    start, end = chosen.period
    sums: dict[str, dict[str, Decimal]] = {}
    for (_, currency), summary in ledger_totals(
        list(chosen.qs.values_list("pk", flat=True)), start=start, end=end
    ).items():
        got = sums.setdefault(currency, dict.fromkeys(LEDGER_FIGURES, D("0")))
        for name in LEDGER_FIGURES:
            got[name] += getattr(summary, name)
    return {currency: got for currency, got in sums.items() if any(got.values())}


WAYS = {
    "as-chosen": None,
    "from-the-start": False,
    "from-the-end": True,
}


@pytest.fixture(params=list(WAYS))
def way(request, monkeypatch):
    """The grand totals read as the rule chooses, or forced to read one way."""
    forced = WAYS[request.param]
    if forced is not None:
        monkeypatch.setattr(report_filters, "_reads_from_the_end", lambda start, after: forced)
    return request.param


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {},
            {
                "EUR": money("0", "30.00", "20.00", "15.00", "-5.00"),
                "USD": money("0", "225.50", "120.00", "110.50", "-5.00"),
            },
        ),
        (
            JULY,
            {
                "EUR": money("15.00", "0", "15.00", "15.00", "-15.00"),
                "USD": money("75.00", "30.50", "75.00", "75.00", "-44.50"),
            },
        ),
        (
            {"start": "2026-09-01", "end": "2026-09-01"},
            {
                "EUR": money("-5.00", "0", "0", "0", "-5.00"),
                "USD": money("35.50", "0", "0", "35.50", "0"),
            },
        ),
        (
            {"start": "2026-07-02", "end": "2026-07-05"},
            {"USD": money("0", "30.00", "0", "0", "30.00")},
        ),
        (
            {"start": "2026-10-01", "end": "2026-10-31"},
            {
                "EUR": money("-5.00", "0", "0", "0", "-5.00"),
                "USD": money("-5.00", "0", "0", "0", "-5.00"),
            },
        ),
        (
            {"start": "2026-01-01", "end": "2026-01-31"},
            {"USD": money("0", "0", "0", "0", "0")},
        ),
        (
            {**JULY, "parent": "alice"},
            {"EUR": money("15.00", "0", "15.00", "15.00", "-15.00")},
        ),
        (
            {"end": "2026-08-31", "q": "carol"},
            {"USD": money("0", "0.50", "0", "0", "0.50")},
        ),
    ],
    ids=[
        "all-time",
        "july",
        # The Sept 1 payout no longer pays the Sept 5 line: it was not payable yet (§11).
        "a-payment-day",
        "eur-all-zero-left-out",
        "after-every-entry",
        "before-every-entry-zeros",
        "parent-filter",
        "open-start-search",
    ],
)
def test_grand_totals_exact_whichever_way_they_read(payouts_history, way, query, expected):
    assert grand_totals(query) == expected


RANGES = [
    {},
    {"start": "2026-06-20"},
    {"end": "2026-06-20"},
    {"start": "2026-06-12", "end": "2026-07-06"},
    {"start": "2026-07-01", "end": "2026-08-02"},
    {"start": "2026-08-04", "end": "2026-09-05"},
    {"start": "2026-09-01"},
    {"start": "2026-09-10", "end": "2026-09-10"},
    {"end": "2026-09-30"},
]
FILTERS = [{}, {"status": "active"}, {"parent": "alice"}, {"q": "a"}, {"status": "inactive"}]


def range_id(period: dict) -> str:
    return f"{period.get('start', 'beginning')} to {period.get('end', 'now')}"


@pytest.mark.parametrize("chosen", FILTERS, ids=["all", "status", "parent", "search", "none"])
def test_grand_totals_add_up_the_partner_figures(payouts_history, way, chosen):
    for period in RANGES:
        query = {**period, **chosen}
        expected = partner_sums(query) or {"USD": money("0", "0", "0", "0", "0")}

        assert grand_totals(query) == expected, range_id(period)


def test_the_page_totals_equal_the_partner_rows_after_payouts(staff_client, payouts_history):
    page = staff_client.get("/staff/reports/ledger/", JULY)

    rows = page.context["rows"]
    totals = {t["currency"]: t for t in page.context["totals"]}
    for currency in ("EUR", "USD"):
        mine = [row for row in rows if row["currency"] == currency]
        figures = (*LEDGER_FIGURES, *LIFECYCLE_FIGURES)
        assert {n: sum(row[n] for row in mine) for n in figures} == {
            n: totals[currency][n] for n in figures
        }
    assert plain(table(page, "ledger-report")["tfoot"][1]) == [
        "Total",
        "USD",
        "75.00",
        "30.50",
        "75.00",
        "75.00",
        "-44.50",
        "0.00",  # rejections
        "0.00",  # pending: every entry of July was paid since (the September batch)
        "0.00",  # payable
    ]


def test_grand_totals_take_two_queries_at_most(payouts_history, django_assert_max_num_queries):
    partners = PartnerReportFilter({"status": "active"}, queryset=report_partners()).qs
    for start, end in [(None, None), (date(2026, 7, 1), None), (None, date(2026, 7, 31))]:
        with django_assert_max_num_queries(2):
            ledger_grand_totals(partners, start=start, end=end)


@pytest.mark.parametrize(
    ("start", "end", "from_the_end"),
    [
        (None, None, True),
        (date(2025, 12, 1), None, True),
        (date(2025, 11, 1), date(2025, 11, 30), True),
        (None, date(2025, 2, 28), False),
        (date(2025, 2, 1), date(2025, 3, 31), False),
    ],
    ids=["all-time", "open-end", "late-month", "open-start-early-end", "early-months"],
)
def test_the_grand_totals_read_the_shorter_side(api, start, end, from_the_end):
    """Entries on 2025-01-01 and 2025-12-31: a range in the last months reads from its
    start on, one in the first months from the first entry up to its end."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("1.00")}})
    PartnerFactory(code="jane")
    sell(api, "e1", "2025-01-01", "10.00")
    sell(api, "e2", "2025-12-31", "10.00")

    chosen = report_filters._reads_from_the_end(day_start(start), day_after(end))

    assert chosen is from_the_end


def test_without_entries_the_grand_totals_read_from_the_end(db):
    assert report_filters._reads_from_the_end(None, day_after(date(2025, 1, 31))) is True
