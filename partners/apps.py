from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


def ensure_referral_defaults(sender, using="default", **kwargs) -> None:
    """The defaults singleton always exists: made by the first migration, and again after
    anything that empties the tables and re-emits post_migrate (`flush`, test teardown)."""
    # Here, not at the top: apps.py is imported before the app registry is ready, when no
    # model may be imported yet (no import cycle is involved).
    from .models import ReferralDefaults

    ReferralDefaults.objects.using(using).get_or_create(pk=ReferralDefaults.SINGLETON_PK)


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Referral partners"

    def ready(self) -> None:
        # Imported once the registry is ready (they read models and settings); no cycle.
        from referral_program import schema_extensions  # noqa: F401 (registers them)
        from referral_program.mail import console_mailer_in_production

        post_migrate.connect(ensure_referral_defaults, sender=self)
        checks.register(console_mailer_in_production, checks.Tags.security, deploy=True)
