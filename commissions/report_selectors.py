"""Reads of the records staff and the API list: orders, commission lines, contacts,
notifications, referral history, payments and payout batches (commissions/selectors.py holds
the intake's reads)."""

from datetime import datetime

from django.db.models import Case, Count, F, Prefetch, Q, QuerySet, When
from django.db.models.functions import TruncDate

from partners.models import Partner

from .aggregates import money_sum
from .filters import contact_since, count_per_row
from .models import (
    Commission,
    CommissionEntry,
    Contact,
    Lead,
    Notification,
    Order,
    Payment,
    PayoutBatch,
    Referral,
)


def orders_list() -> QuerySet[Order]:
    """The orders with their contact and partners, newest first (the staff list)."""
    return Order.objects.select_related("contact", "lead_partner", "sale_partner").order_by(
        "-occurred_at", "-id"
    )


def order_page_queryset() -> QuerySet[Order]:
    """The orders with what the order page shows loaded (pick one with get_object_or_404)."""
    return Order.objects.select_related("contact", "lead_partner", "sale_partner", "event")


def commission_lines_list() -> QuerySet[Commission]:
    """The commission lines (no clawbacks) with their partner and order's partners, newest
    first (the staff list)."""
    return (
        Commission.objects.filter(entry=CommissionEntry.COMMISSION)
        .select_related("partner", "order__sale_partner", "order__lead_partner")
        .order_by("-occurred_at", "-id")
    )


def commissions_by_id() -> QuerySet[Commission]:
    """Every commission line with its partner and order, by id (the API)."""
    return Commission.objects.select_related("partner", "order").order_by("id")


def contacts_list() -> QuerySet[Contact]:
    """The contacts with their lead partner, order and lead counts and first date, by email
    (the staff list)."""
    return (
        Contact.objects.select_related("lead_partner")
        .annotate(
            order_count=count_per_row(Order.objects.all(), "contact"),
            lead_count=count_per_row(Lead.objects.all(), "contact"),
            since=contact_since(),
        )
        .order_by("email")
    )


def contact_page_queryset() -> QuerySet[Contact]:
    """The contacts with their lead partner and first date (pick one with
    get_object_or_404)."""
    return Contact.objects.select_related("lead_partner").annotate(since=contact_since())


def partner_notifications(partner: Partner) -> QuerySet[Notification]:
    """The emails the partner was sent (or not), newest first, with what they tell of."""
    return (
        Notification.objects.filter(partner=partner)
        .select_related("event__lead__contact", "payment", "details_change")
        .order_by("-created_at", "-id")
    )


def notifications_list() -> QuerySet[Notification]:
    """The log of partner emails with their partner and event, newest first (the API)."""
    return Notification.objects.select_related("partner", "event").order_by("-id")


def referrals_list() -> QuerySet[Referral]:
    """The referral history with its contact and partner, by id (the API)."""
    return Referral.objects.select_related("contact", "partner").order_by("id")


def report_partners() -> QuerySet[Partner]:
    """The partners with their parent and program, by code (the partner reports)."""
    return Partner.objects.select_related("parent", "program").order_by("code")


def partners_plain() -> QuerySet[Partner]:
    """Every partner, nothing loaded (the activity CSV; its filter adds the figures)."""
    return Partner.objects.all()


def report_payments() -> QuerySet[Payment]:
    """The payments with their batch and partner, newest first (the payments report)."""
    return Payment.objects.select_related("batch", "partner").order_by("-paid_at", "-id")


def batch_has_payment(*, batch_id: int, payment_id: int, reversals: bool = True) -> bool:
    """Whether the batch holds that payment (with `reversals=False`: and it reverses none)."""
    payments = Payment.objects.filter(pk=payment_id, batch_id=batch_id)
    return (payments if reversals else payments.filter(reverses__isnull=True)).exists()


def payout_batches_list() -> QuerySet[PayoutBatch]:
    """The payout batches with their `payment_count` (reversals not counted), newest first."""
    return PayoutBatch.objects.annotate(
        payment_count=Count("payments", filter=Q(payments__reverses__isnull=True))
    ).order_by("-created_at", "-id")


def payout_batches_with_payments() -> QuerySet[PayoutBatch]:
    """The payout batches with their payments and those payments' partners, newest first
    (the API)."""
    return PayoutBatch.objects.prefetch_related(
        Prefetch("payments", queryset=Payment.objects.select_related("partner"))
    ).order_by("-id")


def pending_schedule(partner: Partner, *, currency: str, at: datetime) -> list[dict]:
    """When each pending amount becomes payable: the unpaid entries still in their hold
    period summed per day they become payable (SPEC §11), soonest first."""
    rows = (
        Commission.objects.filter(
            partner=partner, currency=currency, payment__isnull=True, payable_at__gt=at
        )
        .annotate(day=TruncDate("payable_at"))
        .values("day")
        .annotate(total=money_sum("amount"))
        .order_by("day")
    )
    return [{"day": row["day"], "amount": row["total"]} for row in rows if row["total"]]


# --- My recruits (SPEC §12) -------------------------------------------------------------------


def recruits_with_earnings(partner: Partner) -> list[dict]:
    """The partners `partner` recruited (their children), each with what `partner` earned
    through them: at level 2 on the orders that credited the recruit, at level 3 on those
    that credited the recruit's own recruits (net of clawbacks and rejections, per
    currency). Two queries, whatever the number of recruits: the recruits, and one sum over
    the partner's level 2 and 3 lines grouped by the recruit they came through.

    The partner an order credited is its lead partner for a lead line and its sale partner
    for a sale line; level 3 goes through that partner's parent as it is now."""
    recruits = list(
        Partner.objects.filter(parent=partner)
        .order_by("name", "id")
        .values("id", "code", "name", "status")
    )
    lead = Q(kind="lead")
    through = Case(
        When(lead & Q(level=2), then=F("order__lead_partner_id")),
        When(Q(level=2), then=F("order__sale_partner_id")),
        When(lead & Q(level=3), then=F("order__lead_partner__parent_id")),
        When(Q(level=3), then=F("order__sale_partner__parent_id")),
    )
    earned: dict[int, dict[tuple[int, str], object]] = {}
    rows = (
        Commission.objects.filter(partner=partner, level__in=(2, 3))
        .order_by()
        .values("level", "currency", through_id=through)
        .annotate(total=money_sum("amount"))
        .values_list("through_id", "level", "currency", "total")
    )
    for through_id, level, currency, total in rows:
        earned.setdefault(through_id, {})[(level, currency)] = total
    for recruit in recruits:
        sums = earned.get(recruit["id"], {})
        for level in (2, 3):
            recruit[f"level_{level}"] = sorted(
                (currency, total) for (lvl, currency), total in sums.items() if lvl == level
            )
    return recruits
