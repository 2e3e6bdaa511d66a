"""Payout details, draft batches, payments marked paid or failed, payout files and the
payout email (SPEC §11, issue 17)."""

import csv
import io
from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.forms.models import model_to_dict
from django.test import override_settings

from commissions.encrypted import UndecryptableValue, fernet
from commissions.ledger import partner_ledger
from commissions.models import (
    Commission,
    Notification,
    Payment,
    PayoutBatch,
    PayoutDetails,
    PayoutDetailsChange,
)
from commissions.payout_details import aba_routing_valid, masked, payout_details_update
from commissions.payout_files import PAYPAL_COLUMNS, WISE_COLUMNS
from commissions.payouts import (
    PayoutDraftStale,
    payment_mark_failed,
    payout_draft_confirm,
    payout_draft_create,
    payout_draft_discard,
)
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, give_payout_details

IBAN = "DE89370400440532013000"
BAD_IBAN = "DE89370400440532013001"  # one digit off: the check digits no longer match
US_ROUTING = "021000021"
US_BANK = {
    "method": "bank",
    "holder_name": "Una States",
    "account_number": "123456789012",
    "routing_number": US_ROUTING,
    "account_type": "savings",
    "address_line": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "postcode": "62701",
    "country": "US",
}
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31", "method": "earned_in_range"}


def sell(api, event_id, partner, price="10.00", day="2026-10-05"):
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": event_id,
            "occurred_at": f"{day}T12:00:00Z",
            "sale_partner": partner,
            "contact": {"email": f"{event_id}@buyers.example"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": price}],
        },
        format="json",
    )
    assert response.status_code == 201, response.data


def now():
    from django.utils import timezone

    return timezone.now()


def recorded() -> tuple:
    """Everything a payout records: payments, ties, payout emails."""
    return (
        [model_to_dict(p) for p in Payment.objects.order_by("pk")],
        list(Commission.objects.order_by("pk").values_list("pk", "payment_id")),
        list(Notification.objects.filter(payment__isnull=False).values_list("pk", flat=True)),
    )


@pytest.fixture
def rails(api):
    """October, $10 a sale: paula (PayPal) 20.00, bert (IBAN) 10.00, una (US bank) 10.00,
    nina (no payout details) 10.00."""
    ProgramFactory(priority=1, rates={1: {"sale_amount": D("10.00")}})
    partners = {code: PartnerFactory(code=code, name=code.title()) for code in RAIL_CODES}
    give_payout_details(partners["paula"], paypal_email="paula.pays@paypal.example")
    give_payout_details(
        partners["bert"],
        method="bank",
        holder_name="Bert Bank",
        iban="de89 3704 0044 0532 0130 00",
        bic="cobadeffxxx",
    )
    give_payout_details(partners["una"], **US_BANK)
    for n, code in enumerate(["paula", "paula", "bert", "una", "nina"]):
        sell(api, f"o{n}", code)
    mail.outbox.clear()
    return partners


RAIL_CODES = ("paula", "bert", "una", "nina")


# --- Payout details --------------------------------------------------------------------------


def test_a_bad_iban_checksum_is_refused_naming_the_field_and_nothing_is_written(db):
    partner = PartnerFactory()

    with pytest.raises(ValidationError) as refused:
        payout_details_update(
            partner=partner,
            data={"method": "bank", "holder_name": "X", "iban": BAD_IBAN},
            changed_by=partner.code,
            at=now(),
        )

    assert refused.value.message_dict == {
        "iban": ["This IBAN is not valid (Invalid checksum digits): check it against your bank's."]
    }
    assert (PayoutDetails.objects.count(), PayoutDetailsChange.objects.count()) == (0, 0)
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**US_BANK, "routing_number": "021000022"}, "routing_number"),
        ({**US_BANK, "city": ""}, "city"),
        ({"method": "bank", "holder_name": "X", "iban": IBAN, "bic": "COBAXXFF"}, "bic"),
        ({"method": "bank", "holder_name": "X", "country": "DE"}, "iban"),
        ({"method": "bank", "holder_name": "=HYPERLINK(1)", "iban": IBAN}, "holder_name"),
        ({"method": "paypal", "paypal_email": "not-an-email"}, "paypal_email"),
    ],
    ids=["routing-check-digit", "us-without-city", "bic-country", "no-account", "formula", "email"],
)
def test_other_bad_details_are_refused_on_their_field(db, data, field):
    partner = PartnerFactory()

    with pytest.raises(ValidationError) as refused:
        payout_details_update(partner=partner, data=data, changed_by="x", at=now())

    assert field in refused.value.message_dict
    assert PayoutDetails.objects.count() == 0


def test_aba_routing_check_digit():
    assert aba_routing_valid("021000021") and aba_routing_valid("011000015")
    assert not aba_routing_valid("021000022") and not aba_routing_valid("02100002")


def test_details_are_encrypted_at_rest_masked_for_staff_logged_and_emailed(
    db, django_capture_on_commit_callbacks
):
    partner = PartnerFactory(code="bert", name="Bert")

    with django_capture_on_commit_callbacks(execute=True):
        change = payout_details_update(
            partner=partner,
            data={
                "method": "bank",
                "holder_name": "Bert Bank",
                "iban": "de89 3704 0044 0532 0130 00",
            },
            changed_by="bert",
            at=now(),
        )

    details = PayoutDetails.objects.get()
    assert (details.iban, details.country, details.holder_name) == (IBAN, "DE", "Bert Bank")
    with connection.cursor() as cursor:
        cursor.execute("SELECT iban, holder_name FROM commissions_payoutdetails")
        [(stored_iban, stored_holder)] = cursor.fetchall()
    assert IBAN not in stored_iban and "Bert" not in stored_holder
    assert fernet().decrypt(stored_iban.encode()).decode() == IBAN
    assert masked(details).summary == "Holder B•••, IBAN DE89 •••• 3000, Country DE"
    assert (change.changed_by, change.fields) == (
        "bert",
        ["method", "holder_name", "iban", "country"],
    )
    assert IBAN not in change.summary
    [email] = mail.outbox
    assert email.subject == "Your payout details were changed"
    assert "method, account holder, IBAN and country changed" in email.body
    assert IBAN not in email.body and "DE89 •••• 3000" in email.body
    # The same details again: nothing changed, nothing logged or sent.
    again = payout_details_update(
        partner=partner,
        data={"method": "bank", "holder_name": "Bert Bank", "iban": IBAN},
        changed_by="bert",
        at=now(),
    )
    assert again is None
    assert (PayoutDetailsChange.objects.count(), len(mail.outbox)) == (1, 1)


def test_details_change_email_is_sent_even_with_skip_notifications(
    db, django_capture_on_commit_callbacks
):
    defaults_update(data={"skip_notifications": True}, acting_user=None)
    partner = PartnerFactory()

    with django_capture_on_commit_callbacks(execute=True):
        give_payout_details(partner)

    assert [n.status for n in Notification.objects.all()] == ["sent"]
    assert len(mail.outbox) == 1


def test_key_rotation_reads_old_values_and_a_missing_key_is_an_error(db, settings):
    partner = PartnerFactory()
    give_payout_details(partner, paypal_email="old@paypal.example")
    old_salts = list(settings.SALT_KEY)

    settings.SALT_KEY = ["a-new-salt", *old_salts]
    assert PayoutDetails.objects.get().paypal_email == "old@paypal.example"
    give_payout_details(partner, paypal_email="new@paypal.example")
    with connection.cursor() as cursor:
        cursor.execute("SELECT paypal_email FROM commissions_payoutdetails")
        [(token,)] = cursor.fetchall()

    settings.SALT_KEY = ["a-new-salt"]  # the old salt dropped: the new value still reads
    assert PayoutDetails.objects.get().paypal_email == "new@paypal.example"
    with override_settings(SALT_KEY=old_salts), pytest.raises(UndecryptableValue):
        PayoutDetails.objects.get().paypal_email  # noqa: B018
    assert token


# --- Drafts, confirmation, marks -------------------------------------------------------------


def test_a_draft_records_nothing_lists_who_is_left_out_and_can_be_thrown_away(api, rails):
    before = recorded()

    response = api.post("/api/v1/payouts/", {**OCTOBER, "draft": True}, format="json")

    assert response.status_code == 201, response.data
    body = response.json()
    assert body["status"] == "draft"
    assert [(p["partner"], p["amount"], p["id"], p["status"]) for p in body["payments"]] == [
        ("paula", "20.00", None, "draft"),
        ("bert", "10.00", None, "draft"),
        ("una", "10.00", None, "draft"),
    ]
    assert body["total"] == "40.00"
    assert body["left_out"] == [
        {"partner": "nina", "amount": "10.00", "currency": "USD", "reason": "no payout details"}
    ]
    assert recorded() == before
    assert api.delete(f"/api/v1/payouts/{body['id']}/").status_code == 204
    assert not PayoutBatch.objects.exists()
    assert recorded() == before


def test_confirming_a_draft_records_it_and_a_confirmed_batch_cannot_be_deleted(api, rails):
    draft = api.post("/api/v1/payouts/", {**OCTOBER, "draft": True}, format="json").json()

    confirmed = api.post(f"/api/v1/payouts/{draft['id']}/confirm/", format="json")

    assert confirmed.status_code == 200, confirmed.data
    body = confirmed.json()
    assert body["status"] == "confirmed"
    assert [
        (p["partner"], p["amount"], p["status"], p["payout_method"]) for p in body["payments"]
    ] == [
        ("paula", "20.00", "recorded", "paypal"),
        ("bert", "10.00", "recorded", "bank"),
        ("una", "10.00", "recorded", "bank"),
    ]
    assert partner_ledger(rails["nina"], currency="USD").ending_balance == D("10.00")
    assert partner_ledger(rails["paula"], currency="USD").ending_balance == D("0.00")
    before = recorded()
    refused = api.delete(f"/api/v1/payouts/{draft['id']}/")
    again = api.post(f"/api/v1/payouts/{draft['id']}/confirm/", format="json")
    assert (refused.status_code, again.status_code) == (400, 400)
    assert recorded() == before


def test_a_draft_whose_amounts_changed_is_not_confirmed_and_nothing_changes(api, rails):
    draft = payout_draft_create(
        start=date(2026, 10, 1), end=date(2026, 10, 31), method="earned_in_range"
    )
    sell(api, "late", "bert", price="5.00", day="2026-10-20")
    before = (recorded(), model_to_dict(PayoutBatch.objects.get()))

    response = api.post(f"/api/v1/payouts/{draft.pk}/confirm/", format="json")

    assert response.status_code == 409
    assert response.json() == {
        "status": [
            "What partners are owed changed since this preview was made, so it was not "
            "confirmed: throw it away and preview again."
        ]
    }
    assert (recorded(), model_to_dict(PayoutBatch.objects.get())) == before
    with pytest.raises(PayoutDraftStale):
        payout_draft_confirm(batch_id=draft.pk)
    payout_draft_discard(batch_id=draft.pk)
    fresh = payout_draft_create(
        start=date(2026, 10, 1), end=date(2026, 10, 31), method="earned_in_range"
    )
    assert [(r["partner"], r["amount"]) for r in fresh.preview] == [
        ("paula", "20.00"),
        ("bert", "20.00"),  # a flat 10.00 a sale
        ("una", "10.00"),
    ]
    assert payout_draft_confirm(batch_id=fresh.pk).total == D("50.00")


def test_the_immediate_post_keeps_paying_every_partner_owed(api, rails):
    plain = api.post("/api/v1/payouts/", OCTOBER, format="json").json()

    assert [(p["partner"], p["payout_method"]) for p in plain["payments"]] == [
        ("paula", "paypal"),
        ("bert", "bank"),
        ("una", "bank"),
        ("nina", ""),
    ]
    assert plain["left_out"] == []


def test_the_immediate_post_can_leave_out_partners_without_details(api, rails):
    body = api.post(
        "/api/v1/payouts/", {**OCTOBER, "require_payout_details": True}, format="json"
    ).json()

    assert [p["partner"] for p in body["payments"]] == ["paula", "bert", "una"]
    assert [(r["partner"], r["reason"]) for r in body["left_out"]] == [
        ("nina", "no payout details")
    ]


def test_marking_paid_then_failed_puts_the_amount_back_on_the_balance(api, rails):
    batch = api.post("/api/v1/payouts/", {**OCTOBER, "draft": True}, format="json").json()
    api.post(f"/api/v1/payouts/{batch['id']}/confirm/", format="json")
    paula = Payment.objects.get(partner=rails["paula"])
    url = f"/api/v1/payouts/{batch['id']}/payments/{paula.pk}"

    no_reference = api.post(f"{url}/paid/", {}, format="json")
    paid = api.post(f"{url}/paid/", {"reference": "PP-123"}, format="json")

    assert no_reference.status_code == 400
    assert paid.status_code == 200
    paula.refresh_from_db()
    assert (paula.status, paula.reference) == ("paid", "PP-123")
    assert partner_ledger(rails["paula"], currency="USD").ending_balance == D("0.00")

    failed = api.post(f"{url}/failed/", {"reference": "Account closed"}, format="json")

    assert failed.status_code == 200
    paula.refresh_from_db()
    assert (paula.status, paula.reference) == ("failed", "Account closed")
    ledger = partner_ledger(rails["paula"], currency="USD")
    assert (ledger.earned, ledger.payments, ledger.ending_balance) == (
        D("20.00"),
        D("0.00"),
        D("20.00"),
    )
    assert not Commission.objects.filter(payment=paula).exists()
    [returned] = Payment.objects.filter(reverses=paula)
    assert (returned.amount, returned.status) == (D("-20.00"), "returned")
    # Marked once: a second failure is refused and writes nothing.
    before = recorded()
    assert api.post(f"{url}/failed/", {}, format="json").status_code == 400
    assert recorded() == before
    # A later batch pays it again.
    again = api.post(
        "/api/v1/payouts/", {**OCTOBER, "require_payout_details": True}, format="json"
    ).json()
    assert [(p["partner"], p["amount"]) for p in again["payments"]] == [("paula", "20.00")]


# --- Payout files ----------------------------------------------------------------------------


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_payout_files_follow_the_documented_columns(api, staff_client, rails):
    batch = api.post("/api/v1/payouts/", OCTOBER, format="json").json()  # nina paid too
    pk = batch["id"]

    paypal = rows_of(staff_client.get(f"/staff/payouts/{pk}/paypal.csv?currency=USD"))
    wise = rows_of(staff_client.get(f"/staff/payouts/{pk}/wise.csv"))
    plain = rows_of(staff_client.get(f"/staff/payouts/{pk}/csv/"))

    # PayPal Payouts Web: no header row, six columns in the documented order.
    assert len(PAYPAL_COLUMNS) == 6
    assert paypal == [
        [
            "paula.pays@paypal.example",
            "20.00",
            "USD",
            "paula",
            f"Partner program payout (batch {pk}, 2026-10-01 to 2026-10-31)",
            "PAYPAL",
        ]
    ]
    header, *lines = wise
    assert header == list(WISE_COLUMNS)
    assert header[:8] == [
        "name",
        "recipientEmail",
        "paymentReference",
        "receiverType",
        "amountCurrency",
        "amount",
        "sourceCurrency",
        "targetCurrency",
    ]
    by_name = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert set(by_name) == {"Bert Bank", "Una States"}
    assert by_name["Bert Bank"] == {
        **dict.fromkeys(WISE_COLUMNS, ""),
        "name": "Bert Bank",
        "recipientEmail": "bert@partners.example",
        "paymentReference": f"Payout {pk}",
        "receiverType": "PERSON",
        "amountCurrency": "target",
        "amount": "10.00",
        "sourceCurrency": "USD",
        "targetCurrency": "USD",
        "IBAN": IBAN,
        "BIC": "COBADEFFXXX",
    }
    assert by_name["Una States"] == {
        **dict.fromkeys(WISE_COLUMNS, ""),
        "name": "Una States",
        "recipientEmail": "una@partners.example",
        "paymentReference": f"Payout {pk}",
        "receiverType": "PERSON",
        "amountCurrency": "target",
        "amount": "10.00",
        "sourceCurrency": "USD",
        "targetCurrency": "USD",
        "accountNumber": "123456789012",
        "abartn": US_ROUTING,
        "accountType": "SAVINGS",
        "addressCountryCode": "US",
        "addressCity": "Springfield",
        "addressFirstLine": "1 Main St",
        "addressState": "IL",
        "addressPostCode": "62701",
    }
    # The partner without payout details is in the plain CSV only.
    assert [line[0] for line in plain[1:]] == ["bert", "nina", "paula", "una"]
    # A failed payment leaves the files.
    payment_mark_failed(payment_id=Payment.objects.get(partner=rails["bert"]).pk)
    wise_after = rows_of(staff_client.get(f"/staff/payouts/{pk}/wise.csv"))
    assert [line[0] for line in wise_after[1:]] == ["Una States"]


def test_staff_see_details_masked_on_the_partner_page_and_in_the_admin(staff_client, rails):
    page = staff_client.get("/staff/crm/partners/bert/activity/").content.decode()
    admin = staff_client.get("/admin/commissions/payoutdetails/").content.decode()

    for text in (page, admin):
        assert "DE89 •••• 3000" in text
        assert IBAN not in text and "0532013000" not in text
    assert "p•••@paypal.example" in admin and "paula.pays@paypal.example" not in admin


# --- The payout email ------------------------------------------------------------------------


def test_each_partner_paid_is_emailed(api, rails, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/payouts/", {**OCTOBER, "require_payout_details": True}, format="json")

    subjects = sorted((m.to[0], m.subject) for m in mail.outbox)
    assert subjects == [
        ("bert@partners.example", "Payout of 10.00 USD on its way"),
        ("paula@partners.example", "Payout of 20.00 USD on its way"),
        ("una@partners.example", "Payout of 10.00 USD on its way"),
    ]
    paula = next(m for m in mail.outbox if m.to == ["paula@partners.example"])
    assert "sent to your PayPal account" in paula.body
    assert "earned 2026-10-01 to 2026-10-31" in paula.body
    assert set(Notification.objects.filter(kind="payout").values_list("status", flat=True)) == {
        "sent"
    }


def test_no_payout_email_with_skip_notifications_and_the_log_says_why(api, rails):
    defaults_update(data={"skip_notifications": True}, acting_user=None)

    api.post("/api/v1/payouts/", OCTOBER, format="json")

    assert mail.outbox == []
    assert set(Notification.objects.filter(kind="payout").values_list("status", "reason")) == {
        ("skipped", "Skip notifications is on in the defaults.")
    }
    listed = api.get("/api/v1/notifications/").json()["results"]
    assert {(n["kind"], n["event_id"], n["status"]) for n in listed if n["kind"] == "payout"} == {
        ("payout", None, "skipped")
    }


def test_the_export_holds_the_details_and_erasure_removes_them(db):
    from partners.services.privacy import partner_erase, partner_export

    partner = PartnerFactory(code="bert")
    give_payout_details(partner, method="bank", holder_name="Bert Bank", iban=IBAN)

    exported = partner_export(partner=partner, acting_user=None, at=now())
    partner_erase(partner=partner, acting_user=None)

    assert exported["payout_details"]["iban"] == IBAN
    assert not PayoutDetails.objects.exists()
    [change] = PayoutDetailsChange.objects.all()
    assert (change.summary, change.changed_by) == ("(erased)", "")


def test_a_payout_email_whose_task_was_lost_is_swept_again(api, rails):
    from datetime import timedelta

    from commissions.requeue import notifications_stranded

    api.post("/api/v1/payouts/", {**OCTOBER, "require_payout_details": True}, format="json")
    queued = sorted(
        Notification.objects.filter(kind="payout", status="queued").values_list("pk", flat=True)
    )

    assert len(queued) == 3  # their task never ran (no commit in this test)
    assert notifications_stranded(at=now()) == []  # too early: the task may be on its way
    # The payout details emails of the fixture were never sent either: swept too.
    assert notifications_stranded(at=now() + timedelta(minutes=10)) == sorted(
        Notification.objects.filter(status="queued").values_list("pk", flat=True)
    )
    assert set(queued) <= set(notifications_stranded(at=now() + timedelta(minutes=10)))
