"""The batched import makes the API's decisions (issue 6, part 2).

The same events are posted one by one through the API, then (after the event rows are
wiped) imported from a file in batches; every row they write must be the same, compared by
natural keys (contacts by email, events by kind and id, commissions by order, kind, level
and refund), since row ids differ between the two runs.
"""

import json
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from commissions import importing
from commissions.importing import DUPLICATE, FAILED, RECORDED, batch_prepare, line_parse
from commissions.models import (
    Commission,
    Contact,
    Event,
    Lead,
    Notification,
    Order,
    Referral,
    Refund,
    WebhookDelivery,
)
from partners.models import Coupon, PartnerOverride
from partners.services.defaults import defaults_update
from partners.tokens import TokenClick, encode_token
from tests.factories import ClickFactory, PartnerFactory, ProgramFactory
from tests.integration.test_import_events import run

pytestmark = pytest.mark.django_db

D = Decimal
PATHS = {
    "web_form": "/api/v1/events/web-forms/",
    "order": "/api/v1/events/orders/",
    "refund": "/api/v1/events/refunds/",
}
MODELS = (Notification, Commission, Refund, Order, Lead, Referral, Event, Contact)


@pytest.fixture
def program(db):
    defaults_update(
        data={
            "levels": 3,
            "payout_on_lead": True,
            "payout_on_sale": True,
            "payout_amount": True,
            "payout_percent": True,
            "pay_if_unused": True,
            "hold_days": 14,  # every line pending 14 days: payable_at the same both ways
        },
        acting_user=None,
    )
    return ProgramFactory(
        priority=1,
        levels=3,
        payout_on_lead=True,
        payout_on_sale=True,
        payout_amount=True,
        payout_percent=True,
        pay_if_unused=True,
        unused_sale_percent=D("25"),
        rates={
            1: {"sale_percent": D("10"), "sale_amount": D("5"), "lead_percent": D("2")},
            2: {"sale_percent": D("5"), "lead_percent": D("1"), "lead_amount": D("0.50")},
            3: {"sale_percent": D("1.5"), "lead_amount": D("0.25")},
        },
    )


@pytest.fixture
def world(program):
    """A 3-level tree (an inactive middle partner on one branch), a partner without parent,
    clicks of the leaves (cookie and IP), and the times of the events."""
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=20)
    top = PartnerFactory(code="grandma")
    mid = PartnerFactory(code="mother", parent=top)
    sleepy = PartnerFactory(code="sleepy", parent=top, status="inactive")
    leaf = PartnerFactory(code="salesrep", parent=mid)
    leaf2 = PartnerFactory(code="blogger", parent=mid, cookie_days=7)
    leaf3 = PartnerFactory(code="vlogger", parent=sleepy)
    solo = PartnerFactory(code="lonewolf")
    at = {n: start + timedelta(hours=n) for n in range(60)}
    clicks = {
        "leaf": ClickFactory(partner=leaf, at=at[0], ip="198.51.100.7"),
        "leaf2": ClickFactory(partner=leaf2, at=at[1], ip="198.51.100.8"),
        "leaf3": ClickFactory(partner=leaf3, at=at[2], ip="198.51.100.9"),
        "solo": ClickFactory(partner=solo, at=at[3], ip="198.51.100.7"),
        "old": ClickFactory(partner=leaf2, at=start - timedelta(days=30), ip="198.51.100.10"),
    }
    # Coupons (issue 17): one that credits, one inactive, one of an inactive partner.
    Coupon.objects.create(code="BLOGGER-VIP", partner=leaf2)
    Coupon.objects.create(code="SLEEPYCODE", partner=solo, active=False)
    Coupon.objects.create(code="NAPTIME", partner=sleepy)
    return {
        "partners": {p.code: p for p in (top, mid, sleepy, leaf, leaf2, leaf3, solo)},
        "clicks": clicks,
        "at": at,
    }


# The batch writer (COPY, overlapping batches) is PostgreSQL's; on SQLite the importer records
# each line through the API's own service, which tests/integration/test_import_events.py and
# the API-equality tests below cover on both databases.
BATCH_WRITER = "the batch writer (COPY) is PostgreSQL's; SQLite records line by line"


def token(*clicks) -> str:
    return encode_token(
        [TokenClick(click_id=c.id, partner_id=c.partner_id, at=c.at) for c in clicks]
    )


def iso(value) -> str:
    return value.isoformat()


def prelude(world) -> list[dict]:
    """Recorded before the file, through the API in both runs: a contact the file's events
    find with a lead partner and history already stored."""
    c, at = world["clicks"], world["at"]
    return [
        {"kind": "web_form", "event_id": "pre-1", "occurred_at": iso(at[4]),
         "contact": {"email": "known@example.com", "first_name": "Kay"},
         "tracking_token": token(c["leaf2"])},
    ]  # fmt: skip


def events(world) -> list[dict]:
    """Web forms, orders and refunds mixing every way a partner is found."""
    c, at = world["clicks"], world["at"]
    item = {"sku": "A-1", "quantity": 2, "unit_price": "120.50"}
    return [
        # A lead by cookie, then the contact's orders: lead from the contact, sale by history
        # (history_and_cookies) or nobody (cookie).
        {"kind": "web_form", "event_id": "f-1", "occurred_at": iso(at[5]),
         "contact": {"email": "Ada@Example.com", "first_name": "Ada"}, "form": "newsletter",
         "tracking_token": token(c["leaf"])},
        {"event_id": "o-1", "occurred_at": iso(at[6]),
         "contact": {"email": "ada@example.com", "last_name": "Lovelace"},
         "items": [item, {"sku": "B", "quantity": 1, "unit_price": "9.99"}],
         "discount": "10.00", "shipping": "4.95", "tax": "19.00"},
        # Explicit partners, a new contact.
        {"event_id": "o-2", "occurred_at": iso(at[7]), "contact": {"email": "bob@example.com"},
         "items": [item], "sale_partner": "SalesRep", "lead_partner": "vlogger"},
        # A token with two clicks: first or last by the policy; the contact's lead is fixed here.
        {"event_id": "o-3", "occurred_at": iso(at[8]), "contact": {"email": "cy@example.com"},
         "items": [item], "tracking_token": token(c["leaf"], c["solo"]), "ip": "198.51.100.7"},
        # The same contact again: lead from the contact, sale from the new token.
        {"event_id": "o-4", "occurred_at": iso(at[9]),
         "contact": {"email": "cy@example.com", "first_name": "Cy"}, "items": [item],
         "tracking_token": token(c["leaf3"])},
        # An explicit lead partner on a web form, then an order naming nobody.
        {"kind": "web_form", "event_id": "f-2", "occurred_at": iso(at[10]),
         "contact": {"email": "dee@example.com"}, "lead_partner": "blogger"},
        {"event_id": "o-5", "occurred_at": iso(at[11]), "contact": {"email": "dee@example.com"},
         "items": [item], "ip": "198.51.100.8"},
        # By IP address only (when the policy uses it), then the same contact with nothing.
        {"event_id": "o-6", "occurred_at": iso(at[12]), "contact": {"email": "eve@example.com"},
         "items": [item], "ip": "198.51.100.9"},
        {"event_id": "o-7", "occurred_at": iso(at[13]), "contact": {"email": "eve@example.com"},
         "items": [{"sku": "C", "quantity": 1, "unit_price": "1000.00"}]},
        # A partner buying through their own link: the guard pays nothing.
        {"event_id": "o-8", "occurred_at": iso(at[14]),
         "contact": {"email": "SalesRep@partners.example"}, "items": [item],
         "tracking_token": token(c["leaf"])},
        # A click older than the partner's cookie days counts for nothing.
        {"event_id": "o-9", "occurred_at": iso(at[15]), "contact": {"email": "fay@example.com"},
         "items": [item], "tracking_token": token(c["old"])},
        # The contact recorded before the file (its lead and history are stored).
        {"event_id": "o-10", "occurred_at": iso(at[16]),
         "contact": {"email": "known@example.com", "last_name": "Known"}, "items": [item]},
        # Refunds of orders above: part, then the rest.
        {"event_id": "r-1", "order_id": "o-2", "amount": "50.00", "occurred_at": iso(at[17])},
        {"event_id": "r-2", "order_id": "o-2", "occurred_at": iso(at[18])},
        {"kind": "web_form", "event_id": "f-3", "occurred_at": iso(at[19]),
         "contact": {"email": "ada@example.com"}, "tracking_token": token(c["leaf3"])},
        {"event_id": "o-11", "occurred_at": iso(at[20]), "contact": {"email": "gus@example.com"},
         "items": [item], "sale_partner": "lonewolf"},
        {"event_id": "r-3", "order_id": "o-11", "amount": "100.00",
         "occurred_at": iso(at[21])},
        # A coupon (any case) beats the cookie and joins the history; the contact's next
        # order, with neither, is found by that history (history_and_cookies).
        {"event_id": "o-12", "occurred_at": iso(at[22]), "contact": {"email": "hal@example.com"},
         "items": [item], "coupon": "blogger-vip", "tracking_token": token(c["leaf"])},
        {"event_id": "o-13", "occurred_at": iso(at[23]), "contact": {"email": "hal@example.com"},
         "items": [item]},
        # Coupons that cannot credit: unknown, inactive, of an inactive partner.
        {"event_id": "o-14", "occurred_at": iso(at[24]), "contact": {"email": "ivy@example.com"},
         "items": [item], "coupon": "NOPE", "tracking_token": token(c["leaf3"])},
        {"event_id": "o-15", "occurred_at": iso(at[25]), "contact": {"email": "jay@example.com"},
         "items": [item], "coupon": "sleepycode", "ip": "198.51.100.7"},
        {"event_id": "o-16", "occurred_at": iso(at[26]), "contact": {"email": "kim@example.com"},
         "items": [item], "coupon": "NAPTIME"},
    ]  # fmt: skip


# Every attribution source (explicit, cookie, history, IP address, the contact's fixed
# lead) under both selections, and a policy that turns the IP address off.
POLICIES = {
    "cookie-last": {"tracking_method": "cookie", "partner_selection": "last"},
    "cookie-first-ip": {
        "tracking_method": "cookie",
        "partner_selection": "first",
        "use_ip_address": True,
    },
    "cookies-only-first": {
        "tracking_method": "cookies_only",
        "partner_selection": "first",
        "use_ip_address": True,  # ignored: cookies only
    },
    "history-first-ip": {
        "tracking_method": "history_and_cookies",
        "partner_selection": "first",
        "use_ip_address": True,
    },
    "history-last-ip": {
        "tracking_method": "history_and_cookies",
        "partner_selection": "last",
        "use_ip_address": True,
    },
}


def post_all(api, payloads):
    for payload in payloads:
        kind = payload.get("kind") or ("refund" if "order_id" in payload else "order")
        body = {k: v for k, v in payload.items() if k != "kind"}
        response = api.post(PATHS[kind], body, format="json")
        assert response.status_code == 201, (payload["event_id"], response.data)


def wipe():
    WebhookDelivery.objects.all().delete()
    Commission.objects.filter(entry="clawback").delete()
    for model in MODELS:
        model.objects.all().delete()


def write(tmp_path, payloads, name="events.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(p) + "\n" for p in payloads))
    return path


# --- Rows by natural keys ---------------------------------------------------------------------


def snapshot() -> dict:
    """Every row the intake wrote, ids replaced by natural keys; times the import cannot
    share with the API (when a row was received or made) left out."""
    referral_keys = {
        r.pk: (r.contact.email, r.click_id and r.click_id.hex, r.source)
        for r in Referral.objects.select_related("contact")
    }
    commission_keys = {
        c.pk: (c.order.order_id, c.kind, c.level, c.entry, c.refund and c.refund.event.event_id)
        for c in Commission.objects.select_related("order", "refund__event")
    }
    codes = dict(
        __import__("partners.models", fromlist=["Partner"]).Partner.objects.values_list(
            "id", "code"
        )
    )

    def trace(value):
        if isinstance(value, list):
            return [trace(v) for v in value]
        if not isinstance(value, dict):
            return value
        value = {k: trace(v) for k, v in value.items()}
        if "history" in (value.get("source"), value.get("first_source")) and value.get("ref"):
            value["ref"] = referral_keys[int(value["ref"])]
        if "clawback_of" in value:
            value["clawback_of"] = commission_keys[value["clawback_of"]]
        return value

    def result(event):
        found = dict(event.result)
        if "contact_id" in found:
            found["contact_id"] = Contact.objects.get(pk=found["contact_id"]).email
        for line in found.get("commissions", []):
            line["id"] = commission_keys[line["id"]]
        return found

    return {
        "contacts": {
            c.email: (
                c.first_name,
                c.last_name,
                codes.get(c.lead_partner_id),
                c.lead_partner_set_at,
                trace(c.lead_trace),
            )
            for c in Contact.objects.all()
        },
        "referrals": sorted(
            (
                r.contact.email,
                codes[r.partner_id],
                r.source,
                r.click_id and r.click_id.hex,
                r.set_at,
                r.expires_at,
                r.created_by,
            )
            for r in Referral.objects.select_related("contact")
        ),
        "events": {
            (e.kind, e.event_id): (e.payload, e.occurred_at, result(e)) for e in Event.objects.all()
        },
        "orders": {
            o.order_id: (
                o.event.event_id,
                o.contact.email,
                o.currency,
                o.items,
                o.discount,
                o.shipping,
                o.tax,
                o.base,
                o.total,
                o.refunded,
                o.ip,
                codes.get(o.lead_partner_id),
                codes.get(o.sale_partner_id),
                trace(o.lead_trace),
                trace(o.sale_trace),
                o.occurred_at,
            )
            for o in Order.objects.select_related("event", "contact")
        },
        "commissions": {
            commission_keys[c.pk]: (
                codes[c.partner_id],
                c.base,
                c.amount,
                c.currency,
                c.program_id,
                trace(c.trace),
                c.occurred_at,
                c.payable_at,
                c.clawback_of_id and commission_keys[c.clawback_of_id],
            )
            for c in Commission.objects.all()
        },
        "leads": {
            lead.event.event_id: (
                lead.contact.email,
                lead.form,
                codes.get(lead.partner_id),
                trace(lead.trace),
                lead.occurred_at,
            )
            for lead in Lead.objects.select_related("event", "contact")
        },
        "refunds": {
            r.event.event_id: (r.order.order_id, r.amount, r.occurred_at)
            for r in Refund.objects.select_related("event", "order")
        },
        "notifications": sorted(
            (codes[n.partner_id], n.event.kind, n.event.event_id, n.kind, n.created_at, n.status)
            for n in Notification.objects.select_related("event")
        ),
    }


def assert_written_as_by_the_api(imported: dict, through_api: dict, out: str) -> None:
    """Every row the import wrote is the API's, but for the notifications: imported events
    email nobody and log none (SPEC §5.6); the summary counts the emails the API queued (or
    sent) for the file's events (the prelude went through the API both times)."""
    imported, through_api = dict(imported), dict(through_api)
    api_notifications = through_api.pop("notifications")
    assert imported.pop("notifications") == [n for n in api_notifications if n[2] == "pre-1"]
    queued = [n for n in api_notifications if n[2] != "pre-1" and n[5] != "skipped"]
    assert queued  # the file credits partners who want their emails
    assert f"\n{len(queued)} email(s) skipped: " in out
    for table_name in through_api:
        assert imported[table_name] == through_api[table_name], table_name


@pytest.mark.parametrize("batch_size", [1000, 3], ids=["one-batch", "batches-of-3"])
@pytest.mark.parametrize("policy", list(POLICIES), ids=list(POLICIES))
def test_the_batched_import_writes_what_the_api_writes(api, world, tmp_path, policy, batch_size):
    defaults_update(data=POLICIES[policy], acting_user=None)
    before, payloads = prelude(world), events(world)  # tokens are signed with the time: once
    post_all(api, before)
    post_all(api, payloads)
    through_api = snapshot()
    wipe()

    post_all(api, before)
    out, err, error = run(write(tmp_path, payloads), "--batch-size", str(batch_size))

    assert error is None, err
    assert out.splitlines()[0] == "22 lines: 22 recorded, 0 already recorded, 0 failed."
    imported = snapshot()
    # Imported events email nobody and log no notification (SPEC §5.6): every other row is
    # the API's; the summary counts the emails the API queued (or sent) for the file's events.
    api_notifications = through_api.pop("notifications")
    assert imported.pop("notifications") == sorted(n for n in api_notifications if n[2] == "pre-1")
    queued = [n for n in api_notifications if n[2] != "pre-1" and n[5] != "skipped"]
    assert f"{len(queued)} email(s) skipped: " in out
    for table_name in through_api:
        assert imported[table_name] == through_api[table_name], table_name
    # The file exercised what it is for (checked on the API's rows, equal to the import's).
    sources = {o[14]["source"] for o in through_api["orders"].values()}
    assert {"explicit", "cookie", None} <= sources
    assert "contact" in {o[13]["source"] for o in through_api["orders"].values()}
    uses = POLICIES[policy]
    assert ("history" in sources) == (uses["tracking_method"] == "history_and_cookies")
    assert ("ip" in sources) == (
        uses.get("use_ip_address", False) and uses["tracking_method"] != "cookies_only"
    )
    guarded = through_api["orders"]["o-8"][14]
    assert guarded.get("guard") == "self_referral"
    assert sources >= {"coupon"}
    ignored = {o: through_api["orders"][o][14].get("coupon") for o in ("o-14", "o-15", "o-16")}
    assert ignored == {
        "o-14": {"code": "NOPE", "ignored": "unknown coupon"},
        "o-15": {"code": "sleepycode", "ignored": "inactive coupon"},
        "o-16": {"code": "NAPTIME", "ignored": "the coupon's partner is inactive"},
    }
    assert ("hal@example.com", "blogger", "coupon") in {r[:3] for r in through_api["referrals"]}


def with_overrides(world, program) -> None:
    """Overrides (SPEC §10) at each level of the tree: salesrep's for the sku A-1 at level 1
    (paid per unit), mother's for every item at level 2, grandma's lead at level 3,
    lonewolf's at level 1 (beating its pay-if-unused rate); and blogger's at level 2, where
    it is never paid (it recruited nobody)."""
    p = world["partners"]
    for partner, level, sku, rates in [
        ("salesrep", 1, "A-1", {"sale_amount": "1", "sale_percent": "15", "lead_percent": "3"}),
        ("mother", 2, None, {"sale_percent": "7", "lead_amount": "0.75"}),
        ("grandma", 3, None, {"lead_percent": "0.5"}),
        ("lonewolf", 1, None, {"sale_percent": "30"}),
        ("blogger", 2, None, {"sale_percent": "99"}),
    ]:
        PartnerOverride.objects.create(
            partner=p[partner], program=program, level=level, sku=sku,
            **{name: D(value) for name, value in rates.items()},
        )  # fmt: skip


@pytest.mark.parametrize("batch_size", [1000, 3], ids=["one-batch", "batches-of-3"])
def test_overrides_are_paid_alike_by_the_api_and_the_import(
    api, world, program, tmp_path, batch_size
):
    with_overrides(world, program)
    defaults_update(data=POLICIES["history-last-ip"], acting_user=None)
    before, payloads = prelude(world), events(world)
    post_all(api, before)
    post_all(api, payloads)
    through_api = snapshot()
    wipe()

    post_all(api, before)
    _, err, error = run(write(tmp_path, payloads), "--batch-size", str(batch_size))

    assert error is None, err
    imported = snapshot()
    through_api.pop("notifications"), imported.pop("notifications")
    for table_name in through_api:
        assert imported[table_name] == through_api[table_name], table_name
    paid = {
        (line[0], key[2]): line[5]["items"][0]
        for key, line in through_api["commissions"].items()
        if "items" in line[5]
    }
    assert {who for who, _ in paid} == {"salesrep", "mother", "grandma", "lonewolf"}
    assert {item["rate"] for item in paid.values()} == {"override"}
    # o-2 (2 x 120.50 A-1, explicit salesrep): 1.00 x 2 + 241.00 x 15 % = 38.15
    assert through_api["commissions"][("o-2", "sale", 1, "commission", None)][2] == D("38.15")


def test_a_later_event_of_a_contact_sees_the_lead_an_earlier_one_fixed(api, world, tmp_path):
    c, at = world["clicks"], world["at"]
    payloads = [
        {"event_id": "o-1", "occurred_at": iso(at[5]), "contact": {"email": "zed@example.com"},
         "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
         "tracking_token": token(c["leaf"])},
        {"event_id": "o-2", "occurred_at": iso(at[6]), "contact": {"email": "ZED@example.com"},
         "items": [{"sku": "A", "quantity": 1, "unit_price": "200.00"}],
         "sale_partner": "lonewolf"},
    ]  # fmt: skip

    _, _, error = run(write(tmp_path, payloads))

    assert error is None
    second = Order.objects.get(order_id="o-2")
    assert second.lead_partner.code == "salesrep"  # fixed by o-1, in the same batch
    assert second.lead_trace["source"] == "contact"
    assert second.sale_partner.code == "lonewolf"
    # lead: 2 % of 200 = 4.00, its parent 1 % + 0.50 = 2.50, grandma 0.25;
    # sale: lonewolf has no parent: the unused rate, 25 % of 200 = 50.00
    assert sorted(
        (c.partner.code, c.kind, c.level, c.amount) for c in second.commissions.all()
    ) == [
        ("grandma", "lead", 3, D("0.25")),
        ("lonewolf", "sale", 1, D("50.00")),
        ("mother", "lead", 2, D("2.50")),
        ("salesrep", "lead", 1, D("4.00")),
    ]
    assert Contact.objects.get().lead_partner.code == "salesrep"


def test_running_the_file_again_changes_nothing(api, world, tmp_path):
    path = write(tmp_path, events(world))
    run(path, "--batch-size", "5")
    before = snapshot()
    counts = {model: model.objects.count() for model in MODELS}

    out, _, error = run(path, "--batch-size", "5")

    assert error is None
    assert out.splitlines()[0] == "22 lines: 0 recorded, 22 already recorded, 0 failed."
    assert {model: model.objects.count() for model in MODELS} == counts
    assert snapshot() == before


def test_repeats_within_the_file_are_recorded_once(api, world, tmp_path):
    first = events(world)[2]
    payloads = [first, {**first, "items": "changed"}, first]

    out, _, error = run(write(tmp_path, payloads))

    assert error is None
    assert out.splitlines()[0] == "3 lines: 1 recorded, 2 already recorded, 0 failed."
    assert Order.objects.count() == 1
    # sale: salesrep, mother, grandma; lead: vlogger, grandma above the inactive sleepy
    assert Commission.objects.count() == 5


def test_bad_lines_are_reported_with_line_numbers_and_the_good_ones_land(world, tmp_path):
    good = events(world)
    lines = [
        json.dumps(good[2]),
        "",  # blank lines are skipped, but keep their numbers
        '{"event_id": "x1", "contact": {"email": "not-an-email"}, "items": []}',
        json.dumps({**good[3], "discount": "-0", "lead_partner": "sleepy"}),
        '{"event_id": "x2", "amount": NaN}',
        json.dumps({**good[6], "items": [{"sku": "A", "quantity": 2}]}),
        json.dumps({"event_id": "x3", "order_id": "o-404", "amount": "1.00"}),
        json.dumps({"event_id": "x4", "order_id": "o-3"}),  # names an order of a later line
        json.dumps(good[3]),
        '{"event_id": "x5\\u0000", "contact": {"email": "a@example.com"}, "items": []}',
        json.dumps(good[12]),  # refund of o-2 (line 1): lands
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"event_id": "\xff"}\n')
    counts = {model: model.objects.count() for model in MODELS}

    out, err, error = run(path, "--batch-size", "4")

    assert out.splitlines()[0] == "11 lines: 3 recorded, 0 already recorded, 8 failed."
    assert str(error) == "8 line(s) failed: 3, 4, 5, 6, 7, 8, 10, 12"
    assert err.splitlines() == [
        "line 3: contact.email: Enter a valid email address.",
        "line 3: items.non_field_errors: Ensure this field has at least 1 elements.",
        'line 4: discount: Must not be negative ("-0" has a minus sign).',
        "line 4: lead_partner: Partner sleepy is not active.",
        "line 5: line: Not JSON: NaN is not a JSON number",
        "line 6: items.0.unit_price: This field is required.",
        "line 7: order_id: No order 'o-404' was recorded.",
        "line 8: order_id: No order 'o-3' was recorded.",
        "line 10: event_id: NUL characters are not allowed.",
        "line 12: line: Not UTF-8: 'utf-8' codec can't decode byte 0xff in position 14: "
        "invalid start byte",
    ]
    assert sorted(Order.objects.values_list("order_id", flat=True)) == ["o-2", "o-3"]
    assert list(Refund.objects.values_list("event__event_id", flat=True)) == ["r-1"]
    assert Event.objects.count() == counts[Event] + 3


def test_a_dry_run_validates_every_line_and_writes_nothing(world, tmp_path):
    payloads = [*events(world), {"event_id": "bad", "contact": {}, "items": [{}]}]
    counts = {model: model.objects.count() for model in MODELS}

    out, err, error = run(write(tmp_path, payloads), "--dry-run", "--batch-size", "4")

    assert out.splitlines()[0] == "23 lines: 22 valid, 0 already recorded, 1 failed."
    assert "line 23: contact.email: This field is required." in err
    assert str(error) == "1 line(s) failed: 23"
    assert {model: model.objects.count() for model in MODELS} == counts


@pytest.mark.postgresql(BATCH_WRITER)
def test_an_event_the_api_records_meanwhile_is_a_duplicate(api, world, tmp_path, monkeypatch):
    """The API records one of the batch's events between the batch's reads and its write:
    the event's unique constraint stops the copy, and the batch is worked out again
    without it."""

    payloads = events(world)[:5]
    posted = []
    original = importing.Batch.write

    def api_first(self):
        if not posted:
            posted.append(True)
            post_all(api, [payloads[2]])  # o-2, recorded by the API after the batch read
        return original(self)

    monkeypatch.setattr(importing.Batch, "write", api_first)
    out, _, error = run(write(tmp_path, payloads))

    assert error is None
    assert out.splitlines()[0] == "5 lines: 4 recorded, 1 already recorded, 0 failed."
    assert Order.objects.filter(order_id="o-2").count() == 1
    assert Event.objects.filter(event_id="o-2").count() == 1


@pytest.mark.postgresql(BATCH_WRITER)
def test_a_contact_the_api_makes_meanwhile_is_read_again(api, world, tmp_path, monkeypatch):
    c, at = world["clicks"], world["at"]
    payloads = [
        {"event_id": "o-1", "occurred_at": iso(at[7]), "contact": {"email": "new@example.com"},
         "items": [{"sku": "A", "quantity": 1, "unit_price": "100.00"}]},
    ]  # fmt: skip
    posted = []
    original = importing.Batch.write

    def api_first(self):
        if not posted:
            posted.append(True)
            form = {
                "kind": "web_form",
                "event_id": "f-api",
                "occurred_at": iso(at[6]),
                "contact": {"email": "new@example.com"},
                "tracking_token": token(c["leaf"]),
            }
            post_all(api, [form])
        return original(self)

    monkeypatch.setattr(importing.Batch, "write", api_first)
    _, _, error = run(write(tmp_path, payloads))

    assert error is None
    assert Contact.objects.count() == 1
    order = Order.objects.get()
    assert order.lead_partner.code == "salesrep"  # the lead the API's web form fixed
    assert order.lead_trace["source"] == "contact"


def batch_of(world, size: int, prefix: str) -> list:
    """`size` orders (and a web form every 5th) of size/3 contacts: tokens of one and two
    clicks, none, an IP address with clicks, explicit lead partners."""
    c, at = world["clicks"], world["at"]
    tokens = [token(c["leaf"]), token(c["leaf3"], c["solo"]), ""]
    payloads = []
    for n in range(size):
        payloads.append(
            {"event_id": f"{prefix}o-{n}", "occurred_at": iso(at[10 + n % 20]),
             "contact": {"email": f"buyer{n % (size // 3)}@example.com"},
             "items": [{"sku": "A", "quantity": 1 + n % 3, "unit_price": "19.99"}],
             "tracking_token": tokens[n % 3], "ip": "198.51.100.9",
             **({"lead_partner": "blogger"} if n % 4 == 0 else {})}
        )  # fmt: skip
        if n % 5 == 0:
            payloads.append(
                {"kind": "web_form", "event_id": f"{prefix}f-{n}", "occurred_at": iso(at[9]),
                 "contact": {"email": f"buyer{n}@example.com"}, "tracking_token": tokens[0]}
            )  # fmt: skip
    return [line_parse(n, json.dumps(p)) for n, p in enumerate(payloads, start=1)]


# Per batch: recorded events, partner codes; defaults with chains, contacts, stored history,
# IP clicks, clicks in the histories; ids, commission ids; SAVEPOINT (the test's transaction;
# BEGIN outside one), COPY events, the contacts' upsert, COPY orders, commissions, leads,
# notifications, history entries (a COPY of no rows is not sent); RELEASE (COMMIT).
QUERIES_PER_BATCH = 17


@pytest.mark.postgresql(BATCH_WRITER)
@pytest.mark.parametrize("overrides", [False, True], ids=["no-overrides", "with-overrides"])
@pytest.mark.parametrize("size", [60, 600], ids=["60-orders", "600-orders"])
def test_the_queries_of_a_batch_do_not_grow_with_its_size(
    world, program, size, overrides, django_assert_max_num_queries
):
    """A fixed number of statements per batch, however many events, with every source of
    attribution on and contacts that have a history already; with overrides too (the
    chains' one query reads them)."""
    if overrides:
        with_overrides(world, program)
    defaults_update(
        data={"tracking_method": "history_and_cookies", "use_ip_address": True}, acting_user=None
    )
    batch_prepare(
        batch_of(world, size, "first-"), dry_run=False
    ).commit()  # the contacts and their history
    batch = batch_of(world, size, "second-")

    with django_assert_max_num_queries(QUERIES_PER_BATCH):
        batch_prepare(batch, dry_run=False).commit()

    assert {line.outcome for line in batch} == {RECORDED}
    assert Order.objects.count() == 2 * size
    assert Lead.objects.count() == 2 * len(range(0, size, 5))
    assert Commission.objects.filter(entry="commission").count() > 2 * 3 * size
    assert Referral.objects.filter(source="cookie").exists()


def test_a_batch_of_one_line_and_the_outcomes_of_lines(world):
    batch = [
        line_parse(1, json.dumps(events(world)[2])),
        line_parse(2, "[1, 2]"),
        line_parse(3, json.dumps(events(world)[2])),
    ]

    batch_prepare(batch, dry_run=False).commit()

    assert [line.outcome for line in batch] == [RECORDED, FAILED, DUPLICATE]
    assert batch[1].errors == {"line": ["Each line must be one JSON object."]}


def test_rows_written_with_reserved_ids_leave_the_sequences_ahead(world, tmp_path):
    """Rows written with ids taken from the sequences: the next row the API writes gets a
    fresh id (no clash)."""
    run(write(tmp_path, events(world)[:3]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM commissions_order")
        [highest] = cursor.fetchone()
    order = Order.objects.order_by("-id").first()
    assert order.pk == highest
    from rest_framework.test import APIClient

    from partners.services.api_keys import api_key_create

    _, key = api_key_create(name="shop")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    post_all(client, [events(world)[6]])
    assert Order.objects.get(order_id="o-5").pk > highest


# --- One batch written while the next is worked out (outside a transaction) -------------------


@pytest.mark.postgresql(BATCH_WRITER)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("policy", ["cookie-last", "history-last-ip"])
def test_overlapping_batches_write_what_the_api_writes(api, world, tmp_path, policy, monkeypatch):
    """Outside a transaction a thread writes each batch while the next is worked out from
    the contacts as the batch being written leaves them; the rows are still the API's."""
    defaults_update(data=POLICIES[policy], acting_user=None)
    before, payloads = prelude(world), events(world)
    post_all(api, before)
    post_all(api, payloads)
    through_api = snapshot()
    wipe()

    post_all(api, before)
    interval = sys.getswitchinterval()
    while_writing = []
    original = importing.Batch.write

    def write_noted(self):
        while_writing.append(sys.getswitchinterval())
        return original(self)

    monkeypatch.setattr(importing.Batch, "write", write_noted)
    out, err, error = run(write(tmp_path, payloads), "--batch-size", "2")

    assert error is None, err
    assert out.splitlines()[0] == "22 lines: 22 recorded, 0 already recorded, 0 failed."
    assert_written_as_by_the_api(snapshot(), through_api, out)
    # The writer thread gets the interpreter sooner while the import runs, and only then.
    assert set(while_writing) == {importing.WRITER_SWITCH_INTERVAL}
    assert sys.getswitchinterval() == interval


@pytest.mark.django_db(transaction=True)
def test_a_repeat_of_an_event_of_the_batch_being_written_is_a_duplicate(world, tmp_path):
    payloads = events(world)[:4]
    lines = [*payloads[:2], payloads[1], {**payloads[1], "items": []}, *payloads[2:]]

    out, _, error = run(write(tmp_path, lines), "--batch-size", "2")

    assert error is None
    assert out.splitlines()[0] == "6 lines: 4 recorded, 2 already recorded, 0 failed."
    assert Order.objects.count() == 3
    assert Event.objects.count() == 4


@pytest.mark.postgresql(BATCH_WRITER)
@pytest.mark.django_db(transaction=True)
def test_a_batch_worked_out_again_makes_the_next_one_worked_out_again(
    api, world, tmp_path, monkeypatch
):
    """The API records an event of the batch being written: that batch is worked out again,
    and so is the next one, which took that batch's contacts as it would have left them."""

    c, at = world["clicks"], world["at"]
    item = {"sku": "A", "quantity": 1, "unit_price": "100.00"}
    payloads = [
        {"event_id": "o-1", "occurred_at": iso(at[5]), "contact": {"email": "amy@example.com"},
         "items": [item], "tracking_token": token(c["leaf"])},
        {"event_id": "o-2", "occurred_at": iso(at[6]), "contact": {"email": "amy@example.com"},
         "items": [item]},
        # the next batch: the same contact, whose lead o-1 fixes (or, once the API recorded
        # o-1 with another partner, that one)
        {"event_id": "o-3", "occurred_at": iso(at[7]), "contact": {"email": "amy@example.com"},
         "items": [item]},
    ]  # fmt: skip
    by_api = {**payloads[0], "tracking_token": token(c["leaf3"])}
    posted = []
    original = importing.Batch.write

    def api_first(self):
        if not posted:
            posted.append(True)
            post_all(api, [by_api])  # o-1 by the API, crediting vlogger
        return original(self)

    monkeypatch.setattr(importing.Batch, "write", api_first)
    again = []
    worked_out_again = importing._intake_again

    def counted(lines):
        again.append(len(lines))
        return worked_out_again(lines)

    monkeypatch.setattr(importing, "_intake_again", counted)
    out, _, error = run(write(tmp_path, payloads), "--batch-size", "2")

    assert error is None
    assert out.splitlines()[0] == "3 lines: 2 recorded, 1 already recorded, 0 failed."
    assert again == [2]  # the first batch; the second was worked out again before its write
    leads = dict(Order.objects.values_list("order_id", "lead_partner__code"))
    assert leads == {"o-1": "vlogger", "o-2": "vlogger", "o-3": "vlogger"}
    assert Contact.objects.get().lead_partner.code == "vlogger"
