"""`manage.py seed_demo`: a believable demo, safe to run twice."""

from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command

from partners.models import (
    DefaultsChange,
    Partner,
    Program,
    ProgramRate,
    ReferralDefaults,
    TrackingLink,
)
from partners.selectors import defaults_get
from partners.services.defaults import defaults_update
from tests.factories import TrackingLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords_and_site(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SITE_URL = "http://127.0.0.1:8000"


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def every_table() -> dict[str, list[dict]]:
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
    }


def test_second_run_creates_nothing_and_changes_nothing():
    seed()
    first = every_table()

    output = seed()

    second = every_table()
    assert {label: len(rows) for label, rows in second.items()} == {
        label: len(rows) for label, rows in first.items()
    }
    assert second == first
    assert "Demo data already there: nothing created or changed." in output


def test_first_run_counts_and_logins_it_prints():
    output = seed()

    assert output.splitlines()[0] == (
        "Demo data created: 3 programs, 20 partners, 4 tracking links, 2 users."
    )
    assert output.splitlines()[-3:] == [
        "Open http://127.0.0.1:8000/",
        "Staff login: staff / staff-demo-pass",
        "Partner login (Partner Center at http://127.0.0.1:8000/partner/login/): "
        "maria-lopez / partner-demo-pass",
    ]


def test_the_partner_tree_has_three_levels():
    seed()

    depths = {p.code: len(Partner.objects.ancestor_ids(p.pk)) + 1 for p in Partner.objects.all()}

    assert len(depths) == 20
    assert max(depths.values()) == 3
    assert sorted(code for code, depth in depths.items() if depth == 1) == [
        "james-carter",
        "maria-lopez",
        "northwind",
        "priya-natarajan",
    ]
    assert depths["olivia-brown"] == 3
    assert Partner.objects.get(code="olivia-brown").parent.parent.code == "maria-lopez"


def test_partners_look_real():
    seed()

    partners = Partner.objects.all()
    assert all(p.email.endswith("@example.com") for p in partners)
    assert Partner.objects.get(code="ben-mueller").email == "ben.mueller@example.com"
    assert sorted(partners.filter(status="inactive").values_list("code", flat=True)) == [
        "ahmed-hassan",
        "hannah-schmidt",
        "zoe-taylor",
    ]
    assert dict(partners.exclude(cookie_days=None).values_list("code", "cookie_days")) == {
        "james-carter": 30,
        "priya-natarajan": 30,
        "northwind": 60,
        "emily-chen": 45,
        "chloe-dubois": 14,
        "ethan-davis": 30,
        "mateo-garcia": 60,
        "ava-johnson": 7,
    }
    assert partners.filter(program=None).count() == 11


def test_programs_have_decimal_rates_per_level_and_unused_rates():
    seed()

    assert list(Program.objects.values_list("name", "priority")) == [
        ("Standard", 10),
        ("Gold", 20),
        ("Influencer", 30),
    ]
    gold = Program.objects.get(name="Gold")
    assert list(gold.rates.values_list("level", "lead_amount", "sale_amount", "sale_percent")) == [
        (1, Decimal("10.00"), Decimal("10.00"), Decimal("15.0000")),
        (2, Decimal("4.00"), Decimal("0.00"), Decimal("7.5000")),
        (3, Decimal("2.00"), Decimal("0.00"), Decimal("2.5000")),
    ]
    assert (gold.unused_sale_amount, gold.unused_sale_percent) == (
        Decimal("10.00"),
        Decimal("20.0000"),
    )
    assert ProgramRate.objects.count() == 9


def test_fresh_defaults_are_set_for_the_demo_and_programs_follow_them():
    seed()

    defaults = defaults_get()
    assert defaults.structure() == {
        "levels": 3,
        "payout_on_lead": True,
        "payout_on_sale": True,
        "payout_amount": True,
        "payout_percent": True,
        "pay_if_unused": True,
    }
    assert DefaultsChange.objects.get().actor == "seed_demo"
    assert {tuple(p.structure().items()) for p in Program.objects.all()} == {
        tuple(defaults.structure().items())
    }


def test_defaults_someone_chose_are_left_alone():
    defaults_update(data={"levels": 1}, acting_user=None, actor="merchant")
    before = list(ReferralDefaults.objects.values())

    seed()

    assert list(ReferralDefaults.objects.values()) == before
    assert list(DefaultsChange.objects.values_list("actor", flat=True)) == ["merchant"]
    assert set(Program.objects.values_list("levels", flat=True)) == {1}


def test_tracking_links_with_one_default():
    seed()

    assert list(TrackingLink.objects.values_list("code", "destination", "is_default")) == [
        ("shop", "https://shop.example.com/", True),
        ("gift-cards", "https://shop.example.com/gift-cards", False),
        ("haircare", "https://shop.example.com/hair", False),
        ("summer-sale", "https://shop.example.com/sale", False),
    ]


def test_an_existing_default_link_stays_the_default():
    TrackingLinkFactory(code="mine", is_default=True)

    seed()

    assert list(TrackingLink.objects.filter(is_default=True).values_list("code", flat=True)) == [
        "mine"
    ]


def test_staff_and_partner_logins_work():
    seed()

    users = get_user_model().objects
    staff = users.get(username="staff")
    assert staff.is_staff and staff.is_superuser
    assert staff.check_password("staff-demo-pass")
    partner = Partner.objects.get(code="maria-lopez")
    assert partner.user.username == "maria-lopez"
    assert partner.user.email == "maria.lopez@example.com"
    assert not partner.user.is_staff
    assert partner.user.check_password("partner-demo-pass")
    assert users.count() == 2


def test_demo_partners_get_payout_details_and_two_have_none():
    from commissions.models import Notification, PayoutDetails

    seed()

    methods = dict(PayoutDetails.objects.values_list("partner__code", "method"))
    assert len(methods) == 18
    assert not {"liam-nguyen", "ben-mueller"} & set(methods)
    assert (methods["maria-lopez"], methods["james-carter"], methods["sofia-rossi"]) == (
        "bank",
        "bank",
        "paypal",
    )
    assert PayoutDetails.objects.get(partner__code="james-carter").routing_number == "021000021"
    assert not Notification.objects.exists()  # seeding tells nobody
