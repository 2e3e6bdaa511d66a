"""The API's answers to the event fixtures, byte for byte (issue 15's guard).

One story told through the API with the payloads of `tests/fixtures/events/`: web forms and
orders credited by every attribution source (explicit, the contact's lead partner, the
visitor's token, referral history, IP address; first and last selection), repeats, refunds,
refusals (400 and 404), then the resources that show what was written (commissions, ledger,
notifications, referrals). Each answer's status and exact bytes are compared with the file
recorded for it in `tests/fixtures/events/answers/`, so a refactoring of the intake cannot
change a single character of what a merchant's integration receives.

The answers are deterministic: the clock stands still (`FIXED_NOW`, moved past the
fixtures' dates), and the sequences start again for the test (ids from 1), on PostgreSQL
and SQLite alike (SQLite lists stored JSON's keys in another order: `answers/sqlite/`). To
record the files again after an intended change of the answers, on PostgreSQL then SQLite:

    export RECORD_ANSWERS=1
    .venv/bin/python -m pytest tests/integration/test_api_answers.py
    env -u DATABASE_URL .venv/bin/python -m pytest tests/integration/test_api_answers.py

and review the diff (`git diff tests/fixtures/events/answers/`) before committing it.
"""

import itertools
import json
import os
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.db import connection

from partners import tracker
from partners.services.defaults import defaults_update
from partners.tokens import new_click_id
from tests.conftest import FIXED_NOW
from tests.factories import PartnerFactory, ProgramFactory, TrackingLinkFactory

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
ANSWERS = FIXTURES / "answers"
SQLITE = ANSWERS / "sqlite"  # the answers SQLite gives otherwise (the order of stored keys)
RECORD = os.environ.get("RECORD_ANSWERS") == "1"
# The clock stands between the fixtures' web form (09:30 on 2026-11-19) and order (noon the
# day after, less than a day ahead): the clicks come after that form and before the order.
NOW = FIXED_NOW + timedelta(days=13, hours=1)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"
ORDERS, FORMS, REFUNDS = (
    "/api/v1/events/orders/",
    "/api/v1/events/web-forms/",
    "/api/v1/events/refunds/",
)
D = Decimal


def fixture(name: str, *, without: tuple[str, ...] = (), **changes) -> dict:
    """A fixture's payload with some fields changed, and those `without` left out."""
    payload = {**json.loads((FIXTURES / f"{name}.json").read_text()), **changes}
    return {name: value for name, value in payload.items() if name not in without}


class Recorder:
    """Posts and gets through the API, keeping each answer under its step's name. The clock
    moves a second before each request, as it would between two requests."""

    def __init__(self, api, clock):
        self.api, self.clock = api, clock
        self.answers: dict[str, bytes] = {}

    def keep(self, name: str, response) -> None:
        assert name not in self.answers, name
        self.answers[f"{len(self.answers) + 1:02d}-{name}"] = (
            f"{response.status_code} {response['Content-Type']}\n".encode() + response.content
        )

    def post(self, name: str, path: str, payload: dict) -> None:
        self.clock.shift(timedelta(seconds=1))
        self.keep(name, self.api.post(path, payload, format="json"))

    def get(self, name: str, path: str) -> None:
        self.clock.shift(timedelta(seconds=1))
        self.keep(name, self.api.get(path))


def click(client, code: str, ip: str) -> str:
    """A visitor follows the partner's link: the token the tracker hands back."""
    response = client.get(f"/go/{code}/", headers={"user-agent": BROWSER}, REMOTE_ADDR=ip)
    assert response.status_code == 302, response.content
    return response.cookies["rp_ref"].value


def the_story(api, client, clock) -> dict[str, bytes]:
    defaults_update(
        data={
            "levels": 3,
            "payout_on_lead": True,
            "payout_on_sale": True,
            "payout_amount": True,
            "payout_percent": True,
        },
        acting_user=None,
    )
    ProgramFactory(
        name="Standard",
        priority=1,
        levels=3,
        payout_on_lead=True,
        payout_on_sale=True,
        payout_amount=True,
        payout_percent=True,
        rates={
            1: {"sale_percent": D("10"), "sale_amount": D("5"), "lead_percent": D("2")},
            2: {"sale_percent": D("5"), "lead_percent": D("1")},
            3: {"sale_percent": D("1")},
        },
    )
    TrackingLinkFactory(code="home", destination="https://shop.example/", is_default=True)
    top = PartnerFactory(code="grandma", name="Grandma")
    mid = PartnerFactory(code="mother", name="Mother", parent=top)
    PartnerFactory(code="salesrep", name="Sales Rep", parent=mid)
    PartnerFactory(code="blogger", name="Blogger")
    PartnerFactory(code="alice", name="Alice")
    PartnerFactory(code="bobby", name="Bobby", parent=mid)
    PartnerFactory(code="sleepy", name="Sleepy", status="inactive")
    run = Recorder(api, clock)

    # Explicit partners; the contact's lead partner; repeats.
    run.post("web-form-explicit", FORMS, fixture("web_form", lead_partner="Blogger"))
    run.post("web-form-repeat", FORMS, fixture("web_form", lead_partner="mother"))
    run.post(
        "web-form-contact-lead",
        FORMS,
        fixture("web_form", event_id="form-2002", lead_partner="mother"),
    )
    run.post("order-explicit", ORDERS, fixture("order", sale_partner="SalesRep"))
    run.post("order-repeat", ORDERS, fixture("order", items=[]))

    # Refunds: part, the rest, nothing left, an unknown order, a repeat.
    run.post(
        "refund-part",
        REFUNDS,
        {"event_id": "refund-1", "order_id": "order-1001", "amount": "333.33"},
    )
    run.post("refund-rest", REFUNDS, {"event_id": "refund-2", "order_id": "order-1001"})
    run.post("refund-nothing-left", REFUNDS, {"event_id": "refund-3", "order_id": "order-1001"})
    run.post("refund-unknown-order", REFUNDS, {"event_id": "refund-4", "order_id": "nope"})
    run.post("refund-repeat", REFUNDS, {"event_id": "refund-1", "order_id": "order-1001"})

    # Refusals: every field named, nothing written.
    run.post(
        "order-refused",
        ORDERS,
        fixture(
            "order",
            event_id="order-bad",
            contact={"email": "not-an-email"},
            currency="EUR",
            items=[{"sku": "", "quantity": 0, "unit_price": "-0"}],
            shipping="1.234",
            sale_partner="sleepy",
            lead_partner="nobody",
            ip="999.1.1.1",
        ),
    )
    run.post("order-no-items", ORDERS, fixture("order", event_id="order-empty", items=[]))
    run.post("web-form-refused", FORMS, {"event_id": "has space", "contact": "ada"})

    # The visitor's token, last and first click.
    first = click(client, "alice", ip="198.51.100.7")
    clock.shift(timedelta(minutes=1))
    token = click(client, "bobby", ip="198.51.100.7")
    run.post(
        "web-form-token-last",
        FORMS,
        fixture(
            "web_form",
            without=("occurred_at",),  # now: after the clicks
            event_id="form-3001",
            contact={"email": "carol@example.com"},
            tracking_token=token,
        ),
    )
    run.post(
        "order-token-last",
        ORDERS,
        fixture(
            "order",
            event_id="order-3001",
            contact={"email": "carol@example.com"},
            tracking_token=token,
        ),
    )
    defaults_update(data={"partner_selection": "first"}, acting_user=None)
    run.post(
        "order-token-first",
        ORDERS,
        fixture(
            "order",
            event_id="order-3002",
            contact={"email": "dave@example.com"},
            tracking_token=token,
        ),
    )
    run.post(
        "order-bad-token",
        ORDERS,
        fixture(
            "order",
            event_id="order-3003",
            contact={"email": "erin@example.com"},
            tracking_token=first[:-3] + "xyz",
        ),
    )

    # Referral history, then the IP address.
    defaults_update(data={"tracking_method": "history_and_cookies"}, acting_user=None)
    run.post(
        "order-history",
        ORDERS,
        fixture("order", event_id="order-4001", contact={"email": "Carol@Example.com"}),
    )
    defaults_update(
        data={"tracking_method": "cookie", "use_ip_address": True, "partner_selection": "last"},
        acting_user=None,
    )
    run.post(
        "order-ip",
        ORDERS,
        fixture(
            "order",
            event_id="order-5001",
            contact={"email": "frank@example.com"},
            ip="198.51.100.7",
        ),
    )
    run.post(
        "refund-of-ip-order",
        REFUNDS,
        {"event_id": "refund-5001", "order_id": "order-5001", "amount": "100.00"},
    )

    # What was written, as the resources show it.
    run.get("commissions", "/api/v1/commissions/")
    run.get("commissions-of-an-order", "/api/v1/commissions/?order=order-3001")
    run.get("ledger-mother", "/api/v1/partners/mother/ledger/")
    run.get("ledger-bobby-range", "/api/v1/partners/bobby/ledger/?start=2026-11-20&end=2026-11-20")
    run.get("notifications", "/api/v1/notifications/")
    run.get("referrals", "/api/v1/referrals/")
    return run.answers


def numbered_click_ids():
    """Click ids (in tokens and traces) numbered from 1 rather than random."""
    count = itertools.count(1)

    def click_id(at: datetime) -> uuid.UUID:
        random_bits = (0xFFF << 64) | ((1 << 62) - 1)  # around the version and variant bits
        return uuid.UUID(int=(new_click_id(at).int & ~random_bits) | next(count))

    return click_id


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_the_api_answers_the_event_fixtures_byte_for_byte(api, client, monkeypatch):
    monkeypatch.setattr(tracker, "new_click_id", numbered_click_ids())
    with time_machine.travel(NOW, tick=False) as clock:
        answers = the_story(api, client, clock)

    vendor = connection.vendor
    if RECORD:
        record(answers, vendor)
    recorded = recorded_answers(vendor)
    assert list(answers) == list(recorded)
    for name, answer in answers.items():
        assert answer == recorded[name], name


def recorded_answers(vendor: str) -> dict[str, bytes]:
    """The answers as recorded on PostgreSQL, with SQLite's own where it answers otherwise."""
    answers = {path.stem: path.read_bytes() for path in sorted(ANSWERS.glob("*.txt"))}
    if vendor == "sqlite":
        answers.update({path.stem: path.read_bytes() for path in SQLITE.glob("*.txt")})
    return answers


def record(answers: dict[str, bytes], vendor: str) -> None:
    if vendor == "sqlite":
        SQLITE.mkdir(exist_ok=True)
        for old in SQLITE.glob("*.txt"):
            old.unlink()
        on_postgresql = recorded_answers("postgresql")
        for name, answer in answers.items():
            if answer != on_postgresql.get(name):
                (SQLITE / f"{name}.txt").write_bytes(answer)
        return
    ANSWERS.mkdir(exist_ok=True)
    for old in ANSWERS.glob("*.txt"):
        old.unlink()
    for name, answer in answers.items():
        (ANSWERS / f"{name}.txt").write_bytes(answer)


def test_sqlite_answers_differ_only_in_the_order_of_stored_json_keys():
    """A repeat answers the first result as stored, and a commission shows its stored trace:
    PostgreSQL's jsonb keeps keys in its own order (shorter first), SQLite's JSON text in the
    order written. The same JSON, and nothing else differs."""
    on_postgresql, on_sqlite = recorded_answers("postgresql"), recorded_answers("sqlite")
    differ = sorted(name for name in on_sqlite if on_sqlite[name] != on_postgresql[name])

    assert differ == [
        "02-web-form-repeat",
        "05-order-repeat",
        "10-refund-repeat",
        "21-commissions",
        "22-commissions-of-an-order",
    ]
    for name in differ:
        (status_pg, body_pg), (status_lite, body_lite) = (
            answer.split(b"\n", 1) for answer in (on_postgresql[name], on_sqlite[name])
        )
        assert status_pg == status_lite
        assert json.loads(body_pg) == json.loads(body_lite)
