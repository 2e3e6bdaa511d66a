"""Contacts and their referral history (SPEC §4)."""

import datetime
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from partners.models import Partner
from partners.validators import http_url_validator

from .encrypted import SecretCharField


class Contact(models.Model):
    """A prospect or customer of the merchant, keyed by email (stored lower-case)."""

    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    lead_partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lead_contacts",
        help_text="Fixed the first time the contact is attributed.",
    )
    lead_partner_set_at = models.DateTimeField(null=True, blank=True)
    lead_trace = models.JSONField(default=dict, blank=True, help_text="How it was attributed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ReferralSource(models.TextChoices):
    COOKIE = "cookie", "Cookie"
    IP = "ip", "IP address"
    MANUAL = "manual", "Manual"
    COUPON = "coupon", "Coupon"


class Referral(models.Model):
    """One entry of a contact's referral history: a partner known to have referred them."""

    # No index of its own: referral_contact_set_idx starts with it.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="referrals", db_index=False
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="referrals")
    source = models.CharField(max_length=8, choices=ReferralSource.choices)
    # The click it came from (not a foreign key: a click may still be on its way to the
    # database when the event that reports it arrives).
    click_id = models.UUIDField(null=True, blank=True)
    set_at = models.DateTimeField(help_text="When the referral happened (the click's time).")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="From the partner's cookie days; empty: never."
    )
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["contact_id", "set_at", "id"]
        indexes = [models.Index(fields=["contact", "set_at"], name="referral_contact_set_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "click_id"],
                condition=models.Q(click_id__isnull=False),
                name="referral_once_per_click",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} ← {self.partner} ({self.source})"


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=14, decimal_places=2, **kwargs)


class EventKind(models.TextChoices):
    WEB_FORM = "web_form", "Web form"
    ORDER = "order", "Order"
    REFUND = "refund", "Refund"
    PAYMENT = "payment", "Customer payment"


class Event(models.Model):
    """A raw event as received (SPEC §6): kept to answer repeats and to replay."""

    kind = models.CharField(max_length=8, choices=EventKind.choices)
    event_id = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    occurred_at = models.DateTimeField()
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "event_id"], name="event_id_unique_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.event_id}"


class Lead(models.Model):
    """A web form filled out by a contact (an opt-in)."""

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="lead")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="leads")
    form = models.CharField(max_length=100, blank=True, default="")
    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        help_text="The contact's lead partner after this form.",
    )
    trace = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["partner", "occurred_at"], name="lead_partner_at_idx")]

    def __str__(self) -> str:
        return f"{self.contact} via {self.form or 'web form'}"


class Order(models.Model):
    """An order event as recorded: amounts, the partners credited and why."""

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="order")
    order_id = models.CharField(max_length=100, unique=True, help_text="The event's event_id.")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="orders")
    currency = models.CharField(max_length=3)
    items = models.JSONField()
    discount = money_field()
    shipping = money_field()
    tax = money_field()
    base = money_field(help_text="Items less discount, never below 0: what percentages apply to.")
    total = money_field(help_text="Base + shipping + tax: what the customer paid.")
    refunded = money_field(default=0)
    # A database default: the intake's and the importer's hand-written inserts leave it out.
    paid = money_field(
        default=0,
        db_default=0,
        help_text="What the customer has paid so far (payment events, SPEC §10).",
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    lead_partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="lead_orders"
    )
    sale_partner = models.ForeignKey(  # indexed by order_sale_partner_at_idx
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sale_orders",
        db_index=False,
    )
    lead_trace = models.JSONField(default=dict)
    sale_trace = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    # The subscription it pays (SPEC §10): the shop's id, and the cycle (1: the first).
    subscription_id = models.CharField(max_length=100, blank=True, default="")
    subscription_cycle = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # A renewal reads its subscription's first order (`selectors.first_orders`).
            models.Index(
                fields=["subscription_id", "id"],
                condition=models.Q(subscription_cycle=1),
                name="order_subscription_first_idx",
            ),
            models.Index(fields=["sale_partner", "occurred_at"], name="order_sale_partner_at_idx"),
            # Covering (PostgreSQL): the staff dashboard sums a period's referred orders
            # from the index alone (commissions.dashboard).
            models.Index(
                fields=["occurred_at"],
                include=["currency", "base", "sale_partner", "lead_partner"],
                name="order_at_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.order_id


class Refund(models.Model):
    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="refund")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount = money_field()
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.amount} of {self.order}"


class OrderPayment(models.Model):
    """A customer's payment on an order (SPEC §10 "Credit timing"): it credits the lines of
    the programs that credit on payment their share, and nothing on the others."""

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="order_payment")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = money_field()
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.amount} paid on {self.order}"


class CommissionKind(models.TextChoices):
    LEAD = "lead", "Lead"
    SALE = "sale", "Sale"


class CommissionEntry(models.TextChoices):
    COMMISSION = "commission", "Commission"
    CLAWBACK = "clawback", "Clawback"
    # Staff rejected the line it points at (SPEC §11): minus what was left of it, with the reason.
    REJECTION = "rejection", "Rejection"
    # A customer's payment credited the line it points at (a program that credits on
    # payment, SPEC §10): its share of the line, on the payment's date.
    CREDIT = "credit", "Credit"


# The entries a ledger counts as earned: the lines credited in full at the order, and the
# credits of the lines credited on payment.
EARNED_ENTRIES = (CommissionEntry.COMMISSION, CommissionEntry.CREDIT)


class CommissionQuerySet(models.QuerySet):
    def ledger(self) -> "CommissionQuerySet":
        """The entries that count for money earned and owed (ledgers, balances, reports,
        payouts): all but the lines of programs that credit on payment, which count through
        their credit entries, each on its payment's date (SPEC §10). Every sum of money
        earned or owed reads its rows through this one filter."""
        return self.filter(credited__isnull=True)


class CommissionStatus(models.TextChoices):
    """A commission line's place in its lifecycle (SPEC §11), worked out by a query from
    `rejected_at`, `payment` and `payable_at`: nothing flips it on a timer."""

    PENDING = "pending", "Pending"
    PAYABLE = "payable", "Payable"
    REJECTED = "rejected", "Rejected"
    PAID = "paid", "Paid"


class Commission(models.Model):
    """A ledger line: a commission earned (+) or a clawback (-) of one.

    Each row keeps the base, rates and attribution it was made with, so the past can be
    explained and replayed without recomputing.
    """

    # Every commission row is written with each of its indexes, so there are no more than
    # the reads need: the partner's is commission_partner_at_idx; refund, clawback_of and
    # payment, empty on most rows, have partial ones (below).
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="commissions", db_index=False
    )
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="commissions")
    refund = models.ForeignKey(
        Refund,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clawbacks",
        db_index=False,
    )
    # The line a clawback, rejection or credit entry takes back or credits.
    clawback_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clawbacks",
        db_index=False,
    )
    level = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=4, choices=CommissionKind.choices)
    entry = models.CharField(max_length=10, choices=CommissionEntry.choices)
    base = money_field()
    amount = money_field(help_text="Positive for a commission, negative for a clawback.")
    credited = money_field(
        null=True,
        blank=True,
        help_text="A line of a program that credits on payment: what the customer's payments "
        "have credited of it so far (its credit entries). Empty on every other row: a line "
        "credited in full at the order, and every other entry.",
    )
    currency = models.CharField(max_length=3)
    program = models.ForeignKey(
        "partners.Program", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The program's terms the line was worked out with (SPEC §10 "Versions"); a clawback or
    # rejection names its line's. No index: nothing looks commissions up by version, and
    # programs (whose deletion would null it) are never deleted.
    program_version = models.ForeignKey(
        "partners.ProgramVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    trace = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    payable_at = models.DateTimeField(
        help_text="When the entry stops being pending: the hold days after it was credited, "
        "or when staff approved or rejected its line. A clawback or rejection goes with the "
        "line it takes back."
    )
    rejected_at = models.DateTimeField(
        null=True, blank=True, help_text="A commission line staff rejected: when."
    )
    reason = models.CharField(
        max_length=500, blank=True, default="", help_text="Why staff rejected the line."
    )
    reviewed_by = models.CharField(
        max_length=150, blank=True, default="", help_text="Who approved or rejected the line."
    )
    payment = models.ForeignKey(
        "Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        help_text="The payment that paid this entry; empty while unpaid.",
        db_index=False,
    )

    objects = CommissionQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            # Covering (PostgreSQL): ledger sums read the index alone, not the table
            # (`credited`: the ledger's filter, `CommissionQuerySet.ledger`).
            models.Index(
                fields=["partner", "occurred_at"],
                include=["amount", "entry", "currency", "credited"],
                name="commission_partner_at_idx",
            ),
            # Covering too: payouts and the ledger report's grand totals sum the unpaid
            # entries from the index alone.
            models.Index(
                fields=["partner", "occurred_at"],
                include=["amount", "currency", "payable_at", "credited"],
                condition=models.Q(payment__isnull=True),
                name="commission_unpaid_idx",
            ),
            # The grand totals of many partners read a stretch of time, not partner by
            # partner (commissions.filters.ledger_grand_totals).
            models.Index(
                fields=["occurred_at"],
                include=["partner", "entry", "amount", "currency", "credited"],
                name="commission_at_idx",
            ),
            models.Index(
                fields=["occurred_at"],
                include=["partner", "amount", "currency", "credited"],
                condition=models.Q(entry="clawback"),
                name="commission_clawback_at_idx",
            ),
            *(
                models.Index(
                    fields=[name],
                    condition=models.Q(**{f"{name}__isnull": False}),
                    name=f"commission_{name}_idx",
                )
                for name in ("refund", "clawback_of", "payment")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(entry__in=["commission", "credit"], amount__gt=0)
                | models.Q(entry__in=["clawback", "rejection"], amount__lte=0),
                name="commission_sign_follows_entry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entry} {self.amount} {self.currency} to {self.partner_id}"

    @property
    def credited_so_far(self) -> Decimal:
        """What of this entry was credited: a line credited on payment, its credits so far;
        any other entry, its amount."""
        return self.amount if self.credited is None else self.credited


class NotificationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class NotificationKind(models.TextChoices):
    LEAD = "lead", "Lead"
    SALE = "sale", "Sale"
    # A payment of a payout batch was recorded for the partner (SPEC §11).
    PAYOUT = "payout", "Payout made"
    # The partner's payout details changed (sent whatever skip notifications says).
    PAYOUT_DETAILS = "payout_details", "Payout details changed"
    # Staff rejected one of the partner's commission lines (SPEC §11).
    REJECTION = "rejection", "Commission rejected"


class Notification(models.Model):
    """An email to a partner: a lead or sale they were credited for (SPEC §5.6), a payout
    made to them, a change of their payout details, or a commission line staff rejected
    (SPEC §11)."""

    # No index of its own: one_notification_per_partner_event starts with it.
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    event = models.ForeignKey(
        Event,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        help_text="The lead or sale event (for a rejection: the order's); empty for payout emails.",
    )
    payment = models.OneToOneField(
        "Payment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification",
        help_text="A payout email: the payment it tells of.",
    )
    details_change = models.OneToOneField(
        "PayoutDetailsChange",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification",
        help_text="A payout details email: the change it tells of.",
    )
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    status = models.CharField(max_length=8, choices=NotificationStatus.choices)
    commission = models.OneToOneField(
        "Commission",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rejection_notification",
        help_text="A rejection's email: the line rejected.",
    )
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # An event's notifications; a rejection's is one per line (`commission`).
            models.UniqueConstraint(
                fields=["partner", "event", "kind"],
                condition=models.Q(commission__isnull=True),
                name="one_notification_per_partner_event",
            ),
        ]
        indexes = [
            # The re-queue task looks for the few still queued every minute
            # (commissions.requeue): 0.75 ms instead of a 166 ms scan of 1,000,000 rows.
            models.Index(
                fields=["id"],
                condition=models.Q(status="queued"),
                name="notification_queued_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} notification to {self.partner_id}: {self.status}"


class PayoutMethod(models.TextChoices):
    EARNED_IN_RANGE = "earned_in_range", "Commissions earned in the range"
    BALANCE_PLUS_EARNED = "balance_plus_earned", "Beginning balance plus commissions earned"


class PayoutBatchStatus(models.TextChoices):
    DRAFT = "draft", "Draft (nothing recorded)"
    CONFIRMED = "confirmed", "Confirmed"


class PayoutBatch(models.Model):
    """One run of "Create Referral Partner Payments" (SPEC §5.5, §11).

    A draft records nothing: `preview` holds who would be paid what, and confirming it
    records the payments (`commissions.payouts`). `left_out` lists the partners owed
    something whom the batch does not pay, with the reason.
    """

    status = models.CharField(
        max_length=10, choices=PayoutBatchStatus.choices, default=PayoutBatchStatus.CONFIRMED
    )
    start = models.DateField()
    end = models.DateField()
    method = models.CharField(max_length=20, choices=PayoutMethod.choices)
    minimum = money_field(default=0)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, blank=True, default="")
    total = money_field(default=0)
    preview = models.JSONField(
        default=list,
        blank=True,
        help_text="A draft's payments: [{partner_id, partner, currency, amount}].",
    )
    left_out = models.JSONField(
        default=list,
        blank=True,
        help_text="Partners with unpaid entries the batch does not pay: "
        "[{partner_id, partner, currency, amount, reason}].",
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "payout batches"

    def __str__(self) -> str:
        return f"Payout batch {self.pk} ({self.start} to {self.end})"

    @property
    def is_draft(self) -> bool:
        return self.status == PayoutBatchStatus.DRAFT


class PaymentStatus(models.TextChoices):
    RECORDED = "recorded", "Recorded (not marked yet)"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed (amount back on the balance)"
    # The row that puts a failed payment's amount back: a negative payment.
    RETURNED = "returned", "Returned to the balance"


class Payment(models.Model):
    """What one partner is paid in one batch; the ledger entries it pays point at it.

    A payment marked failed unties its entries (they are owed again) and gets a second row,
    `returned`, of the opposite amount at the time of the failure, so every sum of payments
    stays "all entries less the unpaid ones" and past periods keep their figures.
    """

    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, related_name="payments")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="payments")
    amount = money_field()
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.RECORDED
    )
    payout_method = models.CharField(
        max_length=10,
        blank=True,
        default="",
        help_text="How the partner was to be paid when it was recorded (paypal, bank); "
        "empty: no payout details.",
    )
    reference = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="The bank's or PayPal's reference (paid), or why it failed (failed).",
    )
    marked_at = models.DateTimeField(null=True, blank=True)
    marked_by = models.CharField(max_length=150, blank=True, default="")
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="returned_by",
        help_text="A returned row: the failed payment whose amount it puts back.",
    )

    class Meta:
        ordering = ["batch_id", "partner_id"]
        indexes = [
            models.Index(fields=["partner", "paid_at"], name="payment_partner_at_idx"),
            # Covering: the ledger report's grand totals sum the payments since a date.
            models.Index(
                fields=["paid_at"],
                include=["partner", "amount", "currency"],
                name="payment_paid_at_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0, reverses__isnull=True)
                | models.Q(amount__lt=0, reverses__isnull=False),
                name="payment_positive_or_returned",
            ),
            models.UniqueConstraint(
                fields=["batch", "partner", "currency"],
                condition=models.Q(reverses__isnull=True),
                name="one_payment_per_partner_batch",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} to {self.partner_id}"


# --- Payout details (SPEC §11) ---------------------------------------------------------------


class PayoutDetailsMethod(models.TextChoices):
    PAYPAL = "paypal", "PayPal"
    BANK = "bank", "Bank transfer"


class BankAccountType(models.TextChoices):
    CHECKING = "checking", "Checking"
    SAVINGS = "savings", "Savings"


class PayoutDetails(models.Model):
    """How a partner is paid: a PayPal email or a bank account. Every value that tells
    where money goes is encrypted at rest (commissions.encrypted); staff see them masked
    (commissions.payout_details.masked) except in the payout files. Written only by
    `commissions.payout_details.payout_details_update`."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, related_name="payout_details")
    method = models.CharField(max_length=10, choices=PayoutDetailsMethod.choices)
    paypal_email = SecretCharField(max_length=254, null=True, blank=True)
    holder_name = SecretCharField(max_length=140, null=True, blank=True)
    iban = SecretCharField("IBAN", max_length=34, null=True, blank=True)
    bic = SecretCharField("BIC / SWIFT", max_length=11, null=True, blank=True)
    account_number = SecretCharField(max_length=34, null=True, blank=True)
    routing_number = SecretCharField("ABA routing number", max_length=9, null=True, blank=True)
    account_type = models.CharField(
        max_length=10, choices=BankAccountType.choices, blank=True, default=""
    )
    address_line = SecretCharField("address", max_length=140, null=True, blank=True)
    city = SecretCharField(max_length=80, null=True, blank=True)
    state = models.CharField(max_length=40, blank=True, default="")
    postcode = SecretCharField(max_length=20, null=True, blank=True)
    country = models.CharField(
        max_length=2, blank=True, default="", help_text="The bank's country (ISO 3166 alpha-2)."
    )
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "payout details"

    def __str__(self) -> str:
        return f"{self.get_method_display()} payout details of {self.partner_id}"


class PayoutDetailsChange(models.Model):
    """One change of a partner's payout details: who, when, what kind of change and which
    fields, never the full numbers (a changed payout address is the classic fraud)."""

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="payout_details_changes"
    )
    changed_at = models.DateTimeField()
    changed_by = models.CharField(max_length=150, help_text="The partner, or a staff login.")
    method = models.CharField(max_length=10, choices=PayoutDetailsMethod.choices, blank=True)
    fields = models.JSONField(default=list, help_text="The names of the fields that changed.")
    summary = models.CharField(
        max_length=300, help_text="The new details, masked (e.g. IBAN DE89 **** 3000)."
    )

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"Payout details of {self.partner_id} changed by {self.changed_by}"


# --- Integration kit (SPEC §9): hosted web forms and outgoing webhooks ----------------------

hosted_form_code_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,31}\Z",
    "Use 1 to 32 lower-case letters, digits, hyphens or underscores.",
)
form_field_name_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_.-]{0,49}\Z",
    "A field name has 1 to 50 letters, digits, dots, hyphens or underscores.",
)


class HostedForm(models.Model):
    """A web form defined by staff; the merchant's pages post to `/f/<code>/` (SPEC §9).

    A post records a web-form event as the API does, then sends the visitor on to the
    thank-you URL. Field rules across fields (reserved names, the thank-you URL's host) are
    checked by `commissions.hosted_forms.hosted_form_save`.
    """

    code = models.CharField(
        max_length=32,
        unique=True,
        validators=[hosted_form_code_validator],
        help_text="In the form's address, /f/<code>/, and recorded as the web form's name.",
    )
    name = models.CharField(max_length=100)
    keep_fields = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Other posted fields kept with the event, comma-separated (e.g. "
        "phone, company). email, first_name and last_name are always read; anything "
        "else posted is dropped.",
    )
    thank_you_url = models.URLField(
        max_length=500,
        blank=True,
        default="",
        validators=[http_url_validator],
        help_text="Where the visitor goes after posting. Its host must be one of "
        "ALLOWED_REDIRECT_HOSTS or the site's own. Empty: a thank-you page of this site.",
    )
    honeypot_field = models.CharField(
        max_length=50,
        default="website",
        validators=[form_field_name_validator],
        help_text="A field hidden from people on the merchant's form; a post that fills it "
        "is taken for spam and recorded nowhere.",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive forms answer 404.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} (/f/{self.code}/)"

    @property
    def kept_field_names(self) -> list[str]:
        return [name.strip() for name in self.keep_fields.split(",") if name.strip()]


class FormPostCount(models.Model):
    """Posts to hosted forms from one IP address in one minute: the rate limit's counter,
    in the database so every web process sees the same count."""

    ip = models.CharField(max_length=45)
    started_at = models.DateTimeField(help_text="The start of the minute counted.")
    posts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ip", "started_at"], name="form_post_count_once"),
        ]
        indexes = [models.Index(fields=["started_at"], name="form_post_count_at_idx")]

    def __str__(self) -> str:
        return f"{self.posts} posts from {self.ip} at {self.started_at}"


class WebhookEventType(models.TextChoices):
    COMMISSION_CREATED = "commission.created", "Commission created"
    COMMISSION_CLAWED_BACK = "commission.clawed_back", "Commission clawed back"
    PAYOUT_MADE = "payout.made", "Payout made"
    # Sent only from Settings > Webhooks ("Send a test event"); no endpoint subscribes to it.
    TEST = "webhook.test", "Test event"


class WebhookEndpoint(models.Model):
    """A URL of the merchant's that receives signed JSON about the ledger (SPEC §9).

    The secret is stored as given, not hashed: the app needs it to sign every delivery.
    """

    url = models.URLField(max_length=500, validators=[http_url_validator])
    description = models.CharField(max_length=100, blank=True, default="")
    secret = models.CharField(
        max_length=100,
        help_text="Shared with the receiver, which checks the HMAC-SHA256 signature with it.",
    )
    events = models.JSONField(default=list, help_text="The event types sent to this URL.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"
    CANCELLED = "cancelled", "Cancelled (endpoint turned off)"


class WebhookDelivery(models.Model):
    """One event for one endpoint, and the log of every attempt to deliver it."""

    uid = models.UUIDField(
        unique=True, help_text="The event's id for the receiver: the same on every retry."
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    event_type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    subject_id = models.BigIntegerField(
        help_text="The order (commission created), refund (clawed back) or payout batch."
    )
    body = models.TextField(
        blank=True, default="", help_text="The JSON sent, made at the first attempt."
    )
    status = models.CharField(
        max_length=10,
        choices=WebhookDeliveryStatus.choices,
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    log = models.JSONField(
        default=list, blank=True, help_text="Every attempt: when, HTTP status or error, time."
    )
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="An attempt in progress holds the delivery until then."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "created_at"], name="webhook_delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id}: {self.status}"


# --- Partner Center content (SPEC §12): the welcome message and the resources --------------


class PartnerCenterSettings(models.Model):
    """The one row of what staff write for the Partner Center (pk 1): the welcome message
    on its home page, in Markdown (rendered with raw HTML off: `commissions.creatives`)."""

    welcome_message = models.TextField(blank=True, default="", max_length=10_000)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        verbose_name = "Partner Center settings"
        verbose_name_plural = "Partner Center settings"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="partnercentersettings_one_row")
        ]

    def __str__(self) -> str:
        return "Partner Center settings"


class ResourceKind(models.TextChoices):
    BANNER = "banner", "Banner"
    EMAIL = "email", "Email copy"
    SOCIAL = "social", "Social post"


class Resource(models.Model):
    """A creative staff give every partner (SPEC §12): a banner image, or a text (email copy,
    a social post) with `{link}` where the partner's own link goes.

    A banner's file is checked by `commissions.creatives.banner_image_check` (Pillow: PNG,
    JPEG, GIF or WebP within the size and dimension limits) and stored under a random name;
    `image_type` is the content type it is served with.
    """

    kind = models.CharField(max_length=8, choices=ResourceKind.choices)
    title = models.CharField(max_length=120)
    text = models.TextField(
        blank=True,
        default="",
        max_length=5000,
        help_text="Email copy or a social post; {link} is replaced by each partner's link.",
    )
    image = models.FileField(upload_to="banners/", blank=True, default="", max_length=200)
    image_type = models.CharField(max_length=20, blank=True, default="")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    alt_text = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="What the banner says, for screen readers.",
    )
    position = models.PositiveIntegerField(default=0, help_text="Lower numbers come first.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title


# --- What-if replay (SPEC §13): a preview's run, for the page that polls it -----------------


class SimulationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SimulationKind(models.TextChoices):
    DEFAULTS = "defaults", "Referral Partner Defaults"
    PROGRAM = "program", "Program"


class SimulationRun(models.Model):
    """One *Preview the effect* of the defaults or program page: the form's unsaved values
    as posted (`form_data`, validated again by the task), the range, how far the replay has
    come (`done` of `total` events), and its answer (`commissions.replay.simulation_run`'s)
    or why it failed (`error`: field → messages). Kept in a table, not in a process, so the
    worker that runs it and whichever web process the page polls see the same run (SPEC §8).
    Runs older than a day are deleted when a new one is made."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=SimulationKind.choices)
    program = models.ForeignKey(
        "partners.Program", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    form_data = models.JSONField(default=dict)
    status = models.CharField(
        max_length=8, choices=SimulationStatus.choices, default=SimulationStatus.QUEUED
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    answer = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="simulationrun_created_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} preview {self.id}"

    @property
    def finished(self) -> bool:
        return self.status in (SimulationStatus.DONE, SimulationStatus.FAILED)

    @property
    def last_day(self) -> datetime.date:
        """The range's last whole UTC day (`end` is the start of the day after it)."""
        return (self.end - datetime.timedelta(days=1)).date()
