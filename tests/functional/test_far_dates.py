"""Days beyond what the program can hold are a 400 naming the field, everywhere a day is
read (issue 21, finding 4): `end=9999-12-31` answered 500 on the API ledger, every staff
report and its CSV (which streamed 200 and then broke off), the orders list, partner
activity, the Partner Center ledger and its CSV, and `POST /api/v1/payouts/`.

Every door reads days with `referral_program.dates.parse_day`; 9999-12-30, the last day a
range can end on, works everywhere.
"""

from datetime import date

import pytest

from commissions.models import PayoutBatch
from partners.models import Partner
from referral_program.dates import DayError, parse_day
from tests.functional.test_partner_center import history, jane, logged_in, program  # noqa: F401

pytestmark = pytest.mark.django_db

TOO_LATE = "Enter a day up to 9999-12-30."

# (who, URL) of every GET that reads a range of days.
STAFF_PAGES = [
    "/staff/orders/",
    "/staff/crm/partners/jane/activity/",
    "/staff/reports/ledger/",
    "/staff/reports/activity/",
    "/staff/reports/payments/",
]
STAFF_CSVS = [
    "/staff/reports/ledger/csv/",
    "/staff/reports/activity/csv/",
    "/staff/reports/payments/csv/",
]
PARTNER_PAGE, PARTNER_CSV = "/partner/ledger/", "/partner/ledger.csv"
API_LEDGER = "/api/v1/partners/jane/ledger/"

FAR = [{"start": "2026-01-01", "end": "9999-12-31"}, {"start": "9999-12-31"}]
FAR_IDS = ["end", "start"]


def field_of(query: dict) -> str:
    return next(name for name, value in query.items() if value == "9999-12-31")


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("query", FAR, ids=FAR_IDS)
@pytest.mark.parametrize("url", STAFF_PAGES)
def test_a_staff_page_answers_400_naming_the_day_that_is_too_late(staff_client, url, query):
    response = staff_client.get(url, query)

    assert response.status_code == 400
    holder = response.context.get("filterset") or response.context["form"]
    errors = getattr(holder, "form", holder).errors
    assert errors == {field_of(query): [TOO_LATE]}
    assert TOO_LATE in response.text


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("query", FAR, ids=FAR_IDS)
@pytest.mark.parametrize("url", STAFF_CSVS)
def test_a_staff_csv_answers_400_before_it_streams_anything(staff_client, url, query):
    response = staff_client.get(url, query)

    assert response.status_code == 400
    assert not response.streaming
    assert response.text == f"Invalid filters. {field_of(query)}: {TOO_LATE}"


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("query", FAR, ids=FAR_IDS)
def test_any_partner_gets_400_on_their_ledger_and_its_csv(query):
    client = logged_in(Partner.objects.get(code="jane"))

    page = client.get(PARTNER_PAGE, query)
    download = client.get(PARTNER_CSV, query)

    assert page.status_code == 400
    assert page.context["form"].errors == {field_of(query): [TOO_LATE]}
    assert download.status_code == 400
    assert not download.streaming
    assert download.text == f"{field_of(query)}: {TOO_LATE}"


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("query", FAR, ids=FAR_IDS)
def test_the_api_ledger_answers_400_naming_the_field(api, query):
    response = api.get(API_LEDGER, query)

    assert response.status_code == 400
    assert response.json() == {field_of(query): [TOO_LATE]}


@pytest.mark.usefixtures("history")
def test_a_payout_batch_to_the_last_day_of_9999_is_400_and_writes_nothing(api, staff_client):
    batches = PayoutBatch.objects.count()
    body = {"start": "2026-01-01", "end": "9999-12-31", "method": "earned_in_range"}

    response = api.post("/api/v1/payouts/", body, format="json")
    page = staff_client.post("/staff/payouts/", body)

    assert response.status_code == 400
    assert response.json() == {"end": [TOO_LATE]}
    assert page.status_code == 200  # the form again, with the error by its field
    assert page.context["form"].errors == {"end": [TOO_LATE]}
    assert PayoutBatch.objects.count() == batches


@pytest.mark.usefixtures("history")
def test_the_last_day_a_range_can_end_on_works_everywhere(staff_client, api):
    query = {"start": "2026-01-01", "end": "9999-12-30"}
    partner = logged_in(Partner.objects.get(code="jane"))

    answers = [staff_client.get(url, query) for url in STAFF_PAGES + STAFF_CSVS]
    answers += [partner.get(PARTNER_PAGE, query), partner.get(PARTNER_CSV, query)]
    answers.append(api.get(API_LEDGER, query))
    payout = api.post("/api/v1/payouts/", {**query, "method": "earned_in_range"}, format="json")

    assert [a.status_code for a in answers] == [200] * len(answers)
    assert payout.status_code == 201, payout.json()
    assert payout.json()["end"] == "9999-12-30"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9999-12-31", TOO_LATE),
        ("2026-13-01", "Enter a valid date (YYYY-MM-DD)."),
        ("0000-01-01", "Enter a valid date (YYYY-MM-DD)."),
        ("11/18/2026", "Enter a valid date (YYYY-MM-DD)."),
        ("2026-11-18T00:00", "Enter a valid date (YYYY-MM-DD)."),
        ("20261118", "Enter a valid date (YYYY-MM-DD)."),
        ("", "Enter a valid date (YYYY-MM-DD)."),
        (None, "Enter a valid date (YYYY-MM-DD)."),
        (date(9999, 12, 31), TOO_LATE),
    ],
)
def test_the_one_parser_refuses_with_a_message(text, message):
    with pytest.raises(DayError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_day(text)


def test_the_one_parser_reads_iso_days():
    assert parse_day(" 2026-11-18 ") == date(2026, 11, 18)
    assert parse_day("0001-01-01") == date(1, 1, 1)
    assert parse_day("9999-12-30") == date(9999, 12, 30)
