"""The tracker's one-statement click (task H1): `click_track` resolves the code and stores
the click in one round trip, exactly as the lookup (`tracker_target`, whose prefix rule is
`code_candidates`) and the insert (`click_record`) did in two."""

import random
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partners.models import Click, PartnerStatus
from partners.selectors import code_candidates
from partners.services import clicks as click_services
from partners.services.clicks import _click_track_portable, click_track
from partners.services.defaults import defaults_ensure, defaults_update
from partners.tokens import new_click_id
from referral_program.db import statements
from tests.factories import PartnerFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"
# Both ways of tracking a click: the statement PostgreSQL runs, and the portable one
# (SQLite's, and the tracker's before task H1).
TRACKS = pytest.mark.parametrize(
    "track", [click_track, _click_track_portable], ids=["one-statement", "portable"]
)


def visit(**fields):
    """A click as the tracker makes it before knowing the partner."""
    at = fields.pop("at", None) or timezone.now()
    values = {"ip": "203.0.113.9", "user_agent": BROWSER, "ad_code": "", "referrer": ""}
    return Click(id=new_click_id(at), at=at, **{**values, **fields})


def set_prefixes(*prefixes):
    """Make `prefixes[-1]` the current prefix, the ones before it earlier prefixes."""
    for prefix in prefixes:
        defaults_update(data={"code_prefix": prefix}, acting_user=None)


def partner_code(track, code):
    target = track(code=code, link_code=None, click=visit(), record=False)
    return None if target.partner_id is None else PARTNER_CODES[target.partner_id]


PARTNER_CODES: dict[int, str] = {}


@pytest.fixture(autouse=True)
def _partner_codes():
    PARTNER_CODES.clear()
    yield
    PARTNER_CODES.clear()


def partners(*codes, status=PartnerStatus.ACTIVE):
    for code in codes:
        partner = PartnerFactory(code=code, status=status)
        PARTNER_CODES[partner.pk] = code


# --- The prefix rule: both ways pick the same partner ------------------------------------


@TRACKS
@pytest.mark.parametrize(
    ("history", "codes"),
    [
        (("vip-", "p-"), {"vip-jane": "jane", "p-jane": "jane", "jane": "jane"}),
        (("vip-", "p-"), {"P-JANE": "jane", "VIP-Jane": "jane", "x-jane": None}),
        (("VIP-",), {"vip-jane": "jane", "Vip-JANE": "jane"}),
        ((), {"jane": "jane", "nobody": None, "ja": None, "": None}),
    ],
    ids=["earlier-current-none", "case-and-unknown-prefix", "upper-case-prefix", "no-prefix"],
)
def test_codes_with_current_earlier_or_no_prefix(track, history, codes):
    partners("jane")
    set_prefixes(*history)
    assert {code: partner_code(track, code) for code in codes} == codes


@TRACKS
@pytest.mark.parametrize(
    ("history", "code", "expected"),
    [
        (("p-",), "p-jane", "jane"),  # the current prefix wins over no prefix
        (("",), "p-jane", "p-jane"),  # no prefix at all: the code as it is
        (("p-", ""), "p-jane", "p-jane"),  # no prefix wins over the earlier p-
        (("p-", ""), "p-p-jane", "p-jane"),
        (("p-", "x-"), "p-jane", "p-jane"),  # no prefix wins over the earlier p-
        (("p-", "x-"), "x-p-jane", "p-jane"),
        (("p-", "x-"), "x-jane", "jane"),
    ],
    ids=[
        "current-prefix-first",
        "no-prefix-now",
        "none-before-earlier",
        "earlier-then-code",
        "none-before-earlier-2",
        "current-then-code",
        "current-prefix",
    ],
)
def test_a_code_that_is_a_prefix_and_another_code(track, history, code, expected):
    partners("jane", "p-jane")
    set_prefixes(*history)
    assert partner_code(track, code) == expected


@TRACKS
@pytest.mark.parametrize("status", ["inactive", "pending"])
def test_a_partner_who_is_not_active_gives_way_to_the_next_reading(track, status):
    partners("p-jane")
    partners("jane", status=status)
    set_prefixes("p-")
    assert partner_code(track, "p-jane") == "p-jane"  # jane (current prefix) is skipped
    assert partner_code(track, "jane") is None


@TRACKS
def test_earlier_prefixes_rank_in_the_order_they_were_used(track):
    partners("b-jane", "jane")
    set_prefixes("a-", "a-b-", "z-")  # earlier: a-, a-b-; current z-
    # a-b-jane: "a-" + "b-jane" (earlier, first) beats "a-b-" + "jane" (earlier, second)
    assert partner_code(track, "a-b-jane") == "b-jane"


def test_the_statement_agrees_with_code_candidates_on_random_codes():
    """Random prefix histories, and partner codes that are other codes with a prefix in
    front, so that many codes can be read as the codes of several partners."""
    rng = random.Random(20260)
    history = ["".join(rng.choices("ab-", k=rng.randint(1, 3))) for _ in range(5)]
    set_prefixes(*history)
    defaults = defaults_ensure()
    prefixes = [defaults.code_prefix, "", *defaults.earlier_prefixes]
    codes = {"a" + "".join(rng.choices("ab-", k=rng.randint(3, 5))) for _ in range(6)}
    codes |= {prefix + code for prefix in prefixes for code in codes if prefix[:1].isalpha()}
    partners(*codes)
    active = {code.lower() for code in codes}
    ambiguous = 0
    for code in [f"{prefix}{code}" for prefix in [*prefixes, "b"] for code in sorted(codes)]:
        code = code.upper() if rng.random() < 0.5 else code
        candidates = code_candidates(code, defaults.code_prefix, defaults.earlier_prefixes)
        rule = next((c for c in candidates if c in active), None)
        assert partner_code(click_track, code) == rule, code
        assert partner_code(_click_track_portable, code) == rule, code
        ambiguous += len(set(candidates) & active) > 1
    assert ambiguous > 50  # the order of the prefixes decided


# --- What is stored ------------------------------------------------------------------------


@TRACKS
def test_the_click_is_stored_with_its_partner_and_tracking_link(track):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    hair = TrackingLinkFactory(code="haircare", destination="https://shop.example/hair")
    partners("jane")
    click = visit(ad_code="summer", referrer="https://blog.example/", ip="2001:db8::1")

    target = track(code="JANE", link_code="haircare", click=click, record=True)

    assert (target.click_stored, target.tracking_link_id) == (True, hair.pk)
    assert (target.destination, target.default_destination) == (
        "https://shop.example/hair",
        "https://shop.example/",
    )
    stored = Click.objects.get()
    assert (stored.id, stored.partner_id, stored.tracking_link_id) == (
        click.id,
        target.partner_id,
        hair.pk,
    )
    assert (stored.ad_code, stored.ip, stored.user_agent, stored.referrer, stored.at) == (
        "summer",
        "2001:db8::1",
        BROWSER,
        "https://blog.example/",
        click.at,
    )


@TRACKS
@pytest.mark.parametrize(
    ("code", "link_code", "record"),
    [("nobody", None, True), ("jane", None, False), ("sleepy", "haircare", True)],
    ids=["unknown-partner", "not-recorded", "inactive-partner"],
)
def test_nothing_is_stored_for_unknown_partners_or_unrecorded_clicks(
    track, code, link_code, record
):
    TrackingLinkFactory(code="haircare", destination="https://shop.example/hair")
    partners("jane")
    partners("sleepy", status=PartnerStatus.INACTIVE)

    target = track(code=code, link_code=link_code, click=visit(), record=record)

    assert target.click_stored is False
    assert Click.objects.count() == 0


@TRACKS
def test_an_unknown_tracking_link_goes_to_the_default_destination_without_a_link(track):
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    partners("jane")
    target = track(code="jane", link_code="gone", click=visit(), record=True)
    assert (target.tracking_link_id, target.destination) == (None, None)
    assert target.default_destination == "https://shop.example/"
    assert Click.objects.get().tracking_link_id is None


IP = "203.0.113.9"


@TRACKS
@pytest.mark.parametrize(
    ("minutes", "later", "ips", "user_agent", "stored"),
    [
        (30, timedelta(minutes=29), (IP, IP), BROWSER, False),
        (30, timedelta(minutes=30), (IP, IP), BROWSER, True),
        (30, timedelta(minutes=1), (IP, "203.0.113.10"), BROWSER, True),
        (30, timedelta(minutes=1), (IP, IP), BROWSER + " Edg/156", True),
        (0, timedelta(0), (IP, IP), BROWSER, True),
        (30, timedelta(minutes=1), (None, None), BROWSER, True),
    ],
    ids=[
        "repeat-inside-window",
        "window-over",
        "other-ip",
        "other-browser",
        "window-off",
        "no-ip-no-repeat-check",
    ],
)
def test_repeats_within_the_window_are_stored_once(track, minutes, later, ips, user_agent, stored):
    partners("jane")
    defaults_update(data={"duplicate_click_minutes": minutes}, acting_user=None)
    first = visit(ip=ips[0])
    assert track(code="jane", link_code=None, click=first, record=True).click_stored is True

    again = visit(ip=ips[1], user_agent=user_agent, at=first.at + later)
    target = track(code="jane", link_code=None, click=again, record=True)

    assert target.click_stored is stored
    assert target.duplicate_click_minutes == minutes
    assert Click.objects.count() == (2 if stored else 1)


@TRACKS
def test_the_same_click_id_twice_is_stored_once(track):
    partners("jane")
    defaults_update(data={"duplicate_click_minutes": 0}, acting_user=None)
    click = visit()
    again = Click(**{f.attname: getattr(click, f.attname) for f in Click._meta.concrete_fields})
    assert track(code="jane", link_code=None, click=click, record=True).click_stored is True
    assert track(code="jane", link_code=None, click=again, record=True).click_stored is False
    assert Click.objects.count() == 1


# --- One round trip, prepared once per connection -----------------------------------------


postgresql_only = pytest.mark.postgresql("the prepared statement is PostgreSQL's")


def _forget_prepared():
    """As a new connection: the statement neither prepared nor remembered (nor the
    intake's, which DEALLOCATE ALL takes too)."""
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    statements._prepared_by_connection.pop(connection.connection, None)


@postgresql_only
def test_the_first_click_prepares_and_runs_in_one_execute_later_ones_only_run():
    partners("jane")
    _forget_prepared()
    with CaptureQueriesContext(connection) as first:
        click_track(code="jane", link_code=None, click=visit(), record=True)
    with CaptureQueriesContext(connection) as second:
        click_track(code="jane", link_code=None, click=visit(ip="198.51.100.7"), record=True)

    assert len(first) == 1 and len(second) == 1
    name = _click_track_name()
    assert first[0]["sql"].startswith(f"PREPARE {name} AS ")
    assert f"; EXECUTE {name} (" in first[0]["sql"]
    assert second[0]["sql"].startswith(f"EXECUTE {name} (")
    assert Click.objects.count() == 2


def _click_track_name() -> str:
    """The name the tracker's statement is prepared under on this connection."""
    return statements._prepared_by_connection[connection.connection][
        click_services._CLICK_TRACK
    ].name


def _statement_kind(sql):
    return sql.split(" ", 1)[0]


@postgresql_only
def test_each_connection_prepares_the_statement_again_every_so_many_clicks(monkeypatch):
    monkeypatch.setattr(statements, "PREPARE_EVERY", 3)
    partners("jane")
    defaults_update(data={"duplicate_click_minutes": 0}, acting_user=None)
    _forget_prepared()
    kinds = []
    for _ in range(7):
        with CaptureQueriesContext(connection) as queries:
            click_track(code="jane", link_code=None, click=visit(), record=True)
        assert len(queries) == 1
        kinds.append(_statement_kind(queries[0]["sql"]))

    again = ["DEALLOCATE", "EXECUTE", "EXECUTE"]
    assert kinds == ["PREPARE", "EXECUTE", "EXECUTE", *again, "DEALLOCATE"]
    assert Click.objects.count() == 7


def _duplicate_check_plan():
    """How the prepared statement looks for repeats (its plan, as the next click runs it)."""
    at = timezone.now()
    params = [1, ["jane"], "jane", "active", None, new_click_id(at), "", IP, BROWSER, "", at]
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN EXECUTE {_click_track_name()} ({', '.join(['%s'] * 12)})",
            [*params, True],
        )
        plan = [row[0] for row in cursor.fetchall()]
    return next(line.strip() for line in plan if " on partners_click c" in line)


@postgresql_only
def test_a_plan_made_while_the_click_table_was_tiny_does_not_outlive_it(monkeypatch):
    """PostgreSQL fixes a prepared statement's generic plan at its sixth run; made on a
    nearly empty click table, it looks for repeats by time alone (every click of the
    window), and would stay so until the next ANALYZE. Prepared again once the table has
    grown, it looks them up by IP address (or partner) and time."""
    monkeypatch.setattr(statements, "PREPARE_EVERY", 20)
    partners("jane")
    jane_id = next(iter(PARTNER_CODES))
    _forget_prepared()
    for n in range(10):
        click_track(code="jane", link_code=None, click=visit(ip=f"10.0.0.{n}"), record=True)
    start = timezone.now() - timedelta(minutes=10)
    Click.objects.bulk_create(
        Click(
            id=uuid.uuid4(),
            partner_id=jane_id,
            ip=f"10.1.{n // 250}.{n % 250}",
            user_agent=BROWSER,
            at=start + timedelta(milliseconds=n),
        )
        for n in range(5000)
    )
    for n in range(20):  # the 21st click prepares it again; six more fix the new plan
        click_track(code="jane", link_code=None, click=visit(ip=f"10.2.0.{n}"), record=True)

    scan = _duplicate_check_plan()

    assert "click_ip_at_idx" in scan or "click_partner_at_idx" in scan, scan


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_the_statement_for_itself():
    """As with CONN_MAX_AGE=0, or after a connection was recycled."""
    partners("jane")
    click_track(code="jane", link_code=None, click=visit(), record=True)
    connection.close()
    with CaptureQueriesContext(connection) as queries:
        target = click_track(code="jane", link_code=None, click=visit(ip=IP + "0"), record=True)

    assert [_statement_kind(q["sql"]) for q in queries] == ["PREPARE"]
    assert target.click_stored is True
    assert Click.objects.count() == 2


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_statement_dropped_behind_its_back_is_prepared_again():
    partners("jane")
    click_track(code="jane", link_code=None, click=visit(), record=True)  # prepared now
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as DISCARD ALL or a connection pooler would

    target = click_track(code="jane", link_code=None, click=visit(ip="198.51.100.7"), record=True)

    assert target.click_stored is True
    assert Click.objects.count() == 2


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_migration_that_changes_a_returned_column_type_does_not_break_clicks():
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    partners("jane")
    click_track(code="jane", link_code=None, click=visit(), record=True)  # prepared now
    alter = "ALTER TABLE partners_trackinglink ALTER COLUMN destination TYPE varchar({})"
    with connection.cursor() as cursor:
        cursor.execute(alter.format(2001))
    try:
        target, again = (
            click_track(code="jane", link_code=None, click=visit(ip=ip), record=True)
            for ip in ("198.51.100.7", "198.51.100.8")
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(alter.format(2000))

    assert target.default_destination == "https://shop.example/"
    assert (target.click_stored, again.click_stored) == (True, True)
    assert Click.objects.count() == 3


@postgresql_only
def test_inside_a_transaction_a_dropped_statement_is_an_error_not_a_retry():
    """The error aborts the transaction, so nothing can be sent again in it (the tracker
    runs outside one)."""
    partners("jane")
    click_track(code="jane", link_code=None, click=visit(), record=True)  # prepared now
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(Exception, match="does not exist"), transaction.atomic():
        click_track(code="jane", link_code=None, click=visit(ip="198.51.100.7"), record=True)
    _forget_prepared()  # leave the connection as the next test expects it
    assert Click.objects.count() == 1
