"""factory_boy factories shared by the whole suite."""

from datetime import UTC, datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from partners.models import (
    LEVELS,
    Click,
    ClickFlag,
    Enrollment,
    Partner,
    PartnerSignup,
    PartnerStatus,
    Program,
    ProgramRate,
    TrackingLink,
)
from partners.services.versions import program_version_record
from partners.tokens import new_click_id


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class StaffFactory(UserFactory):
    """Staff with every right (a superuser); use UserFactory(is_staff=True) for less."""

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Program {n}")
    priority = factory.Sequence(lambda n: 100 + n)

    @factory.post_generation
    def rates(program, create, extracted, **kwargs):
        """`rates={1: {"sale_percent": Decimal("20")}, ...}`; every level gets a row."""
        if not create:
            return
        given = extracted or {}
        ProgramRate.objects.bulk_create(
            ProgramRate(program=program, level=level, **given.get(level, {})) for level in LEVELS
        )
        program_version_record(program=program, actor="factory")  # version 1, as the services


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"partner{n:03d}")
    name = factory.Sequence(lambda n: f"Partner {n}")
    email = factory.LazyAttribute(lambda p: f"{p.code}@partners.example")

    @factory.post_generation
    def enrolled(partner, create, extracted, **kwargs):
        """A partner made with a `program` is enrolled in it, as the services do (SPEC §10)."""
        if create and partner.program_id is not None:
            Enrollment.objects.get_or_create(partner=partner, program_id=partner.program_id)


class PartnerSignupFactory(factory.django.DjangoModelFactory):
    """A partner who signed up: pending, with a login; `confirmed=False` for an email not
    confirmed yet."""

    class Meta:
        model = PartnerSignup
        exclude = ("confirmed",)

    confirmed = True
    partner = factory.SubFactory(
        PartnerFactory,
        status=PartnerStatus.PENDING,
        user=factory.SubFactory(UserFactory, username=factory.SelfAttribute("..code")),
    )
    created_at = factory.LazyFunction(timezone.now)
    email_confirmed_at = factory.LazyAttribute(lambda s: s.created_at if s.confirmed else None)


class TrackingLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrackingLink

    code = factory.Sequence(lambda n: f"link{n}")
    name = factory.Sequence(lambda n: f"Link {n}")
    destination = factory.Sequence(lambda n: f"https://shop.example/page-{n}")


class ClickFactory(factory.django.DjangoModelFactory):
    """A click as the tracker stores it; give `at` (default: now)."""

    class Meta:
        model = Click

    id = factory.LazyAttribute(lambda c: new_click_id(c.at))
    partner = factory.SubFactory(PartnerFactory)
    at = factory.LazyFunction(timezone.now)
    ip = factory.Sequence(lambda n: f"198.51.100.{n % 250}")
    user_agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/150.0"


class ClickFlagFactory(factory.django.DjangoModelFactory):
    """An open click-volume flag: 1,500 clicks in one hour over a limit of 1,000."""

    class Meta:
        model = ClickFlag

    partner = factory.SubFactory(PartnerFactory)
    window_start = factory.Sequence(
        lambda n: datetime(2026, 11, 20, tzinfo=UTC) + timedelta(hours=n)
    )
    clicks = 1500
    threshold = 1000
    created_at = factory.LazyAttribute(lambda f: f.window_start + timedelta(hours=1, minutes=1))


def give_payout_details(partner: Partner, **data) -> None:
    """Payout details for a partner through the one service (PayPal to their own email
    unless `data` says otherwise), as if they had entered them in the Partner Center."""
    from commissions.payout_details import payout_details_update

    values = {"method": "paypal", "paypal_email": partner.email, **data}
    payout_details_update(partner=partner, data=values, changed_by=partner.code, at=timezone.now())
