"""What the events intake reads in one query and writes in one statement (issue 4)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from commissions.calculation import LEAD, SALE, ChainMember, Rate
from commissions.intake import DatabaseReader
from commissions.models import Contact, Event, Notification, Referral
from commissions.selectors import (
    ChainPartner,
    engine_with_chains,
    history_picks,
    partner_chains,
)
from commissions.serializers import OrderEventSerializer
from commissions.services.contacts import contact_upsert, contact_write
from commissions.services.notifications import notification_rows
from partners.models import ProgramRate
from partners.services.defaults import defaults_update
from referral_program.db import InsertPart, Returned, insert_together
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def tree(db):
    """grandma > mother (inactive) > rep, on the default program; solo on a program of its
    own that has a level 1 rate only."""
    default = ProgramFactory(
        name="Default",
        priority=1,
        levels=3,
        rates={
            1: {"sale_amount": D("5.00"), "sale_percent": D("10"), "lead_amount": D("1.00")},
            2: {"sale_percent": D("5")},
            3: {"sale_percent": D("1.5")},
        },
    )
    own = ProgramFactory(
        name="Own",
        priority=50,
        levels=2,
        pay_if_unused=True,
        unused_sale_amount=D("7.00"),
        rates={1: {"sale_amount": D("3.00")}},
    )
    ProgramRate.objects.filter(program=own, level__gte=2).delete()
    grandma = PartnerFactory(code="grandma", notify_sale=False)
    mother = PartnerFactory(code="mother", parent=grandma, status="inactive")
    rep = PartnerFactory(code="rep", parent=mother, cookie_days=30, notify_lead=False)
    solo = PartnerFactory(code="solo", program=own)
    return {"default": default, "own": own, "grandma": grandma, "mother": mother, "rep": rep,
            "solo": solo}  # fmt: skip


def test_a_chain_holds_three_levels_the_default_program_and_the_partners(
    tree, django_assert_num_queries
):
    rep, mother, grandma = tree["rep"], tree["mother"], tree["grandma"]

    with django_assert_num_queries(1):
        chain = partner_chains([rep.pk])[rep.pk]

    assert chain.members == (
        ChainMember(rep.pk, 1, True),
        ChainMember(mother.pk, 2, False),
        ChainMember(grandma.pk, 3, True),
    )
    assert (chain.has_parent, chain.program_id) == (True, None)
    assert chain.partners == (
        ChainPartner(rep.pk, "rep", True, 30, notify_lead=False, notify_sale=True),
        ChainPartner(mother.pk, "mother", False, None, notify_lead=True, notify_sale=True),
        ChainPartner(grandma.pk, "grandma", True, None, notify_lead=True, notify_sale=False),
    )
    terms = chain.terms
    assert (terms.program_id, terms.name, terms.levels) == (tree["default"].pk, "Default", 3)
    assert terms.rates[SALE] == {
        1: Rate(D("5.00"), D("10.0000")),
        2: Rate(D("0.00"), D("5.0000")),
        3: Rate(D("0.00"), D("1.5000")),
    }
    assert terms.rates[LEAD][1] == Rate(D("1.00"), D("0.0000"))
    assert str(terms.rates[SALE][1].percent) == "10.0000"  # the column's scale, as the ORM's


def test_a_partners_own_program_pays_with_its_unused_rate_and_missing_level(tree):
    solo = tree["solo"]

    chain = partner_chains([solo.pk])[solo.pk]

    assert (chain.members, chain.has_parent) == ((ChainMember(solo.pk, 1, True),), False)
    terms = chain.terms
    assert (terms.program_id, terms.levels, terms.pay_if_unused) == (tree["own"].pk, 2, True)
    assert terms.rates[SALE] == {1: Rate(D("3.00"), D("0.0000"))}  # no rows for 2 and 3
    assert terms.unused[SALE] == Rate(D("7.00"), D("0.0000"))


def test_chains_of_a_batch_are_one_query_and_unknown_partners_are_left_out(
    tree, django_assert_num_queries
):
    ids = [tree["rep"].pk, tree["solo"].pk, tree["grandma"].pk, 999_999]

    with django_assert_num_queries(1):
        chains = partner_chains(ids)

    assert set(chains) == set(ids[:3])
    assert chains[tree["grandma"].pk].members == (ChainMember(tree["grandma"].pk, 1, True),)
    with django_assert_num_queries(0):
        assert partner_chains([]) == {}


def test_without_any_program_a_chain_has_no_terms(db):
    partner = PartnerFactory()
    assert partner_chains([partner.pk])[partner.pk].terms is None


@pytest.mark.parametrize("named", [0, 2], ids=["no-partner", "two-partners"])
def test_the_defaults_and_the_chains_come_in_one_query(tree, django_assert_num_queries, named):
    defaults_update(
        data={"partner_selection": "first", "tracking_method": "history_and_cookies",
              "use_ip_address": True, "skip_notifications": True},
        acting_user=None,
    )  # fmt: skip
    ids = [tree["rep"].pk, tree["solo"].pk][:named]

    with django_assert_num_queries(1):
        engine, chains = engine_with_chains(ids)

    policy = engine.policy
    assert (policy.partner_selection, policy.tracking_method, policy.use_ip_address) == (
        "first",
        "history_and_cookies",
        True,
    )
    assert engine.skip_notifications is True
    assert sorted(chains) == sorted(ids)
    assert chains == partner_chains(ids)


@pytest.mark.parametrize(("rule", "picked"), [("first", 0), ("last", 2)], ids=["first", "last"])
def test_the_history_entry_comes_with_its_partners_chain(
    tree, django_assert_num_queries, rule, picked
):
    now = timezone.now()
    contact = Contact.objects.create(email="ada@example.com")
    rep, grandma, mother = tree["rep"], tree["grandma"], tree["mother"]
    entries = [
        Referral(contact=contact, partner=rep, source="manual", set_at=now - timedelta(days=3)),
        Referral(contact=contact, partner=mother, source="manual", set_at=now - timedelta(days=2)),
        Referral(contact=contact, partner=grandma, source="manual", set_at=now - timedelta(days=1),
                 expires_at=now + timedelta(days=1)),
        Referral(contact=contact, partner=rep, source="manual", set_at=now - timedelta(hours=1),
                 expires_at=now - timedelta(minutes=1)),  # expired
        Referral(contact=contact, partner=rep, source="manual", set_at=now + timedelta(hours=1)),
    ]  # fmt: skip
    Referral.objects.bulk_create(entries)
    chains = {}

    with django_assert_num_queries(1):
        touches, partners = DatabaseReader().history(
            email="ada@example.com", at=now, rule=rule, chains=chains
        )

    entry = [entries[0], entries[1], entries[2]][picked]  # mother is inactive: never picked
    assert [(t.ref, t.partner_id, t.at, t.expires_at) for t in touches] == [
        (str(entry.pk), entry.partner_id, entry.set_at, entry.expires_at)
    ]
    assert list(partners) == list(chains) == [entry.partner_id]
    assert chains[entry.partner_id] == partner_chains([entry.partner_id])[entry.partner_id]
    assert DatabaseReader().history(email="nobody@example.com", at=now, rule=rule, chains={}) == (
        [],
        {},
    )
    # The API's read is the batch read of one event; a batch reads every event at once.
    earlier = now - timedelta(days=2, hours=12)
    # One statement on PostgreSQL; SQLite (no LATERAL) reads event by event.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 3):
        picks = history_picks(
            [(7, "ada@example.com", now), (8, "nobody@example.com", now),
             (9, "ada@example.com", earlier)],
            rule=rule,
        )  # fmt: skip
    assert sorted(picks) == [7, 9]
    assert picks[7][0] == touches[0]
    assert picks[9][0].ref == str(entries[0].pk)  # the only one set by then


def test_a_contact_is_made_with_its_lead_partner_and_found_again_in_one_statement(
    tree, django_assert_num_queries
):
    at = timezone.now()
    lead = (tree["rep"].pk, at, {"source": "cookie", "fixed_at": at.isoformat()})

    with django_assert_num_queries(1):
        made, is_new = contact_write(email=" Ada@Example.com ", first_name="Ada", lead=lead)
    again, again_new = contact_write(email="ada@example.com", last_name="Byron", lead=None)

    assert (is_new, again_new) == (True, False)
    assert again.pk == made.pk
    stored = Contact.objects.get()
    for contact in (made, again, stored):
        assert (contact.email, contact.lead_partner_id, contact.lead_partner_set_at) == (
            "ada@example.com",
            tree["rep"].pk,
            at,
        )
        assert contact.lead_trace == lead[2]
    assert (stored.first_name, stored.last_name) == ("Ada", "Byron")
    assert (again.first_name, again.last_name) == ("Ada", "Byron")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({}, ("Ada", "Byron")),
        ({"first_name": "Augusta"}, ("Augusta", "Byron")),
        ({"first_name": "", "last_name": "King"}, ("Ada", "King")),
    ],
    ids=["no-names-keep", "first-name-replaces", "empty-keeps-given-replaces"],
)
def test_contact_upsert_fills_in_or_replaces_names_and_keeps_the_lead(db, names, expected):
    partner = PartnerFactory()
    Contact.objects.create(
        email="ada@example.com", first_name="Ada", last_name="Byron", lead_partner=partner
    )

    contact = contact_upsert(email="ADA@example.com", **names)

    stored = Contact.objects.get()
    assert (contact.pk, contact.first_name, contact.last_name) == (stored.pk, *expected)
    assert (stored.first_name, stored.last_name, stored.lead_partner_id) == (*expected, partner.pk)
    assert contact.created_at == stored.created_at


def test_the_contact_made_in_this_transaction_is_not_new_on_a_second_write(db):
    first, first_new = contact_write(email="bo@example.com")
    second, second_new = contact_write(email="bo@example.com")
    assert (first_new, second_new, first.pk == second.pk) == (True, False, True)


def test_an_order_names_both_partners_in_one_query(tree, django_assert_num_queries):
    body = {
        "event_id": "o-1",
        "contact": {"email": "ada@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
        "lead_partner": "GRANDMA",
        "sale_partner": "Rep",
    }
    serializer = OrderEventSerializer(data=body)

    with django_assert_num_queries(1):
        assert serializer.is_valid(), serializer.errors

    data = serializer.validated_data
    named = [(p.pk, p.code, p.status) for p in (data["lead_partner"], data["sale_partner"])]
    assert named == [(tree["grandma"].pk, "grandma", "active"), (tree["rep"].pk, "rep", "active")]


def test_every_bad_partner_of_an_order_is_named_from_one_query(tree, django_assert_num_queries):
    body = {
        "event_id": "o-1",
        "contact": {"email": "ada@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
        "lead_partner": "nobody",
        "sale_partner": "Mother",
    }
    serializer = OrderEventSerializer(data=body)

    with django_assert_num_queries(1):
        assert not serializer.is_valid()

    assert serializer.errors == {
        "lead_partner": ["No partner has the code nobody."],
        "sale_partner": ["Partner mother is not active."],
    }


@pytest.mark.parametrize("value", [7, ["rep"], {"code": "rep"}], ids=["number", "list", "object"])
def test_a_partner_code_that_is_not_text_is_refused(tree, value):
    body = {
        "event_id": "o-1",
        "contact": {"email": "ada@example.com"},
        "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
        "sale_partner": value,
    }
    serializer = OrderEventSerializer(data=body)
    assert not serializer.is_valid()
    assert list(serializer.errors) == ["sale_partner"]


def test_notification_rows_are_one_per_partner_and_kind_by_the_partners_switches(
    tree, django_assert_num_queries
):
    at = timezone.now()
    event = Event.objects.create(kind="order", event_id="o-1", payload={}, received_at=at,
                                 occurred_at=at)  # fmt: skip
    engine, _ = engine_with_chains([])
    rep, grandma = tree["rep"], tree["grandma"]
    credited = [(rep.pk, LEAD), (grandma.pk, SALE), (rep.pk, LEAD), (grandma.pk, LEAD)]
    switches = {p.pk: p for p in (rep, grandma)}

    with django_assert_num_queries(0):  # the caller read the switches
        rows = notification_rows(
            event=event, credited=credited, engine=engine, at=at, switches=switches
        )

    assert [row[:5] for row in rows] == [
        (rep.pk, event.pk, "lead", "skipped", "The partner turned off lead emails."),
        (grandma.pk, event.pk, "sale", "skipped", "The partner turned off sale emails."),
        (grandma.pk, event.pk, "lead", "queued", ""),
    ]


# PostgreSQL writes the parts in one statement (a data-modifying CTE per model); SQLite, which
# has no such CTEs, one insert per model that has rows (3 of the 4 parts below).
STATEMENTS = {"postgresql": 1, "sqlite": 3}


def test_rows_of_several_models_are_written_in_one_statement(tree, django_assert_num_queries):
    at = timezone.now()
    rep, grandma = tree["rep"].pk, tree["grandma"].pk
    notifications = ("partner", "event", "kind", "status", "reason", "created_at")
    with django_assert_num_queries(STATEMENTS[connection.vendor]):
        [event_pk], [], pks, [contact_pk] = insert_together(
            [
                InsertPart(Event, ("kind", "event_id", "payload", "received_at", "occurred_at"),
                           [("order", "o-1", {"a": 1}, at, at)]),
                InsertPart(Referral, ("contact", "partner", "source"), []),
                InsertPart(Notification, notifications, [
                    (rep, Returned(0), "sale", "queued", "", at),
                    (grandma, Returned(0), "sale", "skipped", "Off.", at),
                ]),
                InsertPart(Contact, ("email", "created_at"), [("ada@example.com", at)]),
            ]
        )  # fmt: skip

    event = Event.objects.get()
    assert (event.pk, event.payload, event.result) == (event_pk, {"a": 1}, None)
    assert list(Notification.objects.order_by("pk").values_list("pk", "partner", "event",
                                                                 "status", "sent_at")) == [
        (pks[0], rep, event_pk, "queued", None),
        (pks[1], grandma, event_pk, "skipped", None),
    ]  # fmt: skip
    contact = Contact.objects.get()
    assert (contact.pk, contact.email, contact.lead_trace) == (contact_pk, "ada@example.com", {})


def test_nothing_to_write_runs_no_statement(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert insert_together([InsertPart(Contact, ("email",), [])]) == [[]]
