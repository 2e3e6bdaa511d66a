"""Demo payout details for the demo partners (run by `seed_demo`; safe to run again).

Most pay by PayPal to their own email; a few by bank (a German and a British IBAN, a US
account with its routing number and address); two have none, so a payout preview shows
who is left out and why. Written as the Partner Center's service checks them, and logged
as changed by "seed_demo", without an email: nobody changed anything.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from commissions.models import PayoutDetails, PayoutDetailsChange
from commissions.payout_details import FIELDS, masked, payout_details_clean
from partners.models import Partner

BANK = {
    "maria-lopez": {
        "method": "bank",
        "holder_name": "Maria Lopez",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
    },
    "northwind": {
        "method": "bank",
        "holder_name": "Northwind Outfitters Ltd",
        "iban": "GB33BUKB20201555555555",
    },
    "james-carter": {
        "method": "bank",
        "holder_name": "James Carter",
        "account_number": "000123456789",
        "routing_number": "021000021",
        "account_type": "checking",
        "address_line": "500 Market Street",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94105",
        "country": "US",
    },
}
WITHOUT = {"liam-nguyen", "ben-mueller"}


class Command(BaseCommand):
    help = "Give the demo partners payout details (those without any; safe to re-run)."

    @transaction.atomic
    def handle(self, *args, **options):
        made = 0
        at = timezone.now()
        partners = Partner.objects.filter(payout_details__isnull=True).exclude(code__in=WITHOUT)
        for partner in partners.order_by("pk"):
            data = BANK.get(partner.code, {"method": "paypal", "paypal_email": partner.email})
            cleaned = payout_details_clean(data)
            details = PayoutDetails.objects.create(partner=partner, updated_at=at, **cleaned)
            PayoutDetailsChange.objects.create(
                partner=partner,
                changed_at=at,
                changed_by="seed_demo",
                method=details.method,
                fields=[name for name in FIELDS if cleaned[name]],
                summary=masked(details).summary,
            )
            made += 1
        self.stdout.write(f"Payout details given to {made} partners.")
