"""The intake's statements run prepared, once per connection (commissions.statements)."""

from decimal import Decimal

import pytest
from django.db import DataError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from commissions import statements
from commissions.models import Commission, Event, Notification, Order
from partners import services as partner_services
from partners.services import defaults_update
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgresql("prepared statements are PostgreSQL's"),
]
ORDERS = "/api/v1/events/orders/"
D = Decimal


@pytest.fixture
def rep(db):
    defaults_update(
        data={"levels": 2, "payout_on_sale": True, "payout_percent": True}, acting_user=None
    )
    ProgramFactory(
        priority=1,
        levels=2,
        payout_on_sale=True,
        payout_percent=True,
        rates={1: {"sale_percent": D("10")}, 2: {"sale_percent": D("5")}},
    )
    return PartnerFactory(code="rep", parent=PartnerFactory(code="boss"))


def order(api, n: int, sale_partner: str | None = "rep"):
    body = {
        "event_id": f"o-{n}",
        "contact": {"email": f"buyer{n}@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
    }
    if sale_partner:
        body["sale_partner"] = sale_partner
    return api.post(ORDERS, body, format="json")


def _deallocate_all():
    """What DISCARD ALL or a pooler's other connection does. The tracker's statement goes
    too, and it heals itself only outside a transaction (a test runs in one): forgotten."""
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    partner_services._click_track_runs.pop(connection.connection, None)


def _forget_prepared():
    """As a new connection: nothing prepared on the server, nothing remembered here."""
    _deallocate_all()
    statements._prepared_by_connection.pop(connection.connection, None)


def _intake_statements(queries) -> list[str]:
    """The first word of each statement the intake's own code sent (not the ORM's)."""
    return [q["sql"].split(" ", 1)[0] for q in queries if "rp_" in q["sql"]]


def test_the_first_order_prepares_each_statement_and_later_ones_only_execute(api, rep):
    _forget_prepared()
    with CaptureQueriesContext(connection) as first:
        assert order(api, 1).status_code == 201
    with CaptureQueriesContext(connection) as second:
        assert order(api, 2).status_code == 201

    assert len(second) <= len(first)  # the first also reads what is then remembered
    prepared = _intake_statements(first)
    assert prepared and set(prepared) == {"PREPARE"}
    assert all("; EXECUTE rp_" in q["sql"] for q in first if q["sql"].startswith("PREPARE"))
    assert _intake_statements(second) == ["EXECUTE"] * len(prepared)
    assert list(Commission.objects.order_by("order__order_id", "level").values_list(
        "order__order_id", "partner__code", "amount")) == [
        ("o-1", "rep", D("10.00")), ("o-1", "boss", D("5.00")),
        ("o-2", "rep", D("10.00")), ("o-2", "boss", D("5.00")),
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)  # autocommit between statements, as in production
def test_statements_lost_on_the_server_are_prepared_again_and_each_order_is_written_once(api, rep):
    assert order(api, 1).status_code == 201
    _deallocate_all()
    # No partner code: the first statement to fail is inside the intake's transaction,
    # which runs once more.
    assert order(api, 2, sale_partner=None).status_code == 201
    _deallocate_all()
    # The partner code is read before the transaction: that statement is prepared again
    # at once.
    assert order(api, 3).status_code == 201

    for n, lines in ((2, 0), (3, 2)):
        assert Event.objects.filter(event_id=f"o-{n}").count() == 1
        assert Order.objects.filter(order_id=f"o-{n}").count() == 1
        assert Commission.objects.filter(order__order_id=f"o-{n}").count() == lines
        assert Notification.objects.filter(event__event_id=f"o-{n}").count() == lines
    assert order(api, 4).status_code == 201  # and the next one runs the new statements


def test_each_statement_is_prepared_again_every_so_many_runs(monkeypatch, db):
    monkeypatch.setattr(statements, "PREPARE_EVERY", 3)
    _forget_prepared()
    sql = "SELECT %s::int + 1"
    kinds = []
    for n in range(7):
        with CaptureQueriesContext(connection) as queries:
            assert statements.execute(sql, [n]) == [(n + 1,)]
        kinds.append(queries[0]["sql"].split(" ", 1)[0])

    assert kinds == ["PREPARE", "EXECUTE", "EXECUTE", "DEALLOCATE", "EXECUTE", "EXECUTE",
                     "DEALLOCATE"]  # fmt: skip


def test_the_setting_turns_them_off(settings, api, rep):
    settings.PREPARED_STATEMENTS = False
    _forget_prepared()
    with CaptureQueriesContext(connection) as queries:
        assert order(api, 1).status_code == 201
    assert _intake_statements(queries) == []


def test_statements_with_lists_or_many_values_are_sent_as_they_are(db):
    _forget_prepared()
    with CaptureQueriesContext(connection) as queries:
        assert statements.execute("SELECT %s::uuid[]", [[]]) == [([],)]
        many = statements.PREPARED_MAX_PARAMETERS + 1
        sql = "SELECT " + " + ".join(["%s::int"] * many)
        assert statements.execute(sql, [1] * many) == [(many,)]
    assert [q["sql"].split(" ", 1)[0] for q in queries] == ["SELECT", "SELECT"]


def test_placeholders_are_numbered_and_percent_signs_left_to_the_driver():
    sql = "SELECT %s, 'a%%b', %s WHERE x LIKE 'c%%'"
    assert statements._numbered(sql) == "SELECT $1, 'a%%b', $2 WHERE x LIKE 'c%%'"


def test_inside_a_transaction_a_lost_statement_fails_and_is_prepared_next_time(db):
    assert statements.execute("SELECT %s::int", [1]) == [(1,)]
    _deallocate_all()
    with pytest.raises(OperationalError), transaction.atomic():
        statements.execute("SELECT %s::int", [2])  # the transaction is aborted: it goes up
    with CaptureQueriesContext(connection) as queries:
        assert statements.execute("SELECT %s::int", [3]) == [(3,)]
    assert queries[0]["sql"].startswith("PREPARE rp_")


def test_a_statement_whose_prepare_failed_is_prepared_under_a_new_name(db):
    _forget_prepared()
    with pytest.raises(DataError, match="division by zero"), transaction.atomic():
        statements.execute("SELECT 1 / %s::int", [0])
    with CaptureQueriesContext(connection) as queries:
        assert statements.execute("SELECT 1 / %s::int", [1]) == [(1,)]
    assert queries[0]["sql"].startswith("PREPARE rp_")
