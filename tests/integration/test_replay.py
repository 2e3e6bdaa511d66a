"""What-if replay (SPEC §13): the stored events replayed under proposed terms, compared with
what is recorded, and nothing written."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from commissions.models import Commission
from commissions.replay import simulation_run
from partners.models import ReferralDefaults
from partners.services.defaults import defaults_update
from partners.services.programs import program_update
from partners.tokens import TokenClick, encode_token
from tests.factories import PartnerFactory, ProgramFactory
from tests.tables import table_snapshot

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS, FORMS, REFUNDS, PAYMENTS, SIMULATIONS = (
    "/api/v1/events/orders/",
    "/api/v1/events/web-forms/",
    "/api/v1/events/refunds/",
    "/api/v1/events/payments/",
    "/api/v1/simulations/",
)
T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


@pytest.fixture
def program(db):
    """3 levels, lead and sale, amount and percent; last partner wins; cookies only."""
    defaults_update(
        data={
            "levels": 3, "payout_on_lead": True, "payout_on_sale": True,
            "payout_amount": True, "payout_percent": True, "partner_selection": "last",
        },
        acting_user=None,
    )  # fmt: skip
    return ProgramFactory(
        priority=1, levels=3, payout_on_lead=True, payout_on_sale=True, payout_amount=True,
        payout_percent=True,
        rates={
            1: {"sale_percent": D("10"), "sale_amount": D("5"), "lead_percent": D("2")},
            2: {"sale_percent": D("5"), "lead_percent": D("1")},
            3: {"sale_percent": D("1")},
        },
    )  # fmt: skip


@pytest.fixture
def tree(program):
    top = PartnerFactory(code="grandma")
    mid = PartnerFactory(code="mother", parent=top)
    first = PartnerFactory(code="first", parent=mid)
    last = PartnerFactory(code="last")
    return {"top": top, "mid": mid, "first": first, "last": last}


def token(*clicks: tuple) -> str:
    return encode_token(
        [TokenClick(click_id=uuid.uuid4(), partner_id=p.pk, at=at) for p, at in clicks]
    )


def order(n: int, at: datetime, email: str, tracking_token: str = "", total: str = "100.00"):
    return {
        "event_id": f"order-{n}",
        "occurred_at": at.isoformat(),
        "contact": {"email": email},
        "currency": "USD",
        "items": [{"sku": "A", "quantity": 1, "unit_price": total}],
        **({"tracking_token": tracking_token} if tracking_token else {}),
    }


def sums(answer: dict) -> dict:
    return {(p["partner"], p["now"], p["proposed"]) for p in answer["partners"]}


def test_unchanged_settings_replay_what_is_recorded(api, tree):
    clicked = token((tree["first"], T0), (tree["last"], T0 + timedelta(hours=1)))
    for n in range(3):
        at = T0 + timedelta(days=n + 1)
        response = api.post(ORDERS, order(n, at, f"buyer{n}@example.com", clicked), format="json")
        assert response.status_code == 201, response.data
    refund_at = (T0 + timedelta(days=5)).isoformat()
    refund = {"event_id": "r-1", "order_id": "order-1", "amount": "40.00", "occurred_at": refund_at}
    api.post(REFUNDS, refund, format="json")

    answer = simulation_run(start=T0, end=T0 + timedelta(days=30))

    assert answer["orders"] == 3
    assert answer["refunds"] == 1
    assert answer["orders_changing_partner"] == 0
    # last earns 17.00 an order of 100.00: the sale's 10 % + 5.00 and the lead's 2 %;
    # the refund of 40 % takes back 6.80
    assert answer["total_now"] == answer["total_proposed"] == "44.20"
    assert sums(answer) == {("last", "44.20", "44.20")}


def test_first_instead_of_last_moves_the_commissions_to_the_first_partner(api, tree):
    clicked = token((tree["first"], T0), (tree["last"], T0 + timedelta(hours=1)))
    api.post(ORDERS, order(1, T0 + timedelta(days=1), "a@example.com", clicked), format="json")
    before = table_snapshot()

    answer = simulation_run(
        start=T0, end=T0 + timedelta(days=30), defaults={"partner_selection": "first"},
        detail=True,
    )  # fmt: skip

    assert table_snapshot() == before
    assert ReferralDefaults.objects.get().partner_selection == "last"
    assert answer["orders_changing_partner"] == 1
    # first: sale 15.00 and lead 2.00; its parent mother sale 5 % and lead 1 %; grandma
    # sale 1 %
    assert sums(answer) == {
        ("last", "17.00", "0.00"),
        ("first", "0.00", "17.00"),
        ("mother", "0.00", "6.00"),
        ("grandma", "0.00", "1.00"),
    }
    assert answer["total_now"] == "17.00"
    assert answer["total_proposed"] == "24.00"
    [changed] = answer["orders_changed"]
    assert changed["now"]["sale_partner"] == "last"
    assert changed["proposed"]["sale_partner"] == "first"
    assert changed["proposed"]["sale_trace"]["rule"] == "first"


def test_a_proposed_rate_is_validated_by_the_save_rules_and_nothing_is_written(api, tree):
    api.post(ORDERS, order(1, T0 + timedelta(days=1), "a@example.com"), format="json")
    before = table_snapshot()

    with pytest.raises(ValidationError) as error:
        simulation_run(start=T0, end=T0 + timedelta(days=1), defaults={"levels": 7})

    assert "defaults.levels" in error.value.message_dict
    assert table_snapshot() == before


def test_the_api_answers_the_replay_and_names_bad_fields(api, tree):
    clicked = token((tree["first"], T0), (tree["last"], T0 + timedelta(hours=1)))
    api.post(ORDERS, order(1, T0 + timedelta(days=1), "a@example.com", clicked), format="json")
    before = table_snapshot()

    response = api.post(
        SIMULATIONS + "?orders=changed",
        {"start": "2026-10-01", "end": "2026-10-31", "defaults": {"partner_selection": "first"}},
        format="json",
    )
    refused = api.post(
        SIMULATIONS,
        {"start": "2026-10-31", "end": "2026-10-01", "programs": [{"id": 999999}]},
        format="json",
    )

    assert response.status_code == 200, response.data
    body = response.json()
    assert (body["total_now"], body["total_proposed"]) == ("17.00", "24.00")
    assert body["orders_changed"][0]["proposed"]["sale_partner"] == "first"
    assert refused.status_code == 400
    assert set(refused.json()) == {"programs"}
    assert table_snapshot() == before
    assert Commission.objects.count() == 2


def test_the_history_is_read_as_it_stood_not_with_what_later_events_added(api, tree):
    """A contact's first order (no cookie) credited nobody; a later order brought a click
    from before the first one into the contact's history. The replay of the first order
    must not see it."""
    defaults_update(data={"tracking_method": "history_and_cookies"}, acting_user=None)
    clicked = token((tree["first"], T0))
    api.post(ORDERS, order(1, T0 + timedelta(hours=1), "a@example.com"), format="json")
    api.post(ORDERS, order(2, T0 + timedelta(hours=2), "a@example.com", clicked), format="json")

    answer = simulation_run(start=T0, end=T0 + timedelta(days=1))

    assert answer["orders_changing_partner"] == 0
    assert sums(answer) == {("first", "17.00", "17.00"), ("mother", "6.00", "6.00"),
                            ("grandma", "1.00", "1.00")}  # fmt: skip


def test_settings_saved_inside_the_range_are_named(api, tree, program):
    api.post(ORDERS, order(1, T0 + timedelta(days=1), "a@example.com"), format="json")
    defaults_update(data={"partner_selection": "first"}, acting_user=None)
    program_update(program=program, data={}, rates=[{"level": 1, "sale_percent": D("12")}])

    answer = simulation_run(start=T0, end=T0 + timedelta(days=1))

    words = [(change["what"], change["changes"]) for change in answer["settings_changed"]]
    assert ("defaults", ["partner selection last → first"]) in words
    assert (f"program {program.name} (version 2)", ["level 1 sale percent 10 → 12"]) in words
