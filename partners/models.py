"""Referral Partner Defaults, partners, programs, tracking links, API keys.

Models hold data and field-level rules only; every write goes through
`partners.services`.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
)
from django.db import models
from django.db.models.functions import Lower

from .choices import PartnerSelection, PartnerStatus, TrackingMethod
from .validators import (
    code_prefix_validator,
    coupon_code_validator,
    http_url_validator,
    partner_code_validator,
    tracking_link_code_validator,
)

ZERO = Decimal("0")
LEVELS = (1, 2, 3)


def money_field(**kwargs) -> models.DecimalField:
    """A non-negative amount in the program currency (2 decimal places)."""
    return models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=ZERO,
        validators=[MinValueValidator(ZERO)],
        **kwargs,
    )


def percent_field(**kwargs) -> models.DecimalField:
    """A percentage from 0 to 100, e.g. 12.5."""
    return models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=ZERO,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))],
        **kwargs,
    )


class SignupParent(models.TextChoices):
    """Who becomes the parent of a partner who signs up (SPEC §9 "Sign-up")."""

    NONE = "none", "Nobody"
    REFERRING = "referring", "The referring partner (from the visitor's tracking cookie)"
    FIXED = "fixed", "One chosen partner"


# The fields every program copies from the defaults (SPEC §2 "Saving").
STRUCTURAL_FIELDS = (
    "levels",
    "payout_on_lead",
    "payout_on_sale",
    "payout_amount",
    "payout_percent",
    "pay_if_unused",
)


class ProgramStructure(models.Model):
    """What the defaults decide for every program: levels and payout types."""

    levels = models.PositiveSmallIntegerField(
        "Referral partner # of levels",
        default=2,
        choices=[(n, str(n)) for n in LEVELS],
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text="How many levels up the partner tree commissions are paid: 1 pays only "
        "the partner credited, 2 also pays the partner who recruited them, 3 one more.",
    )
    payout_on_lead = models.BooleanField(
        "Pay on leads",
        default=False,
        help_text="Programs pay a lead commission, on the sale, to the partner who "
        "referred the buyer as a lead.",
    )
    payout_on_sale = models.BooleanField(
        "Pay on sales",
        default=True,
        help_text="Programs pay a sale commission to the partner credited for the sale.",
    )
    payout_amount = models.BooleanField(
        "Pay a flat amount",
        default=True,
        help_text="Programs pay a fixed amount per lead or sale.",
    )
    payout_percent = models.BooleanField(
        "Pay a percentage",
        default=False,
        help_text="Programs pay a percentage of the sale (items less discount, without "
        "shipping and tax). With both on, the amount and the percentage are added.",
    )
    pay_if_unused = models.BooleanField(
        "Pay if unused",
        default=False,
        help_text="When the credited partner has nobody above them, pay them the "
        "program's 'pay if unused' rate instead of the level 1 rate (2 or 3 levels only).",
    )

    class Meta:
        abstract = True

    def structure(self) -> dict:
        return {name: getattr(self, name) for name in STRUCTURAL_FIELDS}


class ReferralDefaults(ProgramStructure):
    """The one Referral Partner Defaults record (SPEC §2). Its primary key is always 1."""

    SINGLETON_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_PK, editable=False)
    code_prefix = models.CharField(
        "Referral partner code prefix",
        max_length=16,
        blank=True,
        default="",
        validators=[code_prefix_validator],
        help_text="Put in front of the partner code in every link made for partners, "
        "e.g. 'vip-'. Links already handed out keep working when you change it.",
    )
    skip_notifications = models.BooleanField(
        "Skip referral partner notifications",
        default=False,
        help_text="When on, partners get no email when someone they referred buys or fills "
        "out a web form, whatever their own settings say.",
    )
    partner_selection = models.CharField(
        "Partner credited",
        max_length=8,
        choices=PartnerSelection.choices,
        default=PartnerSelection.LAST,
        help_text="When a visitor clicked links of several partners: credit the partner "
        "clicked last, or the one clicked first.",
    )
    tracking_method = models.CharField(
        "Tracking method",
        max_length=24,
        choices=TrackingMethod.choices,
        default=TrackingMethod.COOKIE,
        help_text="Cookie: the visitor's tracking cookie decides. Referral history and "
        "cookies: when there is no cookie, the contact's referral history decides. Cookies "
        "only: nothing but the cookie (or a partner named in the event) counts.",
    )
    use_ip_address = models.BooleanField(
        "Use IP address as a backup",
        default=False,
        help_text="When nothing else finds a partner, credit a partner whose link was "
        "clicked from the same IP address. Has no effect with 'Cookies only'.",
    )
    link_url = models.CharField(
        "Custom referral partner link URL",
        max_length=200,
        blank=True,
        default="",
        validators=[http_url_validator],
        help_text="The start of every partner link, for a custom domain that points at "
        "this site, e.g. https://go.example.com. Leave empty to use this site's address.",
    )
    duplicate_click_minutes = models.PositiveIntegerField(
        "Count repeated clicks once for (minutes)",
        default=30,
        validators=[MaxValueValidator(24 * 60)],
        help_text="Clicks on the same partner from the same IP address and browser within "
        "this many minutes count as one click. 0 counts every click.",
    )
    self_referral_guard = models.BooleanField(
        "No commission on a partner's own purchase",
        default=True,
        help_text="When the buyer's email is the credited partner's own (their partner email "
        "or their login's), that kind of commission (lead or sale) is not paid to the partner "
        "nor up their chain. The order is still recorded and its trace says so.",
    )
    click_flag_per_hour = models.PositiveIntegerField(
        "Flag a partner for review above (clicks per hour)",
        null=True,
        blank=True,
        default=1000,
        validators=[MinValueValidator(1)],
        help_text="A partner with more clicks than this in one hour (a whole UTC hour, repeats "
        "counted once) is listed on the Click flags page for staff to look at. The partner "
        "is not blocked and every click still counts. Leave empty to turn it off.",
    )
    hold_days = models.PositiveIntegerField(
        "Hold commissions for (days)",
        default=0,
        validators=[MaxValueValidator(3650)],
        help_text="A commission is pending this many days after it is credited (the refund "
        "window), then payable; payouts pay only payable commissions. Staff may approve one "
        "early or reject it. 0: payable at once. A program may set its own.",
    )
    signup_enabled = models.BooleanField(
        "Open the partner sign-up page",
        default=False,
        help_text="When on, anyone may apply to become a partner at /partner/signup/. "
        "New partners confirm their email first.",
    )
    signup_auto_approve = models.BooleanField(
        "Approve new partners automatically",
        default=False,
        help_text="When on, a partner who signs up is active as soon as they confirm their "
        "email. When off, they wait for staff to approve them (Sign-ups page).",
    )
    signup_parent = models.CharField(
        "Parent of partners who sign up",
        max_length=16,
        choices=SignupParent.choices,
        default=SignupParent.NONE,
        help_text="The referring partner is the active partner whose link the visitor "
        "clicked (first or last, as 'Partner credited' says), so a partner's link to the sign-up "
        "page recruits for them.",
    )
    signup_parent_partner = models.ForeignKey(
        "Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="Chosen parent (partner code)",
        help_text="With 'One chosen partner': the code of the active partner who becomes "
        "the parent of every partner who signs up.",
    )
    earlier_prefixes = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Every code prefix used before the current one: links made with them "
        "keep working.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "referral partner defaults"
        verbose_name_plural = "referral partner defaults"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="referral_defaults_singleton"),
        ]

    def __str__(self) -> str:
        return "Referral Partner Defaults"

    def clean(self) -> None:
        if self.signup_parent == SignupParent.FIXED and self.signup_parent_partner_id is None:
            raise ValidationError(
                {"signup_parent_partner": "Give the code of the partner who becomes the parent."}
            )


# The fields of SPEC §2, then the guards added since (optional in the API's PUT).
SPEC_DEFAULTS_FIELDS = (
    "code_prefix",
    "skip_notifications",
    "partner_selection",
    "tracking_method",
    "use_ip_address",
    "link_url",
    *STRUCTURAL_FIELDS,
)
GUARD_FIELDS = ("duplicate_click_minutes", "self_referral_guard", "click_flag_per_hour")
# Partner sign-up (SPEC §9), optional in the API's PUT too.
SIGNUP_FIELDS = (
    "signup_enabled",
    "signup_auto_approve",
    "signup_parent",
    "signup_parent_partner",
)
# The commission lifecycle (SPEC §11), optional in the API's PUT too.
LIFECYCLE_FIELDS = ("hold_days",)
DEFAULTS_FIELDS = (*SPEC_DEFAULTS_FIELDS, *GUARD_FIELDS, *SIGNUP_FIELDS, *LIFECYCLE_FIELDS)


class DefaultsChange(models.Model):
    """One save of the defaults: who, when, and each field's old and new value."""

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor = models.CharField(max_length=150, help_text="Who saved, kept if the user goes.")
    changes = models.JSONField(help_text='{"field": {"old": ..., "new": ...}}')
    programs_updated = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} by {self.actor}"


class CreditOn(models.TextChoices):
    """When a program's commission lines are credited (SPEC §10 "Credit timing")."""

    ORDER = "order", "Order (in full)"
    PAYMENT = "payment", "Customer payment"


class Program(ProgramStructure):
    """A commission program: per-level rates (see ProgramRate) and pay-if-unused rates."""

    name = models.CharField(max_length=100)
    notes = models.TextField(blank=True, default="")
    priority = models.IntegerField(
        default=100,
        help_text="Lower wins: the program with the lowest priority is the default for "
        "partners without a program.",
    )
    unused_lead_amount = money_field()
    unused_lead_percent = percent_field()
    unused_sale_amount = money_field()
    unused_sale_percent = percent_field()
    hold_days = models.PositiveIntegerField(
        "Hold commissions for (days)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(3650)],
        help_text="Days a commission of this program is pending before it is payable. "
        "Empty: the defaults' hold days.",
    )
    pays_default = models.BooleanField(
        "Pays default rates",
        default=True,
        help_text="Off: the program pays only the items that have a product rate; "
        "an item it does not cover goes to the partner's next program.",
    )
    renewal_cycles = models.PositiveIntegerField(
        "Renewals that earn commission",
        null=True,
        blank=True,
        validators=[MaxValueValidator(1_000_000)],
        help_text="How many renewals of a subscription (its payments after the first) earn "
        "commission. Empty: every renewal; 0: none.",
    )
    credit_on = models.CharField(
        "Credit commissions on",
        max_length=8,
        choices=CreditOn.choices,
        default=CreditOn.ORDER,
        help_text="Order: a commission is credited in full when the order arrives. Customer "
        "payment: it is worked out then, but credited as the customer pays.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The latest version (SPEC §10 "Versions"), kept by partners.services.versions in the
    # statement that makes it, so the engine's chain query reads it as a column instead of
    # looking the latest up per row. No constraint of its own: a defaults save points
    # 100,000 programs at their new versions in the UPDATE that writes their flags, and a
    # checked reference would add a check per program to the commit (docs/decisions.md,
    # "Program versions"); versions are never deleted but with their program.
    current_version = models.ForeignKey(
        "ProgramVersion",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["priority", "id"]
        indexes = [models.Index(fields=["priority", "id"], name="program_priority_idx")]

    def __str__(self) -> str:
        return self.name


class LevelRate(models.Model):
    """What is paid at one level of the partner tree: lead and sale, amount and percent
    (a program's rates, its renewal rates, a product rate's)."""

    level = models.PositiveSmallIntegerField(
        choices=[(n, str(n)) for n in LEVELS],
        validators=[MinValueValidator(1), MaxValueValidator(3)],
    )
    lead_amount = money_field()
    lead_percent = percent_field()
    sale_amount = money_field()
    sale_percent = percent_field()

    class Meta:
        abstract = True


class ProgramRate(LevelRate):
    """What a program pays at one level of the partner tree."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rates")

    class Meta:
        ordering = ["program_id", "level"]
        constraints = [
            models.UniqueConstraint(fields=["program", "level"], name="program_rate_level_unique"),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=3), name="program_rate_level_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program} level {self.level}"


class RenewalRate(LevelRate):
    """What a program pays at one level for a subscription's renewals (SPEC §10), instead
    of its rates. A program without them pays renewals its rates."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="renewal_rates")

    class Meta:
        ordering = ["program_id", "level"]
        constraints = [
            models.UniqueConstraint(fields=["program", "level"], name="renewal_rate_level_unique"),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=3), name="renewal_rate_level_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program} renewal level {self.level}"


class ProductRate(models.Model):
    """A program's rates for one sku (SPEC §10): per level (ProductRateLevel), and the
    pay-if-unused rate. An item with that sku is paid at them instead of the program's."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="product_rates")
    sku = models.CharField(max_length=100, validators=[MinLengthValidator(1)])
    unused_lead_amount = money_field()
    unused_lead_percent = percent_field()
    unused_sale_amount = money_field()
    unused_sale_percent = percent_field()

    class Meta:
        ordering = ["program_id", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["program", "sku"], name="product_rate_sku_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.program} sku {self.sku}"


class ProductRateLevel(LevelRate):
    """What a product rate pays at one level of the partner tree (as ProgramRate)."""

    product_rate = models.ForeignKey(ProductRate, on_delete=models.CASCADE, related_name="rates")

    class Meta:
        ordering = ["product_rate_id", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["product_rate", "level"], name="product_rate_level_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=3), name="product_rate_level_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_rate} level {self.level}"


class ProgramVersion(models.Model):
    """One state of a program's pay terms (SPEC §10 "Versions"): every change of its rates,
    product rates or flags, and every defaults save that changes its flags, makes the next
    one. A commission names the version it was worked out with, so the past is explained by
    the terms that applied then (editing a program never recalculates recorded orders).

    `terms` is a JSON snapshot in the shape of the program resource (see
    `partners.terms`), so a pay term added later joins it as one more key."""

    # No index of its own: the unique (program, number) one starts with it.
    program = models.ForeignKey(
        Program, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    number = models.PositiveIntegerField(help_text="1 for the program's first terms, then 2, 3…")
    terms = models.JSONField(help_text="The program's pay terms as they were from then on.")
    created_at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(
        max_length=150,
        help_text="Who made it: the staff user, 'api key NAME', or the command that did.",
    )

    class Meta:
        ordering = ["program_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "number"], name="program_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program} version {self.number}"


# Statuses whose login is refused (a sign-up not yet approved, or turned down).
NO_LOGIN_STATUSES = (PartnerStatus.PENDING, PartnerStatus.REJECTED)


# How far up a partner's tree `ancestor_ids` looks (a guard against broken data).
MAX_TREE_DEPTH = 1000


class PartnerQuerySet(models.QuerySet):
    def by_code(self, code: str) -> "PartnerQuerySet":
        """Match a code without regard to case, using the unique index on lower(code)."""
        return self.alias(code_lower=Lower("code")).filter(code_lower=code.lower())

    def code_taken(self, code: str, *, exclude_pk: int | None = None) -> bool:
        """Whether another partner has this code, whatever its case."""
        partners = self.by_code(code)
        if exclude_pk is not None:
            partners = partners.exclude(pk=exclude_pk)
        return partners.exists()

    def ancestor_ids(self, partner_id: int) -> list[int]:
        """The ids above a partner, nearest first (parent, grandparent, ...).

        Stops when a partner id repeats, so broken data cannot loop forever.
        """
        ancestors: list[int] = []
        current = partner_id
        while len(ancestors) < MAX_TREE_DEPTH:
            parent_id = self.filter(pk=current).values_list("parent_id", flat=True).first()
            if parent_id is None:
                break
            seen = parent_id == partner_id or parent_id in ancestors
            ancestors.append(parent_id)
            if seen:
                break
            current = parent_id
        return ancestors

    def parent_error(self, *, partner_pk: int | None, parent_id: int) -> str | None:
        """Why `parent_id` cannot be the parent of partner `partner_pk`, or None if it can."""
        if partner_pk is not None and parent_id == partner_pk:
            return "A partner cannot be their own parent."
        if partner_pk is not None and partner_pk in self.ancestor_ids(parent_id):
            return "This parent would make a cycle: the partner is already above them in the tree."
        return None


class Partner(models.Model):
    code = models.CharField(
        max_length=32,
        validators=[partner_code_validator],
        help_text="Starts with a letter; 4 to 32 letters, digits, hyphens or underscores. "
        "Unique without regard to case. Made from the name when left empty.",
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The partner who recruited this one (paid at level 2).",
    )
    program = models.ForeignKey(
        Program,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="partners",
        help_text="Empty: the program with the lowest priority.",
    )
    # The programs the partner is enrolled in (SPEC §10). `program` above is kept in sync by
    # the services (partners.services.enrollment): the enrolled program with the lowest
    # priority, null when none.
    programs = models.ManyToManyField(
        Program, through="Enrollment", related_name="enrolled", blank=True
    )
    status = models.CharField(
        max_length=16, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE
    )
    cookie_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        # At most ten years: the longest a tracking cookie lives (partners.tokens).
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="How many days after a click it still counts (at most 3650). Empty: no limit.",
    )
    notify_lead = models.BooleanField(
        default=True, help_text="Email this partner when someone they referred fills a form."
    )
    notify_sale = models.BooleanField(
        default=True, help_text="Email this partner when someone they referred buys."
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="partner",
        help_text="The login of this partner's Partner Center account.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PartnerQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(Lower("code"), name="partner_code_ci_unique"),
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="partner_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_active(self) -> bool:
        return self.status == PartnerStatus.ACTIVE

    def validate_constraints(self, exclude=None):
        # The case-insensitive code rule is checked in clean(), where the error can
        # name the field; the database constraint stays as the last word.
        super().validate_constraints(exclude={*(exclude or ()), "code"})

    def clean(self) -> None:
        errors = {}
        if self.code and Partner.objects.code_taken(self.code, exclude_pk=self.pk):
            errors["code"] = "A partner with this code already exists (codes ignore case)."
        if self.parent_id is not None:
            message = Partner.objects.parent_error(partner_pk=self.pk, parent_id=self.parent_id)
            if message:
                errors["parent"] = message
        if errors:
            raise ValidationError(errors)


class Enrollment(models.Model):
    """A partner enrolled in a program (SPEC §10): its items are paid by the first of its
    programs, by priority then id, that covers them."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="enrollments")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="enrollments")

    class Meta:
        ordering = ["partner_id", "program_id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "program"], name="enrollment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} in {self.program}"


class PartnerOverride(models.Model):
    """One partner's own rates for a program at one level (SPEC §10 "Partner overrides"):
    when the partner is paid at that level for items of that program (of that sku, when
    given; one for a sku beats one without), these replace the program's rates. The
    program need not be one of the partner's: a parent is paid at level 2 by its recruit's
    programs."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="overrides")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="overrides")
    # NULL is the SPEC's "every item", held once per level by the partial constraint below.
    sku = models.CharField(  # noqa: DJ001
        max_length=100,
        null=True,
        blank=True,
        validators=[MinLengthValidator(1)],
        help_text="The sku of the items these rates pay; empty (null): every item of the program.",
    )
    level = models.PositiveSmallIntegerField(
        choices=[(n, str(n)) for n in LEVELS],
        validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text="The level at which the partner is paid (1: their own sale).",
    )
    lead_amount = money_field()
    lead_percent = percent_field()
    sale_amount = money_field()
    sale_percent = percent_field()

    class Meta:
        ordering = ["partner_id", "program_id", "level", "sku", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "program", "sku", "level"], name="partner_override_unique"
            ),
            # A NULL sku is distinct from another NULL in a unique index: this one holds
            # "every item" overrides once per (partner, program, level).
            models.UniqueConstraint(
                fields=["partner", "program", "level"],
                condition=models.Q(sku__isnull=True),
                name="partner_override_every_item_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=3), name="partner_override_level"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner} in {self.program} level {self.level} {self.sku or 'every item'}"


class Coupon(models.Model):
    """A coupon code a partner owns (SPEC §11): an order that carries it is the partner's,
    ahead of any tracking cookie. Codes are unique without regard to case."""

    code = models.CharField(
        max_length=64,
        validators=[coupon_code_validator],
        help_text="As the shop knows it; matched without regard to case.",
    )
    partner = models.ForeignKey("Partner", on_delete=models.CASCADE, related_name="coupons")
    active = models.BooleanField(
        default=True, help_text="An inactive coupon is ignored (the order's trace says so)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(Lower("code"), name="coupon_code_ci_unique")]

    def __str__(self) -> str:
        return self.code

    def validate_constraints(self, exclude=None):
        # As Partner: the case-insensitive rule is checked in clean(), naming the field.
        super().validate_constraints(exclude={*(exclude or ()), "code"})

    def clean(self) -> None:
        taken = Coupon.objects.alias(code_lower=Lower("code")).filter(
            code_lower=(self.code or "").lower()
        )
        if self.code and taken.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"code": "A coupon with this code already exists (codes ignore case)."}
            )


class PartnerSignup(models.Model):
    """What a partner who signed up told us, and what became of the application."""

    partner = models.OneToOneField(
        Partner, primary_key=True, on_delete=models.CASCADE, related_name="signup"
    )
    website = models.URLField(
        blank=True,
        default="",
        max_length=200,
        validators=[http_url_validator],
        help_text="Where they will promote, e.g. their blog. Optional.",
    )
    promotion = models.TextField(
        "How they will promote",
        blank=True,
        default="",
        max_length=2000,
        validators=[MaxLengthValidator(2000)],
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True, default="")
    referred_by = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The partner whose link the visitor had clicked, whatever the parent "
        "setting made of it.",
    )
    created_at = models.DateTimeField()
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    decision_note = models.TextField(
        blank=True, default="", max_length=1000, validators=[MaxLengthValidator(1000)]
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["ip", "created_at"], name="signup_ip_created_idx"),
        ]

    def __str__(self) -> str:
        return f"sign-up of {self.partner_id} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def email_confirmed(self) -> bool:
        return self.email_confirmed_at is not None


class SignupAttempt(models.Model):
    """A sign-up sent from an IP address, for a new email or a known one: what the sign-up
    rate limit counts (`partners.signup_attempts`). Kept for an hour."""

    ip = models.GenericIPAddressField()
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["ip", "at"], name="signup_attempt_ip_at_idx"),
            models.Index(fields=["at"], name="signup_attempt_at_idx"),
        ]

    def __str__(self) -> str:
        return f"sign-up from {self.ip} at {self.at:%Y-%m-%d %H:%M}"


class LoginAddressCount(models.Model):
    """Login tries from one IP address in one minute: the login limit per address
    (`LOGIN_TRIES_PER_ADDRESS_PER_MINUTE`), in the database so every process sees one count.
    Kept for an hour."""

    ip = models.CharField(max_length=45)
    started_at = models.DateTimeField(help_text="The start of the minute counted.")
    posts = models.PositiveIntegerField(default=0, help_text="The tries in that minute.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ip", "started_at"], name="login_address_count_once"),
        ]
        indexes = [models.Index(fields=["started_at"], name="login_address_count_at_idx")]

    def __str__(self) -> str:
        return f"{self.posts} logins from {self.ip} at {self.started_at}"


class SignupEmailKind(models.TextChoices):
    CONFIRM = "confirm", "Confirm your email"
    KNOWN = "known", "Sign-up with a known email"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Not approved"
    INVITE = "invite", "Invitation to the Partner Center"


class SignupEmail(models.Model):
    """One email about a sign-up or a Partner Center invitation, queued in the transaction
    and sent by a task after it."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="signup_emails")
    kind = models.CharField(max_length=16, choices=SignupEmailKind.choices)
    note = models.TextField(blank=True, default="", help_text="Staff's words, in a rejection.")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["partner", "kind", "created_at"], name="signup_email_kind_idx"),
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "queued"
        return f"{self.kind} email to {self.partner_id}: {state}"


class TrackingLink(models.Model):
    """A named destination on the merchant's site that partner links can point to."""

    code = models.CharField(max_length=32, unique=True, validators=[tracking_link_code_validator])
    name = models.CharField(max_length=100)
    destination = models.CharField(max_length=2000, validators=[http_url_validator])
    is_default = models.BooleanField(
        default=False, help_text="Where partner links without a tracking link code go."
    )

    class Meta:
        ordering = ["-is_default", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_tracking_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ApiKey(models.Model):
    """A key for the JSON API. Only the SHA-256 of the key is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=12, help_text="The key's first characters, to tell keys apart."
    )
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class Click(models.Model):
    """One visit through a partner link (SPEC §4 "Click").

    The id is made by the tracker itself (time-ordered UUID), so the signed cookie can
    carry it before the row is written.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    # No index of its own: click_partner_at_idx (partner, at) serves every lookup by partner.
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="clicks", db_index=False
    )
    tracking_link = models.ForeignKey(
        TrackingLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="clicks"
    )
    ad_code = models.CharField(max_length=64, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True, default="")
    referrer = models.CharField(max_length=512, blank=True, default="")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["partner", "at"], name="click_partner_at_idx"),
            models.Index(fields=["ip", "at"], name="click_ip_at_idx"),
            models.Index(fields=["at"], name="click_at_idx"),
        ]

    def __str__(self) -> str:
        return f"click {self.id} on {self.partner_id} at {self.at:%Y-%m-%d %H:%M}"


class ClickFlag(models.Model):
    """A partner whose clicks in one hour went over the defaults' `click_flag_per_hour`
    (SPEC §9 "Guards"), for staff to review. Flagging blocks nothing."""

    WINDOW = timedelta(hours=1)

    # No index of its own: the unique (partner, window_start) serves lookups by partner.
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="click_flags", db_index=False
    )
    window_start = models.DateTimeField(help_text="The start of the hour counted (UTC).")
    clicks = models.PositiveIntegerField(help_text="The partner's clicks in that hour.")
    threshold = models.PositiveIntegerField(
        help_text="The defaults' clicks per hour when the flag was raised."
    )
    created_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.CharField(
        max_length=150, blank=True, default="", help_text="Who reviewed, kept if the user goes."
    )
    note = models.TextField(
        blank=True, default="", max_length=1000, validators=[MaxLengthValidator(1000)]
    )

    class Meta:
        ordering = ["-window_start", "partner_id"]
        constraints = [
            # One flag per partner and hour: the flagging statement's ON CONFLICT target.
            models.UniqueConstraint(
                fields=["partner", "window_start"], name="click_flag_partner_window_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(clicks__gt=models.F("threshold")),
                name="click_flag_over_threshold",
            ),
        ]
        indexes = [
            models.Index(
                fields=["-window_start"],
                condition=models.Q(reviewed_at__isnull=True),
                name="click_flag_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}: {self.clicks} clicks from {self.window_start:%Y-%m-%d %H:%M}"

    @property
    def window_end(self) -> datetime:
        return self.window_start + self.WINDOW

    @property
    def is_open(self) -> bool:
        return self.reviewed_at is None
