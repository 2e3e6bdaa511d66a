"""Every hand-written statement runs prepared, once per connection (referral_program.db),
the intake's and the tracker's alike, unless the PREPARED_STATEMENTS setting is off."""

from decimal import Decimal

import pytest
from django.db import DataError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commissions.models import Commission, Event, Notification, Order
from partners.models import Click
from partners.services.clicks import click_track
from partners.services.defaults import defaults_update
from partners.tokens import new_click_id
from referral_program.db import statements
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
    """What DISCARD ALL or a pooler's other connection does."""
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")


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


def test_named_placeholders_are_numbered_by_their_place_in_the_mapping():
    sql = "SELECT %(b)s, %(a)s, %(b)s, 'x%%'"
    assert statements._numbered(sql, ("a", "b")) == "SELECT $2, $1, $2, 'x%%'"


def test_named_values_run_prepared_and_a_name_may_stand_twice(db):
    _forget_prepared()
    sql = "SELECT %(n)s::int + %(m)s::int * %(n)s::int"
    with CaptureQueriesContext(connection) as queries:
        assert statements.execute(sql, {"n": 2, "m": 5}) == [(12,)]
        assert statements.execute(sql, {"m": 1, "n": 3}) == [(6,)]
    assert [q["sql"].split(" ", 1)[0] for q in queries] == ["PREPARE", "EXECUTE"]


def test_a_list_is_prepared_where_the_statement_casts_it(db):
    _forget_prepared()
    sql = "SELECT cardinality(%s::text[])"
    with CaptureQueriesContext(connection) as queries:
        assert statements.execute(sql, [["a", "b"]], arrays=True) == [(2,)]
        assert statements.execute(sql, [[]], arrays=True) == [(0,)]
    assert [q["sql"].split(" ", 1)[0] for q in queries] == ["PREPARE", "EXECUTE"]


def _server_prepared() -> list[str]:
    """The statements prepared on this test's connection, as PostgreSQL lists them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _click_and_order(api, n: int):
    at = timezone.now()
    click = Click(id=new_click_id(at), ip=f"198.51.100.{n}", user_agent="Firefox", at=at)
    assert click_track(code="jane", link_code=None, click=click, record=True).click_stored
    assert order(api, n).status_code == 201


def test_with_the_setting_off_nothing_is_prepared_on_the_server(settings, api, rep):
    PartnerFactory(code="jane")
    settings.PREPARED_STATEMENTS = False
    _forget_prepared()
    _click_and_order(api, 1)
    _click_and_order(api, 2)

    assert _server_prepared() == []
    assert Click.objects.count() == 2 and Order.objects.count() == 2


def test_with_the_setting_on_the_tracker_and_the_intake_statements_are_prepared(api, rep):
    PartnerFactory(code="jane")
    _forget_prepared()
    _click_and_order(api, 1)
    _click_and_order(api, 2)

    found = _server_prepared()
    assert any("partners_click" in sql and "jsonb_array_elements_text" in sql for sql in found)
    assert any("commissions_" in sql for sql in found)
    assert Click.objects.count() == 2 and Order.objects.count() == 2


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
