"""`python manage.py seed_demo`: a believable demo program to click around in.

Three programs, twenty partners in a three-level tree, four tracking links, a staff
login and a partner login. Safe to run again: what exists already (programs by name,
partners by code, links by code, users by username) is left as it is, so a second run
creates nothing and changes nothing. Every write goes through `partners.services`
(users through Django's create_user / create_superuser).
"""

import io
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from partners.models import DefaultsChange, Partner, PartnerStatus, Program, TrackingLink
from partners.services.defaults import defaults_update
from partners.services.links import tracking_link_save
from partners.services.partners import partner_create, partner_set_user
from partners.services.programs import program_create

STAFF_USERNAME = "staff"
STAFF_PASSWORD = "staff-demo-pass"
PARTNER_LOGIN_CODE = "maria-lopez"
PARTNER_PASSWORD = "partner-demo-pass"

# Set on a fresh installation only (defaults never saved), so the demo shows every kind
# of commission: leads and sales, amounts and percentages, three levels, pay if unused.
DEMO_DEFAULTS = {
    "levels": 3,
    "payout_on_lead": True,
    "payout_on_sale": True,
    "payout_amount": True,
    "payout_percent": True,
    "pay_if_unused": True,
}


def D(value: str) -> Decimal:
    return Decimal(value)


# name -> program data and rates per level (level, lead_amount, lead_percent,
# sale_amount, sale_percent)
PROGRAMS = {
    "Standard": {
        "data": {
            "priority": 10,
            "notes": "Every partner without a program is paid on this one.",
            "unused_lead_amount": D("6.00"),
            "unused_sale_percent": D("12.5"),
        },
        "rates": [
            (1, D("5.00"), D("0"), D("0.00"), D("10")),
            (2, D("2.00"), D("0"), D("0.00"), D("5")),
            (3, D("1.00"), D("0"), D("0.00"), D("2")),
        ],
    },
    "Gold": {
        "data": {
            "priority": 20,
            "notes": "Top sellers: a bonus per sale on top of a higher percentage.",
            "unused_lead_amount": D("12.00"),
            "unused_sale_amount": D("10.00"),
            "unused_sale_percent": D("20"),
        },
        "rates": [
            (1, D("10.00"), D("0"), D("10.00"), D("15")),
            (2, D("4.00"), D("0"), D("0.00"), D("7.5")),
            (3, D("2.00"), D("0"), D("0.00"), D("2.5")),
        ],
    },
    "Influencer": {
        "data": {
            "priority": 30,
            "notes": "Social media partners: a flat fee per sale and a small percentage.",
            "unused_sale_amount": D("30.00"),
            "unused_sale_percent": D("5"),
        },
        "rates": [
            (1, D("3.00"), D("0"), D("25.00"), D("5")),
            (2, D("1.00"), D("0"), D("5.00"), D("0")),
            (3, D("0.00"), D("0"), D("0.00"), D("0")),
        ],
    },
}

# code, name, parent code, program name (None: the default program), status, cookie_days.
# Parents come before their children.
PARTNERS = [
    ("maria-lopez", "Maria Lopez", None, "Gold", "active", None),
    ("james-carter", "James Carter", None, "Standard", "active", 30),
    ("priya-natarajan", "Priya Natarajan", None, "Influencer", "active", 30),
    ("northwind", "Northwind Outfitters", None, None, "active", 60),
    ("daniel-kim", "Daniel Kim", "maria-lopez", "Gold", "active", None),
    ("sofia-rossi", "Sofia Rossi", "maria-lopez", None, "active", None),
    ("ahmed-hassan", "Ahmed Hassan", "maria-lopez", None, "inactive", None),
    ("emily-chen", "Emily Chen", "james-carter", "Standard", "active", 45),
    ("lucas-martin", "Lucas Martin", "james-carter", None, "active", None),
    ("chloe-dubois", "Chloe Dubois", "priya-natarajan", "Influencer", "active", 14),
    ("noah-williams", "Noah Williams", "priya-natarajan", "Influencer", "active", None),
    ("grace-okafor", "Grace Okafor", "northwind", None, "active", None),
    ("olivia-brown", "Olivia Brown", "daniel-kim", None, "active", None),
    ("ethan-davis", "Ethan Davis", "daniel-kim", "Gold", "active", 30),
    ("hannah-schmidt", "Hannah Schmidt", "sofia-rossi", None, "inactive", None),
    ("mateo-garcia", "Mateo Garcia", "emily-chen", None, "active", 60),
    ("ava-johnson", "Ava Johnson", "chloe-dubois", "Influencer", "active", 7),
    ("liam-nguyen", "Liam Nguyen", "lucas-martin", None, "active", None),
    ("zoe-taylor", "Zoe Taylor", "lucas-martin", None, "inactive", None),
    ("ben-mueller", "Ben Müller", "grace-okafor", None, "active", None),
]

# code, name, destination, is_default
TRACKING_LINKS = [
    ("shop", "Shop home page", "https://shop.example.com/", True),
    ("haircare", "Hair care", "https://shop.example.com/hair", False),
    ("summer-sale", "Summer sale", "https://shop.example.com/sale", False),
    ("gift-cards", "Gift cards", "https://shop.example.com/gift-cards", False),
]


def _email(name: str) -> str:
    return name.lower().replace("ü", "ue").replace(" ", ".") + "@example.com"


class Command(BaseCommand):
    help = "Fill the database with a demo program, partners, links and logins (safe to re-run)."

    @transaction.atomic
    def handle(self, *args, **options):
        self.created: dict[str, int] = {}
        self.defaults_set = False
        self.login_linked = False
        self.seed_defaults()
        programs = self.seed_programs()
        partners = self.seed_partners(programs)
        self.seed_tracking_links()
        self.seed_users(partners[PARTNER_LOGIN_CODE])
        # Their payout details live with the payouts (commissions), which this app does not
        # import: by the command's name.
        call_command("seed_payout_details", stdout=io.StringIO())
        self.report()

    def count(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1

    def seed_defaults(self) -> None:
        if DefaultsChange.objects.exists():
            return  # someone chose the defaults already: leave them
        result = defaults_update(data=DEMO_DEFAULTS, acting_user=None, actor="seed_demo")
        self.defaults_set = result.changed

    def seed_programs(self) -> dict[str, Program]:
        programs = {}
        for name, spec in PROGRAMS.items():
            program = Program.objects.filter(name=name).order_by("id").first()
            if program is None:
                rates = [
                    {
                        "level": level,
                        "lead_amount": lead_amount,
                        "lead_percent": lead_percent,
                        "sale_amount": sale_amount,
                        "sale_percent": sale_percent,
                    }
                    for level, lead_amount, lead_percent, sale_amount, sale_percent in spec["rates"]
                ]
                program = program_create(
                    data={"name": name, **spec["data"]}, rates=rates, actor="seed_demo"
                )
                self.count("programs")
            programs[name] = program
        return programs

    def seed_partners(self, programs: dict[str, Program]) -> dict[str, Partner]:
        partners: dict[str, Partner] = {}
        for code, name, parent_code, program_name, status, cookie_days in PARTNERS:
            partner = Partner.objects.by_code(code).first()
            if partner is None:
                partner = partner_create(
                    data={
                        "code": code,
                        "name": name,
                        "email": _email(name),
                        "parent": partners[parent_code] if parent_code else None,
                        "program": programs[program_name] if program_name else None,
                        "status": PartnerStatus(status),
                        "cookie_days": cookie_days,
                    }
                )
                self.count("partners")
            partners[code] = partner
        return partners

    def seed_tracking_links(self) -> None:
        for code, name, destination, is_default in TRACKING_LINKS:
            if TrackingLink.objects.filter(code=code).exists():
                continue
            if is_default and TrackingLink.objects.filter(is_default=True).exists():
                is_default = False  # keep the default destination someone chose
            tracking_link_save(
                link=TrackingLink(
                    code=code, name=name, destination=destination, is_default=is_default
                )
            )
            self.count("tracking links")

    def seed_users(self, partner: Partner) -> None:
        users = get_user_model().objects
        if not users.filter(username=STAFF_USERNAME).exists():
            users.create_superuser(STAFF_USERNAME, "staff@example.com", STAFF_PASSWORD)
            self.count("users")
        if partner.user_id is None:
            user = users.filter(username=partner.code).first()
            if user is None:
                user = users.create_user(partner.code, partner.email, PARTNER_PASSWORD)
                self.count("users")
            partner_set_user(partner=partner, user=user)
            self.login_linked = True

    def report(self) -> None:
        if self.created:
            made = ", ".join(f"{count} {kind}" for kind, count in self.created.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data created: {made}."))
        if self.login_linked:
            self.stdout.write(f"The login {PARTNER_LOGIN_CODE} is linked to its partner.")
        if not (self.created or self.login_linked or self.defaults_set):
            self.stdout.write("Demo data already there: nothing created or changed.")
        if self.defaults_set:
            self.stdout.write(
                "Referral Partner Defaults set for the demo: 3 levels, pay on leads and "
                "sales, amount and percent, pay if unused."
            )
        self.stdout.write(
            f"Now: {Program.objects.count()} programs, {Partner.objects.count()} partners, "
            f"{TrackingLink.objects.count()} tracking links."
        )
        self.stdout.write("")
        self.stdout.write(f"Open {settings.SITE_URL}/")
        self.stdout.write(f"Staff login: {STAFF_USERNAME} / {STAFF_PASSWORD}")
        self.stdout.write(
            f"Partner login (Partner Center at {settings.SITE_URL}/partner/login/): "
            f"{PARTNER_LOGIN_CODE} / {PARTNER_PASSWORD}"
        )
