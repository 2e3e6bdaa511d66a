"""Staff pages of the commissions engine over HTTP (SPEC §5.5, §7): orders, contacts, a
partner's activity and payout batches."""

import csv
import html
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.forms.models import model_to_dict
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from commissions.models import Commission, Contact, Payment, PayoutBatch, Referral
from commissions.payouts import payout_batch_create
from commissions.views import previous_month
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, UserFactory, give_payout_details

pytestmark = pytest.mark.django_db

D = Decimal
FORMS, ORDERS = "/api/v1/events/web-forms/", "/api/v1/events/orders/"
REFUNDS = "/api/v1/events/refunds/"


def page_text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def post_event(api, url, body):
    response = api.post(url, body, format="json")
    assert response.status_code == 201, response.data
    return response.json()


def sell(api, event_id, day, price, partner, email="ada@example.com"):
    return post_event(
        api,
        ORDERS,
        {
            "event_id": event_id,
            "occurred_at": f"{day}T12:00:00Z",
            "sale_partner": partner,
            "contact": {"email": email},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
        },
    )


def refund(api, event_id, order_id, day, amount=None):
    body = {"event_id": event_id, "order_id": order_id, "occurred_at": f"{day}T12:00:00Z"}
    if amount:
        body["amount"] = amount
    return post_event(api, REFUNDS, body)


@pytest.fixture
def shop(api):
    """Gold pays sale 10 % (level 1) and 5 % (level 2), lead 2 %. Ada filled a form naming
    lena on Oct 1, bought 1,000.00 of items (+10 shipping, +90 tax) from jane (recruited by
    boss) on Oct 5, and got 275.00 (a quarter) back on Oct 9."""
    defaults_update(
        data={"payout_amount": False, "payout_percent": True, "payout_on_lead": True},
        acting_user=None,
    )
    ProgramFactory(
        name="Gold",
        priority=1,
        payout_amount=False,
        payout_percent=True,
        payout_on_lead=True,
        rates={1: {"sale_percent": D("10"), "lead_percent": D("2")}, 2: {"sale_percent": D("5")}},
    )
    boss = PartnerFactory(code="boss", name="Bo Boss")
    jane = PartnerFactory(code="jane", name="Jane Doe", parent=boss, cookie_days=30)
    lena = PartnerFactory(code="lena", name="Lena Lead")
    post_event(
        api,
        FORMS,
        {
            "event_id": "f1",
            "occurred_at": "2026-10-01T12:00:00Z",
            "contact": {"email": "ada@example.com", "first_name": "Ada"},
            "form": "newsletter",
            "lead_partner": "lena",
        },
    )
    post_event(
        api,
        ORDERS,
        {
            "event_id": "o1",
            "occurred_at": "2026-10-05T12:00:00Z",
            "sale_partner": "jane",
            "contact": {"email": "ada@example.com"},
            "shipping": "10.00",
            "tax": "90.00",
            "items": [
                {"sku": "HAIR-1", "description": "Hair oil", "quantity": 2, "unit_price": "400.00"},
                {"sku": "HAIR-2", "quantity": 1, "unit_price": "200.00"},
            ],
        },
    )
    refund(api, "r1", "o1", "2026-10-09", "275.00")
    return {"boss": boss, "jane": jane, "lena": lena, "contact": Contact.objects.get()}


@pytest.fixture
def batch(shop):
    return payout_batch_create(
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        method="earned_in_range",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )


# URL name, and the URL's kwargs made from the shop and batch fixtures.
PAGES = [
    ("crm:orders", None),
    ("crm:order_detail", lambda s, b: {"order_id": "o1"}),
    ("crm:contacts", None),
    ("crm:contact_detail", lambda s, b: {"pk": s["contact"].pk}),
    ("crm:partner_activity", lambda s, b: {"code": "jane"}),
    ("crm:reports", None),
    ("crm:report_ledger", None),
    ("crm:report_ledger_csv", None),
    ("crm:report_activity", None),
    ("crm:report_activity_csv", None),
    ("crm:report_payments", None),
    ("crm:report_payments_csv", None),
    ("crm:payouts", None),
    ("crm:payout_detail", lambda s, b: {"pk": b.pk}),
    ("crm:payout_csv", lambda s, b: {"pk": b.pk}),
]


def snapshot() -> tuple:
    return (
        [model_to_dict(r) for r in Referral.objects.order_by("pk")],
        [model_to_dict(c) for c in Contact.objects.order_by("pk")],
        [model_to_dict(b) for b in PayoutBatch.objects.order_by("pk")],
        [model_to_dict(p) for p in Payment.objects.order_by("pk")],
        list(Commission.objects.order_by("pk").values_list("pk", "payment_id")),
    )


@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[name for name, _ in PAGES])
def test_every_page_needs_staff(client, plain_user, staff_user, shop, batch, name, kwargs):
    url = reverse(name, kwargs=kwargs(shop, batch) if kwargs else None)
    before = snapshot()

    anonymous = client.get(url)
    client.force_login(plain_user)
    not_staff_get = client.get(url)
    not_staff_post = client.post(
        url,
        {
            "partner": "jane",
            "start": "2026-10-01",
            "end": "2026-10-31",
            "method": "balance_plus_earned",
        },
    )
    client.force_login(staff_user)
    staff = client.get(url)

    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={url}"
    assert not_staff_get.status_code == 403
    assert not_staff_post.status_code == 403
    assert staff.status_code == 200
    assert snapshot() == before


def test_the_nav_leads_to_the_crm_pages(staff_client):
    response = staff_client.get("/staff/")
    nav = re.search(r'<nav class="mainnav".*?</nav>', response.content.decode(), re.S).group()
    assert re.findall(r'href="(/staff/(?:orders|contacts|reports|payouts)/)"', nav) == [
        "/staff/orders/",
        "/staff/contacts/",
        "/staff/reports/",
        "/staff/payouts/",
    ]


def test_the_partner_page_links_to_its_activity(staff_client, shop):
    response = staff_client.get("/staff/partners/jane/")
    assert 'href="/staff/crm/partners/jane/activity/"' in response.content.decode()


# --- Orders --------------------------------------------------------------------------------


def lines_of(rows) -> list[tuple]:
    return [
        (
            row["line"].partner.code,
            row["line"].kind,
            row["line"].level,
            row["line"].amount,
            row["words"],
        )
        for row in rows
    ]


def test_order_page_explains_the_partners_and_every_line(staff_client, shop):
    response = staff_client.get("/staff/orders/o1/")

    context = response.context
    assert context["sale_words"] == "Credited because the order named them explicitly."
    assert context["lead_words"] == (
        "Credited because they are the contact's lead partner since 2026-10-01: the event that "
        "fixed it named them explicitly."
    )
    share = (
        "Clawback: refund r1 returned 275.00 of the order's 1100.00, so this line gives back "
        "the same share."
    )
    assert lines_of(context["commissions"]) == [
        (
            "lena",
            "lead",
            1,
            D("20.00"),
            "Lead, level 1: credited because they are the contact's lead partner since 2026-10-01: "
            "the event that fixed it named them explicitly. Program Gold pays 2 % of 1000.00 at "
            "level 1.",
        ),
        (
            "jane",
            "sale",
            1,
            D("100.00"),
            "Sale, level 1: credited because the order named them explicitly. Program Gold pays "
            "10 % of 1000.00 at level 1.",
        ),
        (
            "boss",
            "sale",
            2,
            D("50.00"),
            "Sale, level 2: paid as the parent of the credited partner jane, who was credited "
            "because the order named them explicitly. Program Gold pays 5 % of 1000.00 at level 2.",
        ),
    ]
    assert lines_of(context["clawbacks"]) == [
        ("lena", "lead", 1, D("-5.00"), share),
        ("jane", "sale", 1, D("-25.00"), share),
        ("boss", "sale", 2, D("-12.50"), share),
    ]
    assert (context["gross"], context["earned"], context["taken"], context["net"]) == (
        D("1000.00"),
        D("170.00"),
        D("-42.50"),
        D("127.50"),
    )
    assert (context["order"].total, context["order"].refunded) == (D("1100.00"), D("275.00"))
    assert [(r.event.event_id, r.amount, r.clawed) for r in context["refunds"]] == [
        ("r1", D("275.00"), D("-42.50"))
    ]
    text = page_text(response)
    for words in [context["sale_words"], share, *(row["words"] for row in context["commissions"])]:
        assert words in text
    for figure in ("1,100.00", "275.00", "-25.00", "-12.50", "-5.00", "127.50 USD"):
        assert figure in text
    assert text.count("Raw sale trace") == 1
    assert '"source": "explicit"' in html.unescape(response.content.decode())


def test_an_order_without_partners_says_so(staff_client, api, shop):
    post_event(
        api,
        ORDERS,
        {
            "event_id": "walk-in/1?",
            "contact": {"email": "bo@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}],
        },
    )

    response = staff_client.get(reverse("crm:order_detail", kwargs={"order_id": "walk-in/1?"}))

    assert response.status_code == 200
    assert (response.context["sale_words"], response.context["lead_words"]) == (
        "No partner could be found.",
        "No partner could be found.",
    )
    assert "No commission was paid on this order: no partner was credited." in page_text(response)


def test_unknown_order_is_404(staff_client, shop):
    assert staff_client.get("/staff/orders/nope/").status_code == 404


@pytest.mark.parametrize(
    ("query", "orders"),
    [
        ({}, ["o3", "o2", "o1"]),
        ({"q": "O2"}, ["o2"]),
        ({"q": "bea@"}, ["o3"]),
        ({"partner": "JANE"}, ["o2", "o1"]),
        ({"partner": "lena"}, ["o2", "o1"]),  # lena is ada's lead partner
        ({"start": "2026-10-06", "end": "2026-10-31"}, ["o2"]),
    ],
    ids=["all", "order-id", "email", "sale-partner", "lead-partner", "dates"],
)
def test_orders_list_filters(staff_client, api, shop, query, orders):
    sell(api, "o2", "2026-10-20", "200.00", "jane")
    sell(api, "o3", "2026-11-05", "50.00", "boss", email="bea@example.com")

    response = staff_client.get("/staff/orders/", query)

    assert [order.order_id for order in response.context["object_list"]] == orders


def test_orders_list_empty_state_tells_what_to_do(staff_client):
    response = staff_client.get("/staff/orders/")
    assert "No orders yet: orders arrive through POST /api/v1/events/orders/" in page_text(response)


# --- Contacts ------------------------------------------------------------------------------


def test_contacts_list_searches_by_email(staff_client, api, shop):
    sell(api, "o2", "2026-10-20", "200.00", "jane", email="bea@example.com")

    everyone = staff_client.get("/staff/contacts/")
    found = staff_client.get("/staff/contacts/", {"q": " BEA@Example"})

    assert [(c.email, c.lead_count, c.order_count) for c in everyone.context["object_list"]] == [
        ("ada@example.com", 1, 1),
        ("bea@example.com", 0, 1),
    ]
    assert [c.email for c in found.context["object_list"]] == ["bea@example.com"]


def test_contact_page_shows_lead_partner_history_orders_and_forms(staff_client, shop):
    contact = shop["contact"]

    response = staff_client.get(f"/staff/contacts/{contact.pk}/")

    assert response.context["lead_words"] == (
        "Credited because the event that fixed it named them explicitly."
    )
    assert [o.order_id for o in response.context["orders"]] == ["o1"]
    assert [(lead.form, lead.partner.code) for lead in response.context["leads"]] == [
        ("newsletter", "lena")
    ]
    assert response.context["referrals"] == []
    text = page_text(response)
    assert "Lena Lead (lena), fixed 2026-10-01 12:00 UTC." in text
    assert "Add a referral by hand" in text


def referral_rows() -> list[dict]:
    return [model_to_dict(r, exclude=["id"]) for r in Referral.objects.order_by("pk")]


def test_staff_add_a_manual_referral(staff_client, staff_user, shop, time_machine):
    time_machine.move_to(datetime(2026, 11, 25, 12, tzinfo=UTC))  # inside jane's 30 days
    contact = shop["contact"]
    url = f"/staff/contacts/{contact.pk}/"

    response = staff_client.post(url, {"partner": "JANE", "referred_on": "2026-11-20"}, follow=True)

    assert response.redirect_chain == [(url, 302)]
    assert messages_of(response) == ["Referral by jane added to the history of ada@example.com."]
    assert referral_rows() == [
        {
            "contact": contact.pk,
            "partner": shop["jane"].pk,
            "source": "manual",
            "click_id": None,
            "set_at": datetime(2026, 11, 20, tzinfo=UTC),
            "expires_at": datetime(2026, 12, 20, tzinfo=UTC),
            "created_by": staff_user.username,
        }
    ]
    rows = response.context["referrals"]
    assert [(r["referral"].partner.code, r["state"]) for r in rows] == [("jane", "Counts")]
    assert "Manual" in page_text(response)


def test_a_manual_referral_without_a_date_is_made_now(staff_client, shop):
    before = datetime.now(UTC)
    staff_client.post(f"/staff/contacts/{shop['contact'].pk}/", {"partner": "boss"})
    referral = Referral.objects.get()
    assert before <= referral.set_at <= datetime.now(UTC)
    assert referral.expires_at is None  # boss has no cookie days


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"partner": "nobody1"}, "partner", "No partner has the code nobody1."),
        ({"partner": "gone"}, "partner", "Partner gone is not active."),
        (
            {"partner": "jane", "referred_on": "2026-13-01"},
            "referred_on",
            "Enter a valid date (YYYY-MM-DD).",
        ),
        (
            {"partner": "jane", "referred_on": "2099-01-01"},
            "referred_on",
            "The day of the referral cannot be in the future.",
        ),
        ({"partner": ""}, "partner", "This field is required."),
    ],
    ids=["unknown-partner", "inactive-partner", "bad-date", "future-date", "no-partner"],
)
def test_refused_manual_referrals_write_nothing(staff_client, shop, data, field, error):
    PartnerFactory(code="gone", status="inactive")
    before = snapshot()

    response = staff_client.post(f"/staff/contacts/{shop['contact'].pk}/", data)

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [error]}
    assert messages_of(response) == []
    assert "There is a problem: correct it and send the form again" in page_text(response)
    assert snapshot() == before


def test_manual_referral_needs_the_permission(client, shop):
    viewer = UserFactory(is_staff=True)
    client.force_login(viewer)
    url = f"/staff/contacts/{shop['contact'].pk}/"
    before = snapshot()

    page = client.get(url)
    response = client.post(url, {"partner": "jane"})

    assert page.status_code == 200
    assert "Add a referral by hand" not in page_text(page)
    assert response.status_code == 403
    assert snapshot() == before


# --- A partner's activity ---------------------------------------------------------------------


def test_partner_activity_shows_ledger_lines_payments_and_emails(
    staff_client, api, shop, batch, django_capture_on_commit_callbacks
):
    PartnerFactory(code="quiet", notify_sale=False)
    with django_capture_on_commit_callbacks(execute=True):  # o1's email stays queued
        sell(api, "o2", "2026-11-05", "500.00", "jane")
    defaults_update(data={"skip_notifications": True}, acting_user=None)
    sell(api, "o3", "2026-11-06", "100.00", "jane")
    sell(api, "o4", "2026-11-06", "100.00", "quiet")

    response = staff_client.get(
        "/staff/crm/partners/JANE/activity/", {"start": "2026-11-01", "end": "2026-11-30"}
    )

    context = response.context
    [summary] = context["summaries"]
    assert (
        summary.currency,
        summary.beginning_balance,
        summary.earned,
        summary.clawbacks,
        summary.payments,
        summary.ending_balance,
    ) == (
        "USD",
        D("75.00"),
        D("60.00"),
        D("0.00"),
        D("75.00"),
        D("60.00"),
    )
    assert [
        (row["line"].order.order_id, row["line"].amount, row["words"]) for row in context["lines"]
    ] == [
        (
            "o2",
            D("50.00"),
            "Sale, level 1: credited because the order named them explicitly. "
            "Program Gold pays 10 % of 500.00 at level 1.",
        ),
        (
            "o3",
            D("10.00"),
            "Sale, level 1: credited because the order named them explicitly. "
            "Program Gold pays 10 % of 100.00 at level 1.",
        ),
    ]
    assert [(p.batch_id, p.amount) for p in context["payments"]] == [(batch.pk, D("75.00"))]
    notifications = context["notifications_page"].object_list
    assert [(n.event.event_id, n.status, n.reason) for n in notifications if n.event] == [
        ("o3", "skipped", "Skip notifications is on in the defaults."),
        ("o2", "sent", ""),
        ("o1", "queued", ""),
    ]
    # The payout made to them is an email too (issue 17).
    assert [(n.kind, n.payment.amount) for n in notifications if not n.event] == [
        ("payout", D("75.00"))
    ]
    assert "Skip notifications is on in the defaults." in page_text(response)
    quiet = staff_client.get("/staff/crm/partners/quiet/activity/")
    assert [(n.status, n.reason) for n in quiet.context["notifications_page"].object_list] == [
        ("skipped", "Skip notifications is on in the defaults.")
    ]


def test_partner_activity_of_a_partner_without_anything(staff_client, shop):
    PartnerFactory(code="newbie")

    response = staff_client.get("/staff/crm/partners/newbie/activity/")

    [summary] = response.context["summaries"]
    assert (summary.currency, summary.ending_balance) == ("USD", D("0"))
    text = page_text(response)
    assert "No commissions yet." in text
    assert "No emails yet." in text


def test_partner_activity_of_an_unknown_partner_is_404(staff_client, shop):
    assert staff_client.get("/staff/crm/partners/nobody1/activity/").status_code == 404


# --- Payouts -------------------------------------------------------------------------------


@pytest.fixture
def owed(api):
    """October, $10 a sale: alice is owed 20.00, bobby 10.00, carol 0.00 (refunded), and dave
    -10.00 (a September sale, paid in September, refunded in October)."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    for code, name in [
        ("alice", "Alice Able"),
        ("bobby", "Bob By"),
        ("carol", "Carol C"),
        ("dave", "=Dave HYPERLINK"),
    ]:
        give_payout_details(PartnerFactory(code=code, name=name))
    sell(api, "d1", "2026-09-10", "10.00", "dave")
    payout_batch_create(start=date(2026, 9, 1), end=date(2026, 9, 30), method="earned_in_range")
    sell(api, "a1", "2026-10-05", "10.00", "alice")
    sell(api, "a2", "2026-10-06", "10.00", "alice")
    sell(api, "b1", "2026-10-05", "10.00", "bobby")
    sell(api, "c1", "2026-10-05", "10.00", "carol")
    refund(api, "c1-r", "c1", "2026-10-07")
    refund(api, "d1-r", "d1", "2026-10-08")


OCTOBER_BATCH = {
    "start": "2026-10-01",
    "end": "2026-10-31",
    "method": "earned_in_range",
    "minimum": "",
}


def preview_and_confirm(staff_client, data):
    """The staff page's two steps: the preview (a draft), then Confirm."""
    staff_client.post("/staff/payouts/", data, follow=True)
    batch = PayoutBatch.objects.latest("pk")
    assert batch.status == "draft"
    return staff_client.post(f"/staff/payouts/{batch.pk}/confirm/", follow=True)


def test_staff_create_a_payout_batch_for_positive_balances(staff_client, staff_user, owed):
    before = snapshot()
    preview = staff_client.post("/staff/payouts/", OCTOBER_BATCH, follow=True)

    batch = PayoutBatch.objects.latest("pk")
    assert preview.redirect_chain == [(f"/staff/payouts/{batch.pk}/", 302)]
    assert messages_of(preview) == [
        f"Preview of payout batch {batch.pk}: 2 payments, total 30.00 USD. Nothing is "
        "recorded until you confirm it. 2 left out (see why below)."
    ]
    assert [(r["partner"], r["amount"]) for r in batch.preview] == [
        ("alice", "20.00"),
        ("bobby", "10.00"),
    ]
    assert [(r["partner"], r["amount"], r["reason"]) for r in batch.left_out] == [
        ("carol", "0.00", "nothing owed (the balance is not positive)"),
        ("dave", "-10.00", "nothing owed (the balance is not positive)"),
    ]
    # The draft recorded nothing: no payment, no entry tied.
    assert snapshot()[3:] == before[3:]

    response = staff_client.post(f"/staff/payouts/{batch.pk}/confirm/", follow=True)

    assert messages_of(response) == [
        f"Payout batch {batch.pk} confirmed: 2 payments, total 30.00 USD."
    ]
    batch.refresh_from_db()
    assert (batch.start, batch.end, batch.method, batch.minimum, batch.created_by) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
        "earned_in_range",
        D("0"),
        staff_user.username,
    )
    assert [(p.partner.code, p.amount) for p in response.context["object_list"]] == [
        ("alice", D("20.00")),
        ("bobby", D("10.00")),
    ]
    download = staff_client.get(f"/staff/payouts/{batch.pk}/csv/")
    assert isinstance(download, StreamingHttpResponse)
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == (
        f'attachment; filename="payout-batch-{batch.pk}.csv"'
    )
    assert b"".join(download.streaming_content).decode() == (
        "partner_code,name,email,amount,currency,batch_id\r\n"
        f"alice,Alice Able,alice@partners.example,20.00,USD,{batch.pk}\r\n"
        f"bobby,Bob By,bobby@partners.example,10.00,USD,{batch.pk}\r\n"
    )


def test_a_batch_with_a_minimum_and_balance_plus_earned(staff_client, owed):
    response = preview_and_confirm(
        staff_client,
        {
            **OCTOBER_BATCH,
            "method": "balance_plus_earned",
            "minimum": "15.00",
        },
    )

    batch = PayoutBatch.objects.latest("pk")
    assert messages_of(response) == [
        f"Payout batch {batch.pk} confirmed: 1 payment, total 20.00 USD."
    ]
    assert [(r["partner"], r["reason"]) for r in batch.left_out] == [
        ("bobby", "below the minimum"),
        ("carol", "nothing owed (the balance is not positive)"),
        ("dave", "nothing owed (the balance is not positive)"),
    ]
    assert [(p.partner.code, p.amount) for p in batch.payments.all()] == [("alice", D("20.00"))]


def test_a_batch_that_pays_nobody_says_so(staff_client, owed):
    response = preview_and_confirm(
        staff_client,
        {
            **OCTOBER_BATCH,
            "start": "2026-08-01",
            "end": "2026-08-31",
        },
    )

    batch = PayoutBatch.objects.latest("pk")
    assert messages_of(response) == [
        f"Payout batch {batch.pk} confirmed: 0 payments, total 0.00 USD. No partner had a "
        "positive balance of at least the minimum to pay."
    ]
    assert "This batch paid nobody" in page_text(response)


def test_csv_cells_cannot_run_as_spreadsheet_formulas(staff_client, api, owed):
    sell(api, "d2", "2026-11-03", "10.00", "dave")
    sell(api, "d3", "2026-11-04", "10.00", "dave")
    preview_and_confirm(
        staff_client,
        {
            **OCTOBER_BATCH,
            "start": "2026-11-01",
            "end": "2026-11-30",
            "method": "balance_plus_earned",
        },
    )
    batch = PayoutBatch.objects.latest("pk")

    download = staff_client.get(f"/staff/payouts/{batch.pk}/csv/")

    rows = list(csv.reader(io.StringIO(download.getvalue().decode())))
    assert [row for row in rows if row[0] == "dave"] == [
        ["dave", "'=Dave HYPERLINK", "dave@partners.example", "10.00", "USD", str(batch.pk)]
    ]


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({**OCTOBER_BATCH, "end": "2026-09-30"}, "end", "The end must not be before the start."),
        (
            {**OCTOBER_BATCH, "method": "everything"},
            "method",
            "Select a valid choice. everything is not one of the available choices.",
        ),
        (
            {**OCTOBER_BATCH, "minimum": "-1"},
            "minimum",
            "Ensure this value is greater than or equal to 0.",
        ),
        ({**OCTOBER_BATCH, "start": ""}, "start", "This field is required."),
    ],
    ids=["end-before-start", "unknown-method", "negative-minimum", "no-start"],
)
def test_refused_batches_write_nothing(staff_client, owed, data, field, error):
    before = snapshot()

    response = staff_client.post("/staff/payouts/", data)

    assert response.status_code == 200
    assert response.context["form"].errors == {field: [error]}
    assert snapshot() == before


def test_creating_a_batch_needs_the_permission(client, owed):
    viewer = UserFactory(is_staff=True)
    client.force_login(viewer)
    before = snapshot()

    page = client.get("/staff/payouts/")
    refused = client.post("/staff/payouts/", OCTOBER_BATCH)

    assert page.status_code == 200
    assert page.context["can_create"] is False
    assert "Preview payout batch" not in page_text(page)
    assert refused.status_code == 403
    assert snapshot() == before
    viewer.user_permissions.add(Permission.objects.get(codename="add_payoutbatch"))
    client.force_login(viewer)
    allowed = client.post("/staff/payouts/", OCTOBER_BATCH)
    assert allowed.status_code == 302
    assert PayoutBatch.objects.count() == len(before[2]) + 1
    # A draft made by someone with the right: the viewer without it cannot confirm it,
    # throw it away or mark its payments.
    draft = PayoutBatch.objects.latest("pk")
    viewer.user_permissions.clear()
    client.force_login(UserFactory(is_staff=True))
    before = snapshot()
    assert client.post(f"/staff/payouts/{draft.pk}/confirm/").status_code == 403
    assert client.post(f"/staff/payouts/{draft.pk}/discard/").status_code == 403
    assert snapshot() == before


def test_payouts_page_lists_batches_and_suggests_last_month(staff_client, owed):
    response = staff_client.get("/staff/payouts/")

    [september] = response.context["object_list"]
    assert (september.payment_count, september.total) == (1, D("10.00"))
    form = response.context["form"]
    today = timezone.now().date()
    assert (form["start"].value(), form["end"].value()) == previous_month(today)


@pytest.mark.parametrize(
    ("today", "month"),
    [
        (date(2026, 11, 24), (date(2026, 10, 1), date(2026, 10, 31))),
        (date(2026, 1, 1), (date(2025, 12, 1), date(2025, 12, 31))),
        (date(2028, 3, 31), (date(2028, 2, 1), date(2028, 2, 29))),
    ],
    ids=["november", "new-year", "leap-february"],
)
def test_previous_month(today, month):
    assert previous_month(today) == month


# --- Queries -------------------------------------------------------------------------------

LISTS = [
    "/staff/orders/",
    "/staff/orders/o1/",
    "/staff/contacts/",
    "/staff/crm/partners/jane/activity/",
    "/staff/payouts/",
    "/staff/reports/payments/",
]


@pytest.mark.parametrize("url", LISTS)
def test_pages_make_as_many_queries_whatever_they_show(staff_client, api, shop, batch, url):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(url).status_code == 200
        return len(queries)

    few = count()
    for n in range(2, 6):
        sell(api, f"o{n}", f"2026-11-0{n}", "100.00", "jane", email=f"buyer{n}@example.com")
        refund(api, f"r{n}", f"o{n}", f"2026-11-0{n + 1}", "10.00")
    refund(api, "r1-more", "o1", "2026-11-20", "100.00")
    payout_batch_create(
        start=date(2026, 11, 1), end=date(2026, 11, 30), method="balance_plus_earned"
    )

    assert count() == few
