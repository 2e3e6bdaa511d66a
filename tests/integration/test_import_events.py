"""`manage.py import_events`: backfills through the API's rules (issue 6)."""

import json
import time
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from commissions.models import Commission, Contact, Event, Notification, Order, Refund
from partners.models import Partner
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db


def rows():
    return {m.__name__: m.objects.count() for m in (Event, Contact, Order, Refund, Commission)}


@pytest.fixture
def shop(db):
    ProgramFactory(priority=1, rates={1: {"sale_amount": Decimal("10.00")}})
    PartnerFactory(code="jane")


def write(tmp_path, events):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(e if isinstance(e, str) else json.dumps(e) for e in events) + "\n")
    return path


GOOD = [
    {
        "kind": "web_form",
        "event_id": "f1",
        "contact": {"email": "ada@example.com"},
        "lead_partner": "jane",
        "occurred_at": "2026-10-01T10:00:00Z",
    },
    {
        "event_id": "o1",
        "contact": {"email": "ada@example.com"},
        "sale_partner": "jane",
        "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
        "occurred_at": "2026-10-02T10:00:00Z",
    },
    {"event_id": "r1", "order_id": "o1", "amount": "50.00", "occurred_at": "2026-10-03T10:00:00Z"},
]


def first_line(out: str) -> str:
    """The summary; the line after it gives the time taken."""
    return out.splitlines()[0]


def run(path, *args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("import_events", str(path), *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def test_a_file_is_imported_through_the_same_rules(tmp_path, shop):
    out, _, error = run(write(tmp_path, GOOD))

    assert error is None
    assert first_line(out) == "3 lines: 3 recorded, 0 already recorded, 0 failed."
    # the sale pays 10.00; refunding 50 of the 100 paid takes back half of it
    assert rows() == {"Event": 3, "Contact": 1, "Order": 1, "Refund": 1, "Commission": 2}
    amounts = sorted(Commission.objects.values_list("amount", flat=True))
    assert amounts == [Decimal("-5.00"), Decimal("10.00")]
    # Imported events email nobody and log no notification (SPEC §5.6); the summary counts
    # the emails the API would have sent: jane's lead (the web form) and sale (the order).
    assert not Notification.objects.exists()
    assert out.splitlines()[2] == (
        "2 email(s) skipped: imported events email nobody and log no notification."
    )


def test_the_emails_skipped_leave_out_those_the_api_would_not_send(tmp_path, shop):
    Partner.objects.filter(code="jane").update(notify_lead=False)

    out, _, error = run(write(tmp_path, GOOD))

    assert error is None
    assert out.splitlines()[2].startswith("1 email(s) skipped: ")
    assert not Notification.objects.exists()


def test_running_the_file_again_changes_nothing(tmp_path, shop):
    path = write(tmp_path, GOOD)
    run(path)
    before = rows()

    out, _, error = run(path)

    assert error is None
    assert first_line(out) == "3 lines: 0 recorded, 3 already recorded, 0 failed."
    assert rows() == before


def test_bad_lines_are_reported_with_their_number_and_the_rest_goes_on(tmp_path, shop):
    events = [
        GOOD[0],
        "{not json",
        {**GOOD[1], "items": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]},
        GOOD[1],
        {"event_id": "r9", "order_id": "nope"},
        {"event_id": "x", "kind": "invoice"},
    ]
    out, err, error = run(write(tmp_path, events))

    assert first_line(out) == "6 lines: 2 recorded, 0 already recorded, 4 failed."
    assert "line 2: line: Not JSON" in err
    assert "line 3: items.0.quantity: Ensure this value is greater than or equal to 1." in err
    assert "line 5: order_id: No order 'nope' was recorded." in err
    assert "line 6: kind: Unknown kind 'invoice'" in err
    assert str(error) == "4 line(s) failed: 2, 3, 5, 6"
    assert rows()["Order"] == 1


def test_a_dry_run_validates_and_writes_nothing(tmp_path, shop):
    out, _, error = run(
        write(tmp_path, [*GOOD[:2], {**GOOD[1], "event_id": "o2", "sale_partner": "nobody"}]),
        "--dry-run",
    )

    assert "3 lines: 2 valid, 0 already recorded, 1 failed." in out
    assert error is not None
    assert rows() == {"Event": 0, "Contact": 0, "Order": 0, "Refund": 0, "Commission": 0}


def test_text_beyond_ascii_is_written_as_it_came(tmp_path, shop):
    """The COPY text goes to PostgreSQL as UTF-8 bytes (`copy_send`): names, SKUs and the
    stored payload keep every character, accents, other scripts and emoji alike."""
    order = {
        "event_id": "o-1",
        "contact": {"email": "zoe@example.com", "first_name": "Zoë", "last_name": "Ångström 日本"},
        "sale_partner": "jane",
        "items": [{"sku": "TÉ-☕", "quantity": 1, "unit_price": "100.00"}],
        "occurred_at": "2026-10-02T10:00:00Z",
    }

    out, _, error = run(write(tmp_path, [order]))

    assert error is None, out
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("Zoë", "Ångström 日本")
    event = Event.objects.get()
    assert (event.event_id, event.payload["items"][0]["sku"]) == ("o-1", "TÉ-☕")
    assert Order.objects.get().items[0]["sku"] == "TÉ-☕"
    assert Commission.objects.get().amount == Decimal("10.00")


def _contact_scans() -> int:
    """Whole-table scans of the contacts so far, once every other connection's count is in
    (the import's writer reports its own as its connection closes): the same for 0.5 s."""
    counts = []
    for _ in range(50):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s",
                [Contact._meta.db_table],
            )
            counts.append(cursor.fetchone()[0])
        if len(counts) >= 6 and counts[-1] == counts[-6]:
            break
        time.sleep(0.1)
    return counts[-1]


@pytest.mark.django_db(transaction=True)
def test_foreign_key_checks_are_planned_for_the_tables_as_they_grow(tmp_path, shop):
    """PostgreSQL plans each foreign-key check once per connection. Planned while the first
    batch left a contacts table analyzed when small a few pages long, an order's check of
    its contact would scan the whole table, for every order after (the import then slows
    as the table grows). The writer's plans are made again after each batch."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plans of its foreign-key checks")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Contact._meta.db_table}")  # statistics of an empty table
    orders = [
        {
            "event_id": f"o{n}",
            "contact": {"email": f"c{n}@example.com"},
            "sale_partner": "jane",
            "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
            "occurred_at": "2026-10-02T10:00:00Z",
        }
        for n in range(3000)
    ]
    before = _contact_scans()

    out, _, error = run(write(tmp_path, orders), "--batch-size", "250")

    assert error is None, out
    assert Order.objects.count() == 3000
    # A scan per order while the table is a few pages long (the first batches), then the
    # primary key's index; without the plans made again: a scan for each of the 3,000.
    assert _contact_scans() - before < 1000
