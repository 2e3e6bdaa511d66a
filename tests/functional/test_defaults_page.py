"""CRM > Settings > Referral Partner Defaults page (SPEC §2, §7) over HTTP."""

import html
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse
from django.utils.html import strip_tags

from partners.models import STRUCTURAL_FIELDS, DefaultsChange, Program
from partners.selectors import defaults_get
from partners.services.defaults import defaults_update
from tests.factories import PartnerFactory, ProgramFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

SEP = "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}"  # the breadcrumb separator

URL = "/staff/settings/referral-partner-defaults/"
HISTORY_URL = "/staff/settings/referral-partner-defaults/history/"

# The page's fields with the values of a fresh installation (SPEC §2 table, then guards).
FRESH_VALUES = {
    "code_prefix": "",
    "link_url": "",
    "skip_notifications": False,
    "partner_selection": "last",
    "tracking_method": "cookie",
    "use_ip_address": False,
    "levels": 2,
    "payout_on_lead": False,
    "payout_on_sale": True,
    "payout_amount": True,
    "payout_percent": False,
    "pay_if_unused": False,
    "duplicate_click_minutes": 30,
    "self_referral_guard": True,
    "click_flag_per_hour": 1000,
    "signup_enabled": False,
    "signup_auto_approve": False,
    "signup_parent": "none",
    "signup_parent_partner": None,
    "hold_days": 0,
}


def form_data(**changes) -> dict[str, str]:
    """What the browser posts: checked boxes as "on", unchecked ones left out."""
    values = {**FRESH_VALUES, **changes}
    data = {}
    for name, value in values.items():
        if value is True:
            data[name] = "on"
        elif value is not False and value is not None:
            data[name] = str(value)
    return data


def page_text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))


def snapshot() -> tuple:
    """Everything a save of the defaults may write."""
    return (
        model_to_dict(defaults_get()),
        DefaultsChange.objects.count(),
        list(Program.objects.order_by("pk").values_list("pk", *STRUCTURAL_FIELDS)),
    )


@pytest.fixture
def programs():
    return ProgramFactory.create_batch(3)


@pytest.fixture
def viewer_client(client):
    """Staff without the right to change the defaults."""
    client.force_login(UserFactory(is_staff=True))
    return client


def test_url_name():
    assert reverse("staff:defaults") == URL
    assert reverse("staff:defaults_history") == HISTORY_URL


def test_anonymous_is_sent_to_login(client, programs):
    before = snapshot()

    get = client.get(URL)
    post = client.post(URL, form_data(levels=3))

    assert get.status_code == 302
    assert get["Location"] == f"/accounts/login/?next={URL}"
    assert post.status_code == 302
    assert post["Location"] == f"/accounts/login/?next={URL}"
    assert snapshot() == before


def test_non_staff_gets_403_and_nothing_changes(client, plain_user, programs):
    client.force_login(plain_user)
    before = snapshot()

    assert client.get(URL).status_code == 403
    assert client.post(URL, form_data(levels=3, code_prefix="vip-")).status_code == 403
    assert client.get(HISTORY_URL).status_code == 403
    assert snapshot() == before


def test_staff_without_change_permission_may_look_but_not_save(viewer_client, programs):
    before = snapshot()

    page = viewer_client.get(URL)
    post = viewer_client.post(URL, form_data(levels=3, code_prefix="vip-"))

    assert page.status_code == 200
    assert "You can look at the defaults, but you may not change them." in page_text(page)
    assert all(field.disabled for field in page.context["form"].fields.values())
    assert post.status_code == 403
    assert snapshot() == before


def test_staff_with_only_the_change_permission_may_save(client, programs):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_referraldefaults"))
    client.force_login(user)

    response = client.post(URL, form_data(levels=1))

    assert response.status_code == 302
    assert defaults_get().levels == 1
    assert DefaultsChange.objects.get().actor == user.username


def test_post_without_csrf_token_is_refused(staff_user, programs):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff_user)
    before = snapshot()

    response = csrf_client.post(URL, form_data(levels=3, code_prefix="vip-"))

    assert response.status_code == 403
    assert snapshot() == before
    # The same post with the token from the page goes through, so the 403 was the token.
    csrf_client.get(URL)
    token = csrf_client.cookies["csrftoken"].value
    accepted = csrf_client.post(URL, {**form_data(levels=3), "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert defaults_get().levels == 3


def test_page_shows_breadcrumb_menu_fieldsets_and_help(staff_client):
    response = staff_client.get(URL)

    text = page_text(response)
    assert response.status_code == 200
    assert f"CRM {SEP} Settings {SEP} Referral Partner Defaults" in text
    assert f'href="{URL}" aria-current="page">Referral Partner Defaults</a>' in (
        response.content.decode()
    )
    assert f'href="{HISTORY_URL}"' in response.content.decode()
    form = response.context["form"]
    assert [(title, [f.name for f in fields]) for title, fields in form.fieldset_list] == [
        ("Referral partner links", ["code_prefix", "link_url"]),
        ("Notifications", ["skip_notifications"]),
        ("Tracking", ["partner_selection", "tracking_method", "use_ip_address"]),
        ("Payouts", ["levels", "payout_on_lead", "payout_amount", "pay_if_unused", "hold_days"]),
        ("Guards", ["duplicate_click_minutes", "self_referral_guard", "click_flag_per_hour"]),
        (
            "Partner sign-up",
            ["signup_enabled", "signup_auto_approve", "signup_parent", "signup_parent_partner"],
        ),
    ]
    assert "Has no effect with 'Cookies only'." in text
    assert "Last referring partner" in text
    assert "First referring partner" in text
    assert 'type="radio" name="partner_selection" value="first"' in response.content.decode()
    assert "Partner links now look like http://127.0.0.1:8000/go/CODE/" in text


def test_ip_address_is_greyed_out_under_cookies_only(staff_client):
    staff_client.post(URL, form_data(tracking_method="cookies_only"))

    response = staff_client.get(URL)

    assert response.context["cookies_only"] is True
    assert 'class="field field-checkbox is-muted" id="field-use_ip_address"' in (
        response.content.decode()
    )


def test_valid_post_saves_updates_programs_and_says_how_many(staff_client, staff_user, programs):
    response = staff_client.post(
        URL,
        form_data(
            code_prefix="vip-",
            partner_selection="first",
            levels=3,
            payout_percent=True,
            link_url="https://go.example.com",
        ),
        follow=True,
    )

    assert response.redirect_chain == [(URL, 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "Saved. 3 referral partner program records updated."
    ]
    assert "Saved. 3 referral partner program records updated." in page_text(response)
    defaults = defaults_get()
    assert model_to_dict(defaults) == {
        **FRESH_VALUES,
        "code_prefix": "vip-",
        "partner_selection": "first",
        "levels": 3,
        "payout_percent": True,
        "link_url": "https://go.example.com",
    }
    change = DefaultsChange.objects.get()
    assert change.user == staff_user
    assert change.actor == staff_user.username
    assert change.programs_updated == 3
    assert change.changes == {
        "code_prefix": {"old": "", "new": "vip-"},
        "link_url": {"old": "", "new": "https://go.example.com"},
        "partner_selection": {"old": "last", "new": "first"},
        "levels": {"old": 2, "new": 3},
        "payout_percent": {"old": False, "new": True},
    }
    assert (
        list(Program.objects.order_by("pk").values_list(*STRUCTURAL_FIELDS))
        == [(3, False, True, True, True, False)] * 3
    )


def test_saving_the_same_values_says_nothing_changed(staff_client, programs):
    before = snapshot()

    response = staff_client.post(URL, form_data(), follow=True)

    assert [str(m) for m in response.context["messages"]] == ["Nothing changed."]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("code_prefix", "vip 1", id="prefix-with-space"),
        pytest.param("code_prefix", "vip- ", id="prefix-with-trailing-space"),
        pytest.param("levels", "0", id="levels-0"),
        pytest.param("levels", "4", id="levels-4"),
        pytest.param("link_url", "javascript:alert(1)", id="link-url-javascript"),
        pytest.param("tracking_method", "pigeon", id="unknown-tracking-method"),
    ],
)
def test_invalid_input_reshows_the_form_and_changes_nothing(staff_client, programs, field, value):
    before = snapshot()
    # A valid change rides along: it must not be saved either.
    data = {**form_data(partner_selection="first", payout_on_lead=True), field: value}

    response = staff_client.post(URL, data)

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    content = response.content.decode()
    assert f'id="id_{field}_error"' in content
    assert "There is a problem: correct it and send the form again" in page_text(response)
    # The summary at the top links to the field (or to its list of choices).
    assert re.search(rf'<a href="#id_{field}(_0)?" data-field="{field}">', content)
    assert snapshot() == before


def test_service_validation_error_goes_onto_the_form(staff_client, programs, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError({"code_prefix": "Refused by the service.", "other": "Whole form."})

    monkeypatch.setattr("partners.views.defaults_update", refuse)
    before = snapshot()

    response = staff_client.post(URL, form_data(code_prefix="vip-"))

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "code_prefix": ["Refused by the service."],
        "__all__": ["Whole form."],
    }
    assert snapshot() == before


def test_history_lists_each_change_old_to_new(staff_client, staff_user, programs):
    staff_client.post(URL, form_data(partner_selection="first", levels=3, code_prefix="vip-"))

    response = staff_client.get(HISTORY_URL)

    assert response.status_code == 200
    entry = response.context["entries"][0]
    assert entry["rows"] == [
        {"label": "Referral partner code prefix", "old": "(empty)", "new": "vip-"},
        {
            "label": "Partner credited",
            "old": "Last referring partner",
            "new": "First referring partner",
        },
        {"label": "Referral partner # of levels", "old": "2", "new": "3"},
    ]
    text = page_text(response)
    assert "Partner credited: Last referring partner → First referring partner" in text
    assert "Referral partner # of levels: 2 → 3" in text
    assert "Referral partner code prefix: (empty) → vip-" in text
    assert staff_user.username in text
    assert f"CRM {SEP} Settings {SEP} Referral Partner Defaults {SEP} History" in text


def test_history_shows_booleans_and_is_paginated(staff_client):
    actor = StaffFactory()
    for n in range(51):
        staff_client.force_login(actor)
        staff_client.post(URL, form_data(skip_notifications=n % 2 == 0))

    first = staff_client.get(HISTORY_URL)
    second = staff_client.get(HISTORY_URL, {"page": 2})

    assert DefaultsChange.objects.count() == 51
    assert len(first.context["entries"]) == 50
    assert len(second.context["entries"]) == 1
    assert first.context["entries"][0]["rows"] == [
        {"label": "Skip referral partner notifications", "old": "Off", "new": "On"}
    ]
    assert second.context["entries"][0]["rows"] == [
        {"label": "Skip referral partner notifications", "old": "Off", "new": "On"}
    ]
    assert "Page 1 of 2 · 51 in all" in page_text(first)


def test_history_empty_state(staff_client):
    response = staff_client.get(HISTORY_URL)

    assert response.context["entries"] == []
    assert "No changes yet." in page_text(response)


# --- The form reads and answers well (issue 20) ---------------------------------------------


def test_the_error_summary_lists_every_error_with_a_link_to_its_field(staff_client, programs):
    before = snapshot()
    data = form_data(code_prefix="bad prefix", link_url="ftp://x", duplicate_click_minutes=99999)
    data["tracking_method"] = "pigeon"

    response = staff_client.post(URL, data)

    assert response.status_code == 200
    content = response.content.decode()
    summary = re.search(r"<div class=\"form-errors error-summary\".*?</div>", content, re.S)
    assert summary, content
    links = re.findall(r'<a href="#([\w-]+)" data-field="(\w+)">([^<]*)</a>', summary.group())
    assert [(anchor, name) for anchor, name, _ in links] == [
        ("id_code_prefix", "code_prefix"),
        ("id_link_url", "link_url"),
        ("id_tracking_method", "tracking_method"),
        ("id_duplicate_click_minutes", "duplicate_click_minutes"),
    ]
    assert links[0][2].startswith("Referral partner code prefix: Use up to 16 letters")
    assert "There are 4 problems" in page_text(response)
    assert "data-error-summary" in summary.group() and 'tabindex="-1"' in summary.group()
    # Every anchor names an element on the page.
    for anchor, _, _ in links:
        assert f'id="{anchor}"' in content
    assert snapshot() == before


@pytest.mark.parametrize("parent", ["none", "referring"])
def test_the_chosen_parent_is_not_checked_unless_one_chosen_partner_is_picked(
    staff_client, programs, parent
):
    """The field is hidden then: what it holds is ignored and the stored one kept."""
    house = PartnerFactory(code="house")
    defaults_update(
        data={"signup_parent": "fixed", "signup_parent_partner": house}, acting_user=None
    )

    response = staff_client.post(
        URL,
        form_data(signup_parent=parent, signup_parent_partner="nobody-at-all", levels=3),
    )

    assert response.status_code == 302
    defaults = defaults_get()
    assert (defaults.signup_parent, defaults.signup_parent_partner, defaults.levels) == (
        parent,
        house,
        3,
    )
    assert "signup_parent_partner" not in DefaultsChange.objects.order_by("-pk")[0].changes


def test_payout_checkboxes_are_asked_as_two_questions(staff_client):
    content = staff_client.get(URL).content.decode()
    for legend, boxes in [
        ("Pay commissions on", [("payout_on_lead", "Leads"), ("payout_on_sale", "Sales")]),
        (
            "Pay them as",
            [("payout_amount", "A flat amount"), ("payout_percent", "A percentage")],
        ),
    ]:
        group = re.search(
            rf'<legend class="field-label">{legend}</legend>(.*?)</fieldset>', content, re.S
        )
        assert group, legend
        for name, label in boxes:
            assert re.search(
                rf'<label class="checkbox-label" for="id_{name}"><input[^>]*name="{name}"'
                rf"[^>]*> <span>{label}</span></label>",
                group.group(1),
            ), (name, group.group(1))
    # The history still names them in full.
    defaults_update(data={"payout_on_lead": True}, acting_user=None)
    assert "Pay on leads" in page_text(staff_client.get(HISTORY_URL))


def test_labels_read_as_words_not_fragments(staff_client):
    text = page_text(staff_client.get(URL))
    assert "Partner credited" in text
    assert "Credit the " not in text
    assert "Chosen parent (partner code)" in text


def test_the_save_button_sits_in_a_bar_that_stays_in_view(staff_client):
    content = staff_client.get(URL).content.decode()
    assert re.search(r'<div class="form-actions save-bar">\s*<button type="submit"', content)
