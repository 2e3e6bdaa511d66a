"""The Django admin (SPEC §7 "Admins"): pages, saves through services, bulk actions."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from partners.models import (
    STRUCTURAL_FIELDS,
    ApiKey,
    DefaultsChange,
    Partner,
    Program,
    ProgramRate,
    ReferralDefaults,
    TrackingLink,
)
from partners.selectors import defaults_get
from partners.services.api_keys import api_key_create
from partners.services.defaults import defaults_update
from partners.services.partners import (
    partners_assign_program,
    partners_set_notifications,
    partners_set_parent,
)
from partners.services.programs import program_create
from tests.factories import (
    PartnerFactory,
    ProgramFactory,
    TrackingLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PARTNERS_CHANGELIST = reverse("admin:partners_partner_changelist")


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:partners_{model}_{view}", args=args)


def form_data(response) -> dict:
    """The POST data of an admin change form as it was shown, inlines included."""
    data = {}

    def put(key, value):
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif value is None:
            data[key] = ""
        else:
            data[key] = value

    form = response.context["adminform"].form
    for name in form.fields:
        put(form.add_prefix(name), form[name].value())
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            put(management.add_prefix(name), management[name].value())
        for sub_form in formset.forms:
            for name in sub_form.fields:
                put(sub_form.add_prefix(name), sub_form[name].value())
    return data


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def partner_rows() -> list[dict]:
    return list(Partner.objects.order_by("pk").values())


def make_program(name: str, rates: dict[int, dict] | None = None) -> Program:
    return program_create(
        data={"name": name, "priority": 10},
        rates=[{"level": level, **values} for level, values in (rates or {}).items()],
    )


# --- Every page opens, for staff only ----------------------------------------------------


def make_object(model: str):
    if model == "referraldefaults":
        return defaults_get()
    if model == "defaultschange":
        defaults_update(data={"levels": 3}, acting_user=None)
        return DefaultsChange.objects.get()
    if model == "partner":
        return PartnerFactory(parent=PartnerFactory(), program=ProgramFactory())
    if model == "program":
        return make_program("Gold")
    if model == "trackinglink":
        return TrackingLinkFactory()
    if model == "apikey":
        return api_key_create(name="Shop")[0]
    raise AssertionError(model)


MODELS = ["referraldefaults", "defaultschange", "partner", "program", "trackinglink", "apikey"]


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_change_form_open_for_a_superuser(staff_client, model):
    obj = make_object(model)

    assert staff_client.get(admin_url(model, "changelist")).status_code == 200
    assert staff_client.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("partner", 200),
        ("program", 200),
        ("trackinglink", 200),
        ("referraldefaults", 403),
        ("defaultschange", 403),
        ("apikey", 403),
    ],
    ids=["partner", "program", "link", "defaults-exists", "history", "api-key"],
)
def test_add_form_opens_only_where_adding_makes_sense(staff_client, model, status):
    assert staff_client.get(admin_url(model, "add")).status_code == status


@pytest.mark.parametrize("model", MODELS)
def test_nothing_can_be_deleted_in_the_admin(staff_client, model):
    obj = make_object(model)
    count = type(obj).objects.count()

    response = staff_client.post(admin_url(model, "delete", obj.pk), {"post": "yes"})

    assert response.status_code == 403
    assert type(obj).objects.count() == count


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("who", ["anonymous", "not-staff"])
def test_non_staff_are_sent_to_the_admin_login(client, plain_user, model, who):
    if who == "not-staff":
        client.force_login(plain_user)
    url = admin_url(model, "changelist")

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={url}"


def test_staff_without_rights_on_partners_is_refused(client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(PARTNERS_CHANGELIST).status_code == 403
    assert client.get(admin_url("partner", "import")).status_code == 403


# --- Referral Partner Defaults ---------------------------------------------------------


def test_defaults_save_goes_through_the_service_and_updates_every_program(staff_client, staff_user):
    gold = make_program("Gold", {1: {"sale_percent": Decimal("20")}})
    silver = make_program("Silver")
    url = admin_url("referraldefaults", "change", 1)
    data = form_data(staff_client.get(url))
    data.update(levels="3", payout_percent="on", code_prefix="vip-")

    response = staff_client.post(url, data, follow=True)

    assert response.redirect_chain == [(url, 302)]
    assert messages_of(response) == ["Saved. 2 referral partner program records updated."]
    defaults = defaults_get()
    assert (defaults.levels, defaults.payout_percent, defaults.code_prefix) == (3, True, "vip-")
    change = DefaultsChange.objects.get()
    assert change.actor == staff_user.username
    assert change.user == staff_user
    assert change.programs_updated == 2
    assert change.changes == {
        "code_prefix": {"old": "", "new": "vip-"},
        "levels": {"old": 2, "new": 3},
        "payout_percent": {"old": False, "new": True},
    }
    for program in (gold, silver):
        program.refresh_from_db()
        assert program.structure() == defaults.structure()
    assert gold.rates.get(level=1).sale_percent == Decimal("20.0000")


def test_defaults_save_without_changes_writes_nothing(staff_client):
    make_program("Gold")
    url = admin_url("referraldefaults", "change", 1)
    before = (list(ReferralDefaults.objects.values()), list(Program.objects.values()))

    response = staff_client.post(url, form_data(staff_client.get(url)), follow=True)

    assert messages_of(response) == ["Nothing changed."]
    assert DefaultsChange.objects.count() == 0
    assert (list(ReferralDefaults.objects.values()), list(Program.objects.values())) == before


def test_defaults_invalid_input_is_shown_and_changes_nothing(staff_client):
    url = admin_url("referraldefaults", "change", 1)
    data = form_data(staff_client.get(url))
    data.update(code_prefix="no spaces!", levels="3")
    before = list(ReferralDefaults.objects.values())

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "code_prefix": ["Use up to 16 letters, digits, hyphens or underscores (no spaces)."]
    }
    assert list(ReferralDefaults.objects.values()) == before
    assert DefaultsChange.objects.count() == 0


def test_defaults_staff_with_view_right_only_cannot_save(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_referraldefaults"))
    client.force_login(user)
    url = admin_url("referraldefaults", "change", 1)
    before = list(ReferralDefaults.objects.values())

    assert client.get(url).status_code == 200
    response = client.post(url, {"levels": "3", "tracking_method": "cookie"})

    assert response.status_code == 403
    assert list(ReferralDefaults.objects.values()) == before
    assert DefaultsChange.objects.count() == 0


def test_defaults_can_be_added_again_only_when_missing(staff_client):
    ReferralDefaults.objects.all().delete()
    url = admin_url("referraldefaults", "add")
    data = form_data(staff_client.get(url))
    data.update(levels="1")

    response = staff_client.post(url, data, follow=True)

    assert response.redirect_chain == [(admin_url("referraldefaults", "change", 1), 302)]
    assert defaults_get().levels == 1
    assert DefaultsChange.objects.get().changes == {"levels": {"old": 2, "new": 1}}
    assert staff_client.get(url).status_code == 403


def test_defaults_history_is_read_only(staff_client):
    defaults_update(data={"levels": 3}, acting_user=None, actor="script")
    change = DefaultsChange.objects.get()
    before = list(DefaultsChange.objects.values())

    page = staff_client.get(admin_url("defaultschange", "changelist"))
    response = staff_client.post(admin_url("defaultschange", "change", change.pk), {"actor": "x"})

    assert "levels: 2 → 3" in page.text
    assert response.status_code == 403
    assert list(DefaultsChange.objects.values()) == before


# --- Partners: change form --------------------------------------------------------------


def test_partner_add_goes_through_partner_create_and_makes_the_code(staff_client):
    url = admin_url("partner", "add")
    data = form_data(staff_client.get(url))
    data.update(code="", name="Jane O'Neil", email="jane@example.com", cookie_days="30")

    response = staff_client.post(url, data)

    partner = Partner.objects.get()
    assert response.status_code == 302
    assert response["Location"] == PARTNERS_CHANGELIST
    assert (partner.code, partner.name, partner.cookie_days) == ("jane-oneil", "Jane O'Neil", 30)
    assert (partner.status, partner.notify_lead, partner.notify_sale) == ("active", True, True)


def test_partner_change_refuses_a_cycle_and_changes_nothing(staff_client):
    top = PartnerFactory(code="top1")
    below = PartnerFactory(code="below1", parent=top)
    url = admin_url("partner", "change", top.pk)
    data = form_data(staff_client.get(url))
    data.update(parent=str(below.pk))
    before = partner_rows()

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "parent": ["This parent would make a cycle: the partner is already above them in the tree."]
    }
    assert partner_rows() == before


def test_partner_change_keeps_a_code(staff_client):
    partner = PartnerFactory(code="keepme")
    url = admin_url("partner", "change", partner.pk)
    data = form_data(staff_client.get(url))
    data.update(code="")

    response = staff_client.post(url, data)

    assert response.context["adminform"].form.errors == {"code": ["This field is required."]}
    assert Partner.objects.get().code == "keepme"


def test_partner_changelist_searches_and_filters(staff_client):
    PartnerFactory(code="alice", name="Alice Smith", status="inactive")
    PartnerFactory(code="bob1", name="Bob Jones")

    found = staff_client.get(PARTNERS_CHANGELIST, {"q": "smith"})
    inactive = staff_client.get(PARTNERS_CHANGELIST, {"status__exact": "inactive"})

    assert [p.code for p in found.context["cl"].result_list] == ["alice"]
    assert [p.code for p in inactive.context["cl"].result_list] == ["alice"]


# --- Partners: bulk actions -------------------------------------------------------------


def run_action(client, action: str, selected: list[Partner], data: dict):
    """Choose the action on the changelist, see its page, then apply it with `data`."""
    pks = [str(partner.pk) for partner in selected]
    page = client.post(
        PARTNERS_CHANGELIST,
        {"action": action, "_selected_action": pks, "index": "0", "select_across": "0"},
    )
    assert page.status_code == 200
    assert page.context["partner_count"] == len(selected)
    return client.post(
        PARTNERS_CHANGELIST,
        {"action": action, "_selected_action": pks, "select_across": "0", "apply": "Apply", **data},
        follow=True,
    )


@pytest.fixture
def three_partners():
    return [PartnerFactory(code=code) for code in ("anna", "bert", "carl")]


def values(field: str) -> dict[str, object]:
    return dict(Partner.objects.values_list("code", field))


def test_the_action_page_lists_the_selected_partners(staff_client, three_partners):
    anna, bert, _ = three_partners

    page = staff_client.post(
        PARTNERS_CHANGELIST,
        {"action": "set_status", "_selected_action": [anna.pk, bert.pk], "index": "0"},
    )

    assert [p.code for p in page.context["partners"]] == ["anna", "bert"]
    assert "Set the status" in page.text
    assert Partner.objects.filter(status="active").count() == 3


def test_the_action_page_names_at_most_fifty_partners(staff_client):
    partners = [PartnerFactory(code=f"p{n:03d}") for n in range(52)]

    page = staff_client.post(
        PARTNERS_CHANGELIST,
        {"action": "set_status", "_selected_action": [p.pk for p in partners], "index": "0"},
    )

    assert len(page.context["partners"]) == 50
    assert "… and 2 more" in page.text
    assert page.text.count('name="_selected_action"') == 52


def test_assign_program_updates_exactly_the_selected(staff_client, three_partners):
    anna, bert, carl = three_partners
    gold, silver = make_program("Gold"), make_program("Silver")
    partners_assign_program(partners=Partner.objects.filter(pk=carl.pk), program=silver)

    response = run_action(staff_client, "assign_program", [anna, bert], {"program": gold.pk})

    assert messages_of(response) == ["2 partners updated."]
    assert values("program") == {"anna": gold.pk, "bert": gold.pk, "carl": silver.pk}


def test_assign_no_program(staff_client, three_partners):
    _, bert, _ = three_partners
    gold = make_program("Gold")
    partners_assign_program(partners=Partner.objects.all(), program=gold)

    response = run_action(staff_client, "assign_program", [bert], {"program": ""})

    assert messages_of(response) == ["1 partner updated."]
    assert values("program") == {"anna": gold.pk, "bert": None, "carl": gold.pk}


def test_set_parent_updates_exactly_the_selected(staff_client, three_partners):
    anna, bert, carl = three_partners

    response = run_action(staff_client, "set_parent", [bert, carl], {"parent": "ANNA"})

    assert messages_of(response) == ["2 partners updated."]
    assert values("parent") == {"anna": None, "bert": anna.pk, "carl": anna.pk}


def test_set_parent_refuses_a_cycle_and_changes_nothing(staff_client, three_partners):
    anna, bert, _ = three_partners
    partners_set_parent(partners=Partner.objects.filter(pk=bert.pk), parent=anna)
    before = partner_rows()

    response = run_action(staff_client, "set_parent", [anna], {"parent": "bert"})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "bert is below anna in the tree: that would make a cycle."
    ]
    assert partner_rows() == before


def test_set_parent_refuses_an_unknown_code(staff_client, three_partners):
    before = partner_rows()

    response = run_action(staff_client, "set_parent", three_partners[:1], {"parent": "nobody"})

    assert response.context["form"].errors == {"parent": ["No partner with code 'nobody'."]}
    assert partner_rows() == before


def test_set_parent_to_none(staff_client, three_partners):
    anna, bert, _ = three_partners
    partners_set_parent(partners=Partner.objects.exclude(pk=anna.pk), parent=anna)

    response = run_action(staff_client, "set_parent", [bert], {"parent": ""})

    assert messages_of(response) == ["1 partner updated."]
    assert values("parent") == {"anna": None, "bert": None, "carl": anna.pk}


def test_set_status_updates_exactly_the_selected(staff_client, three_partners):
    anna, bert, _ = three_partners

    response = run_action(staff_client, "set_status", [anna, bert], {"status": "inactive"})

    assert messages_of(response) == ["2 partners updated."]
    assert values("status") == {"anna": "inactive", "bert": "inactive", "carl": "active"}


def test_set_notifications_changes_only_the_chosen_switch(staff_client, three_partners):
    anna, bert, _ = three_partners

    response = run_action(
        staff_client, "set_notifications", [anna, bert], {"notify_lead": "off", "notify_sale": ""}
    )

    assert messages_of(response) == ["2 partners updated."]
    assert values("notify_lead") == {"anna": False, "bert": False, "carl": True}
    assert values("notify_sale") == {"anna": True, "bert": True, "carl": True}


def test_set_notifications_both_switches(staff_client, three_partners):
    _, _, carl = three_partners
    partners_set_notifications(partners=Partner.objects.all(), notify_lead=False)

    response = run_action(
        staff_client, "set_notifications", [carl], {"notify_lead": "on", "notify_sale": "off"}
    )

    assert messages_of(response) == ["1 partner updated."]
    assert values("notify_lead") == {"anna": False, "bert": False, "carl": True}
    assert values("notify_sale") == {"anna": True, "bert": True, "carl": False}


def test_set_notifications_needs_a_switch(staff_client, three_partners):
    before = partner_rows()

    response = run_action(
        staff_client, "set_notifications", three_partners, {"notify_lead": "", "notify_sale": ""}
    )

    assert response.context["form"].non_field_errors() == ["Choose at least one switch to change."]
    assert partner_rows() == before


# --- Programs ---------------------------------------------------------------------------


def test_program_add_makes_the_rate_rows_then_shows_them(staff_client):
    defaults_update(data={"levels": 3, "payout_percent": True}, acting_user=None)
    url = admin_url("program", "add")
    data = form_data(staff_client.get(url))
    data.update(name="Gold", priority="5", unused_sale_percent="25", levels="1")

    response = staff_client.post(url, data)

    program = Program.objects.get()
    assert response["Location"] == admin_url("program", "change", program.pk)
    assert (program.name, program.priority, program.unused_sale_percent) == (
        "Gold",
        5,
        Decimal("25"),
    )
    assert program.structure() == defaults_get().structure()
    assert list(program.rates.values_list("level", "sale_percent")) == [
        (1, Decimal("0")),
        (2, Decimal("0")),
        (3, Decimal("0")),
    ]


def test_program_change_edits_rates_and_not_the_structure(staff_client):
    program = make_program("Gold", {1: {"sale_amount": Decimal("5")}})
    url = admin_url("program", "change", program.pk)
    data = form_data(staff_client.get(url))
    assert data["rates-TOTAL_FORMS"] == 3
    data.update({"name": "Gold+", "rates-1-sale_percent": "7.5", "levels": "3"})

    response = staff_client.post(url, data)

    assert response.status_code == 302
    program.refresh_from_db()
    assert program.name == "Gold+"
    assert program.levels == 2
    assert list(program.rates.values_list("level", "sale_amount", "sale_percent")) == [
        (1, Decimal("5.00"), Decimal("0")),
        (2, Decimal("0"), Decimal("7.5")),
        (3, Decimal("0"), Decimal("0")),
    ]


def test_program_rates_are_validated(staff_client):
    program = make_program("Gold")
    url = admin_url("program", "change", program.pk)
    data = form_data(staff_client.get(url))
    data.update({"rates-0-sale_percent": "101"})
    before = list(ProgramRate.objects.values())

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[0] == {
        "sale_percent": ["Ensure this value is less than or equal to 100."]
    }
    assert list(ProgramRate.objects.values()) == before


def test_apply_defaults_action_copies_the_structure_and_keeps_rates(staff_client):
    gold = make_program("Gold", {1: {"sale_percent": Decimal("20")}})
    silver = make_program("Silver", {2: {"lead_amount": Decimal("3")}})
    new_structure = {
        "levels": 3,
        "payout_on_lead": True,
        "payout_on_sale": False,
        "payout_amount": False,
        "payout_percent": True,
        "pay_if_unused": True,
    }
    # The defaults as if saved while these programs were elsewhere (e.g. restored).
    ReferralDefaults.objects.filter(pk=1).update(**new_structure)
    rates_before = list(ProgramRate.objects.order_by("pk").values())
    silver_before = list(Program.objects.filter(pk=silver.pk).values())

    response = staff_client.post(
        admin_url("program", "changelist"),
        {"action": "apply_defaults", "_selected_action": [gold.pk], "index": "0"},
        follow=True,
    )

    assert messages_of(response) == ["1 program updated."]
    gold.refresh_from_db()
    assert gold.structure() == new_structure
    assert list(Program.objects.filter(pk=silver.pk).values()) == silver_before
    assert list(ProgramRate.objects.order_by("pk").values()) == rates_before


# --- Tracking links and API keys --------------------------------------------------------


def test_making_a_link_the_default_unsets_the_previous_one(staff_client):
    old = TrackingLinkFactory(code="home", is_default=True)
    url = admin_url("trackinglink", "add")
    data = {"code": "sale", "name": "Sale", "destination": "https://shop.example/sale"}

    response = staff_client.post(url, {**data, "is_default": "on"})

    assert response.status_code == 302
    assert dict(TrackingLink.objects.values_list("code", "is_default")) == {
        "home": False,
        "sale": True,
    }
    old.refresh_from_db()
    assert not old.is_default


def test_tracking_link_bad_destination_is_refused(staff_client):
    response = staff_client.post(
        admin_url("trackinglink", "add"),
        {"code": "sale", "name": "Sale", "destination": "javascript:alert(1)"},
    )

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["destination"]
    assert TrackingLink.objects.count() == 0


def test_revoke_action_revokes_exactly_the_selected_live_keys(staff_client):
    shop, _ = api_key_create(name="Shop")
    crm, _ = api_key_create(name="CRM")
    old, _ = api_key_create(name="Old")
    revoked_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ApiKey.objects.filter(pk=old.pk).update(revoked_at=revoked_at)

    response = staff_client.post(
        admin_url("apikey", "changelist"),
        {"action": "revoke", "_selected_action": [shop.pk, old.pk], "index": "0"},
        follow=True,
    )

    assert messages_of(response) == ["1 key revoked."]
    shop.refresh_from_db()
    assert shop.revoked_at is not None
    assert ApiKey.objects.get(pk=old.pk).revoked_at == revoked_at
    assert ApiKey.objects.get(pk=crm.pk).revoked_at is None


def test_revoke_needs_the_change_right(client):
    key, _ = api_key_create(name="Shop")
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(user)

    page = client.get(admin_url("apikey", "changelist"))
    client.post(
        admin_url("apikey", "changelist"),
        {"action": "revoke", "_selected_action": [key.pk], "index": "0"},
    )

    assert page.status_code == 200
    assert 'value="revoke"' not in page.text
    assert ApiKey.objects.get().revoked_at is None


def test_api_key_pages_never_show_the_hash_and_say_how_keys_are_made(staff_client):
    key, raw_key = api_key_create(name="Shop")

    listing = staff_client.get(admin_url("apikey", "changelist"))
    detail = staff_client.get(admin_url("apikey", "change", key.pk))

    assert "python manage.py create_api_key --name NAME" in listing.text
    for page in (listing, detail):
        assert key.key_hash not in page.text
        assert raw_key not in page.text
    assert key.prefix in listing.text
    assert 'value="revoke"' in listing.text


def test_structural_fields_are_read_only_on_the_program_form(staff_client):
    program = make_program("Gold")

    form = staff_client.get(admin_url("program", "change", program.pk)).context["adminform"].form

    assert not set(STRUCTURAL_FIELDS) & set(form.fields)


def test_staff_set_a_partners_center_password_in_the_admin(admin_client):
    from django.contrib.admin import helpers
    from django.contrib.auth import authenticate

    jane = PartnerFactory(code="jane", email="jane@partners.example")

    response = admin_client.post(
        "/admin/partners/partner/",
        {
            "action": "set_password",
            helpers.ACTION_CHECKBOX_NAME: [jane.pk],
            "apply": "1",
            "password1": "a-long-secret-9",
            "password2": "a-long-secret-9",
        },
    )

    assert response.status_code == 302
    jane.refresh_from_db()
    assert authenticate(username="JANE", password="a-long-secret-9") == jane.user


def test_setting_a_password_for_two_partners_is_refused(admin_client):
    from django.contrib.admin import helpers

    a, b = PartnerFactory(), PartnerFactory()
    response = admin_client.post(
        "/admin/partners/partner/",
        {
            "action": "set_password",
            helpers.ACTION_CHECKBOX_NAME: [a.pk, b.pk],
            "apply": "1",
            "password1": "a-long-secret-9",
            "password2": "a-long-secret-9",
        },
    )

    assert response.status_code == 200
    assert "exactly one partner" in response.content.decode()
    assert not Partner.objects.filter(user__isnull=False).exists()


def test_enroll_in_and_remove_from_a_program_in_bulk(staff_client, three_partners):
    """SPEC §10: enrollment adds one program (the others stay); `program` follows as the
    enrolled program with the lowest priority."""
    anna, bert, carl = three_partners
    gold, silver = make_program("Gold"), make_program("Silver")
    gold.priority, silver.priority = 1, 2
    gold.save(), silver.save()
    partners_assign_program(partners=Partner.objects.filter(pk=anna.pk), program=silver)

    response = run_action(staff_client, "enroll_in_program", [anna, bert], {"program": gold.pk})

    assert messages_of(response) == ["2 partners updated."]
    assert values("program") == {"anna": gold.pk, "bert": gold.pk, "carl": None}
    assert set(anna.programs.values_list("name", flat=True)) == {"Gold", "Silver"}

    response = run_action(staff_client, "remove_from_program", [anna, carl], {"program": gold.pk})

    assert messages_of(response) == ["1 partner updated."]
    assert values("program") == {"anna": silver.pk, "bert": gold.pk, "carl": None}
    assert list(anna.programs.values_list("name", flat=True)) == ["Silver"]
