"""Contacts and their referral history (SPEC §4)."""

from django.db import models

from partners.models import Partner


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ReferralSource(models.TextChoices):
    COOKIE = "cookie", "Cookie"
    IP = "ip", "IP address"
    MANUAL = "manual", "Manual"


class Referral(models.Model):
    """One entry of a contact's referral history: a partner known to have referred them."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="referrals")
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
