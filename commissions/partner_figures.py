"""The staff partner list's and partner page's figures (issue 20), named by
settings.PARTNER_FIGURES so that the partners app, which never imports commissions, can show
them.

All time, in the program currency: clicks on the partner's links, orders they were credited
the sale of, commissions earned (before clawbacks, as in the activity report), and the
balance owed to them now (their unpaid entries: see `commissions.dashboard.owed_now`). One
correlated subquery per figure, each on an index by partner, so a page of partners is one
statement whatever the data.
"""

from django.conf import settings
from django.db.models import QuerySet

from partners.models import Click, Partner

from .filters import count_per_row, total_per_row
from .models import EARNED_ENTRIES, Commission, Order

# The annotations, as the partners app sorts and shows them.
FIGURES = ("click_count", "order_count", "earned_total", "balance")


def partners_with_figures(partners: QuerySet[Partner]) -> QuerySet[Partner]:
    entries = Commission.objects.ledger().filter(currency=settings.DEFAULT_CURRENCY)
    return partners.annotate(
        click_count=count_per_row(Click.objects.all(), "partner"),
        order_count=count_per_row(Order.objects.all(), "sale_partner"),
        earned_total=total_per_row(entries.filter(entry__in=EARNED_ENTRIES), "partner", "amount"),
        balance=total_per_row(entries.filter(payment__isnull=True), "partner", "amount"),
    )
