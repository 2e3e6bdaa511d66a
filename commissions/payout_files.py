"""Payout files (SPEC §11): what staff upload to PayPal or Wise to send a batch's money.

The only place payout details leave the database in full. Each file holds the batch's
payments that are still to be sent or were sent (not failed), for the partners whose
payout details (as they are when the file is made) name that rail; partners without
details are in neither (they are in the batch's plain CSV). Formats and the versions of
the documentation followed: docs/integration.md, "Payout files".
"""

from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from .models import Payment, PaymentStatus, PayoutBatch, PayoutDetails, PayoutDetailsMethod
from .money import minor_units

# PayPal Payouts Web ("Use Web UI"): no header row; one currency per file; these columns in
# this order (the seventh, social feed privacy, is for Venmo only and left out).
PAYPAL_COLUMNS = (
    "recipient_identifier",
    "payment_amount",
    "currency",
    "customer_id",
    "note_to_recipient",
    "recipient_wallet",
)
PAYPAL_CUSTOMER_ID_MAX = 30
PAYPAL_NOTE_MAX = 400

# Wise batch payments, "Send to bank accounts" template: its common columns, then the
# recipient account fields of each kind of account (IBAN; US account number + ABA routing
# number with the holder's address; account number + SWIFT), empty where they do not apply.
WISE_COLUMNS = (
    "name",
    "recipientEmail",
    "paymentReference",
    "receiverType",
    "amountCurrency",
    "amount",
    "sourceCurrency",
    "targetCurrency",
    "IBAN",
    "BIC",
    "accountNumber",
    "abartn",
    "accountType",
    "swiftCode",
    "addressCountryCode",
    "addressCity",
    "addressFirstLine",
    "addressState",
    "addressPostCode",
)
WISE_REFERENCE_MAX = 18  # the shortest limit Wise puts on a reference among its currencies


@dataclass(frozen=True)
class FilePayment:
    payment: Payment
    details: PayoutDetails


def sendable(batch: PayoutBatch) -> QuerySet[Payment]:
    """The batch's payments to send: neither failed nor a returned row."""
    return (
        batch.payments.filter(reverses__isnull=True)
        .exclude(status=PaymentStatus.FAILED)
        .select_related("partner")
        .order_by("partner__code", "currency", "pk")
    )


def _by_rail(batch: PayoutBatch, method: str) -> list[FilePayment]:
    payments = list(sendable(batch))
    details = {
        d.partner_id: d
        for d in PayoutDetails.objects.filter(
            partner_id__in={p.partner_id for p in payments}, method=method
        )
    }
    return [
        FilePayment(payment=p, details=details[p.partner_id])
        for p in payments
        if p.partner_id in details
    ]


def paypal_currencies(batch: PayoutBatch) -> list[str]:
    """One PayPal file per currency (PayPal takes one currency per file)."""
    return sorted({fp.payment.currency for fp in _by_rail(batch, PayoutDetailsMethod.PAYPAL)})


def _amount(payment: Payment) -> str:
    return f"{payment.amount:.{minor_units(payment.currency)}f}"


def customer_id(payment: Payment) -> str:
    code = payment.partner.code
    return code if len(code) <= PAYPAL_CUSTOMER_ID_MAX else f"rp-{payment.partner_id}"


def paypal_rows(batch: PayoutBatch, currency: str) -> Iterator[list[str]]:
    note = (
        f"Partner program payout (batch {batch.pk}, {batch.start:%Y-%m-%d} to {batch.end:%Y-%m-%d})"
    )
    for fp in _by_rail(batch, PayoutDetailsMethod.PAYPAL):
        if fp.payment.currency != currency:
            continue
        yield [
            fp.details.paypal_email,
            _amount(fp.payment),
            fp.payment.currency,
            customer_id(fp.payment),
            note[:PAYPAL_NOTE_MAX],
            "PAYPAL",
        ]


def wise_rows(batch: PayoutBatch) -> Iterator[list[str]]:
    reference = f"Payout {batch.pk}"[:WISE_REFERENCE_MAX]
    source = settings.DEFAULT_CURRENCY
    for fp in _by_rail(batch, PayoutDetailsMethod.BANK):
        d, p = fp.details, fp.payment
        us_account = not d.iban and bool(d.routing_number)
        row = {
            "name": d.holder_name,
            "recipientEmail": p.partner.email,
            "paymentReference": reference,
            "receiverType": "PERSON",
            # The partner gets exactly what they earned; the fees are the merchant's.
            "amountCurrency": "target",
            "amount": _amount(p),
            "sourceCurrency": source,
            "targetCurrency": p.currency,
            "IBAN": d.iban,
            "BIC": d.bic if d.iban else "",
            "accountNumber": "" if d.iban else d.account_number,
            "abartn": d.routing_number if us_account else "",
            "accountType": d.account_type.upper() if us_account else "",
            "swiftCode": d.bic if not d.iban and not us_account else "",
            "addressCountryCode": d.country if not d.iban else "",
            "addressCity": d.city if not d.iban else "",
            "addressFirstLine": d.address_line if not d.iban else "",
            "addressState": d.state if not d.iban else "",
            "addressPostCode": d.postcode if not d.iban else "",
        }
        yield [row[name] for name in WISE_COLUMNS]
