"""Reports per tracking link and per ad code (SPEC §12, issue 18 item 5): exact figures from
clicks on /go/ and events posted through the API, each partner seeing only their own, the
staff report across partners, the CSVs, and a constant query count."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from commissions.link_reports import link_report
from partners.services.defaults import defaults_update
from tests.factories import ProgramFactory, StaffFactory, TrackingLinkFactory
from tests.functional.test_partner_center import csv_rows, logged_in, partner_with_login

pytestmark = pytest.mark.django_db

D = Decimal
UA1 = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"
UA2 = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1"
FORMS, ORDERS, REFUNDS = (
    "/api/v1/events/web-forms/",
    "/api/v1/events/orders/",
    "/api/v1/events/refunds/",
)


def click(path: str, ip: str, ua: str = UA1) -> str:
    response = Client().get(path, headers={"user-agent": ua}, REMOTE_ADDR=ip)
    assert response.status_code == 302
    return response.cookies["rp_ref"].value


def post(api, url: str, payload: dict) -> dict:
    response = api.post(url, payload, format="json")
    assert response.status_code == 201, response.data
    return response.json()


def order(api, event_id: str, email: str, price: str, **fields) -> dict:
    items = [{"sku": "A", "quantity": 1, "unit_price": price}]
    payload = {"event_id": event_id, "contact": {"email": email}, "items": items, **fields}
    return post(api, ORDERS, payload)


@pytest.fixture
def shop(api):
    """alice: two clicks of one visitor on the default destination and an order through
    them; two visitors on "hair" with ad code fb, one filling a form and buying (then
    refunded); an order naming her explicitly. bobby: one click on hair/fb and its order."""
    defaults_update(data={"duplicate_click_minutes": 0}, acting_user=None)
    TrackingLinkFactory(
        code="home", name="Home", destination="https://shop.example/", is_default=True
    )
    TrackingLinkFactory(code="hair", name="Hair", destination="https://shop.example/hair")
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    alice, bobby = partner_with_login("alice"), partner_with_login("bobby")

    home = click("/go/alice/", "10.0.0.1")
    click("/go/alice/", "10.0.0.1")
    hair = click("/go/hair/alice/?ad=fb", "10.0.0.2")
    click("/go/hair/alice/?ad=fb", "10.0.0.3", UA2)
    order(api, "o1", "ann@example.com", "100.00", tracking_token=home)
    post(
        api,
        FORMS,
        {"event_id": "f1", "contact": {"email": "bea@example.com"}, "tracking_token": hair},
    )
    order(api, "o2", "bea@example.com", "200.00", tracking_token=hair)
    post(api, REFUNDS, {"event_id": "r1", "order_id": "o2"})
    order(api, "o3", "cy@example.com", "50.00", sale_partner="alice")

    bob = click("/go/hair/bobby/?ad=fb", "10.0.0.9")
    order(api, "o4", "dee@example.com", "80.00", tracking_token=bob)
    return {"alice": alice, "bobby": bobby}


def figures(row) -> tuple:
    return (row.clicks, row.visitors, row.leads, row.orders, row.earned, row.net, row.conversion)


def usd(amount: str) -> dict:
    return {"USD": D(amount)}


def test_alice_figures_per_link_and_ad_code(shop):
    report = link_report(partners=[shop["alice"].pk], start=None, end=None)

    links = {row.key: figures(row) for row in report.links}
    assert links == {
        "default": (2, 1, 0, 1, usd("10.00"), usd("10.00"), D("100.0")),
        "home": (0, 0, 0, 0, {}, {}, None),
        "hair": (2, 2, 1, 1, usd("10.00"), usd("0.00"), D("50.0")),
    }
    ads = {row.key: figures(row) for row in report.ad_codes}
    assert ads == {
        "fb": (2, 2, 1, 1, usd("10.00"), usd("0.00"), D("50.0")),
        "": (2, 1, 0, 1, usd("10.00"), usd("10.00"), D("100.0")),
    }
    assert figures(report.unlinked) == (0, 0, 0, 1, usd("10.00"), usd("10.00"), None)
    assert figures(report.total) == (4, 3, 1, 3, usd("30.00"), usd("20.00"), D("100.0"))
    assert [(clicks, orders) for _, clicks, orders in report.days] == [(4, 2)]


def test_every_partner_and_one(shop):
    everyone = link_report(partners=None, start=None, end=None)
    hair = next(row for row in everyone.links if row.key == "hair")
    assert figures(hair) == (3, 3, 1, 2, usd("20.00"), usd("10.00"), D("66.7"))

    bobby = link_report(partners=[shop["bobby"].pk], start=None, end=None)
    assert [figures(row) for row in bobby.ad_codes] == [
        (1, 1, 0, 1, usd("10.00"), usd("10.00"), D("100.0"))
    ]
    assert figures(bobby.total)[:4] == (1, 1, 0, 1)


def row_cells(body: str, table: str, key: str) -> dict[str, str]:
    section = body[body.index(f'id="{table}"') :]
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', section, re.S).group(1)
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', row))


def test_the_partner_page_shows_only_their_own(shop):
    body = logged_in(shop["alice"]).get("/partner/reports/").content.decode()
    assert row_cells(body, "report-links", "hair") == {
        "earned": "10.00 USD", "net": "0.00 USD", "clicks": "2", "visitors": "2",
        "leads": "1", "orders": "1", "conversion": "50.0 %",
    }  # fmt: skip
    assert row_cells(body, "report-ad-codes", "fb")["clicks"] == "2"
    assert "<svg" in body

    bob = logged_in(shop["bobby"]).get("/partner/reports/").content.decode()
    assert row_cells(bob, "report-links", "hair")["clicks"] == "1"
    assert row_cells(bob, "report-links", "default")["clicks"] == "0"
    assert "alice" not in bob.lower().replace("/go/", "")


def test_the_partner_csv(shop):
    response = logged_in(shop["alice"]).get("/partner/reports.csv?start=&end=")
    assert response.status_code == 200
    rows = csv_rows(response)
    hair = next(row for row in rows if row[:2] == ["link", "hair"])
    assert hair[5:] == ["2", "2", "1", "1", "50.0", "USD", "10.00", "0.00"]
    assert ["ad_code", "fb"] in [row[:2] for row in rows]
    assert all(row[1] != "bobby" for row in rows)


def test_the_staff_report_and_its_filter(shop, client):
    staff = StaffFactory()
    client.force_login(staff)
    body = client.get("/staff/reports/links/").content.decode()
    assert row_cells(body, "report-links", "hair")["clicks"] == "3"
    body = client.get("/staff/reports/links/?partner=bobby").content.decode()
    assert row_cells(body, "report-links", "hair")["orders"] == "1"
    rows = csv_rows(client.get("/staff/reports/links/csv/?partner=alice&start=&end="))
    total = next(row for row in rows if row[0] == "total")
    assert total[5:] == ["4", "3", "1", "3", "100.0", "USD", "30.00", "20.00"]
    assert client.get("/staff/reports/links/?start=2026-02-01&end=2026-01-01").status_code == 400


def test_the_staff_report_is_for_staff_only(shop):
    partner = logged_in(shop["alice"])
    assert partner.get("/staff/reports/links/").status_code == 403
    assert partner.get("/staff/reports/links/csv/").status_code == 403


def test_a_bad_range_is_400(shop):
    client = logged_in(shop["alice"])
    assert client.get("/partner/reports/?start=2026-02-01&end=2026-01-01").status_code == 400
    assert client.get("/partner/reports.csv?start=nope").status_code == 400


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_links_clicks_or_orders(shop, api):
    client = logged_in(shop["alice"])
    staff = Client()
    staff.force_login(StaffFactory())
    few = queries(client, "/partner/reports/"), queries(staff, "/staff/reports/links/")
    for n in range(12):
        link = TrackingLinkFactory(code=f"more{n}")
        token = click(f"/go/{link.code}/alice/?ad=ad{n}", f"10.1.0.{n}")
        post(
            api,
            FORMS,
            {
                "event_id": f"fm{n}",
                "contact": {"email": f"m{n}@example.com"},
                "tracking_token": token,
            },
        )
        order(api, f"om{n}", f"m{n}@example.com", "10.00", tracking_token=token)
    many = queries(client, "/partner/reports/"), queries(staff, "/staff/reports/links/")
    assert many == few
    report = link_report(partners=[shop["alice"].pk], start=None, end=None)
    assert figures(report.total)[:4] == (16, 15, 13, 15)


def test_an_order_credited_by_a_history_entry_belongs_to_the_entrys_click(shop, api):
    """The trace names the history entry; its click_id names the click, on "hair" with fb.
    A second form of the same contact (source "contact") is not through a link."""
    defaults_update(data={"tracking_method": "history_and_cookies"}, acting_user=None)
    token = click("/go/hair/alice/?ad=news", "10.0.0.7")
    contact = {"email": "eve@example.com"}
    post(api, FORMS, {"event_id": "f2", "contact": contact, "tracking_token": token})
    post(api, FORMS, {"event_id": "f3", "contact": contact})
    sale = order(api, "o5", "eve@example.com", "30.00")
    assert sale["attribution"]["source"] == "history"

    report = link_report(partners=[shop["alice"].pk], start=None, end=None)
    news = next(row for row in report.ad_codes if row.key == "news")
    assert figures(news) == (1, 1, 1, 1, usd("10.00"), usd("10.00"), D("100.0"))
    hair = next(row for row in report.links if row.key == "hair")
    assert figures(hair)[:4] == (3, 3, 2, 2)
    assert figures(report.unlinked)[2:4] == (1, 1)  # the second form; o3, named explicitly
