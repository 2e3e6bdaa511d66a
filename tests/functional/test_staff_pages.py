"""Staff pages for partners, programs and tracking links (SPEC §3, §7) over HTTP."""

import html
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import strip_tags

from partners.models import Partner, Program, ProgramRate, TrackingLink
from partners.services.defaults import defaults_update
from tests.factories import (
    PartnerFactory,
    ProgramFactory,
    TrackingLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def page_text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))


def partners_snapshot() -> list[dict]:
    return [model_to_dict(p) for p in Partner.objects.order_by("pk")]


def programs_snapshot() -> tuple[list[dict], list[dict]]:
    return (
        [model_to_dict(p) for p in Program.objects.order_by("pk")],
        [model_to_dict(r) for r in ProgramRate.objects.order_by("pk")],
    )


def links_snapshot() -> list[dict]:
    return [model_to_dict(link) for link in TrackingLink.objects.order_by("pk")]


@pytest.fixture
def objects():
    program = ProgramFactory(name="Gold")
    partner = PartnerFactory(code="jane1", name="Jane Doe", program=program)
    link = TrackingLinkFactory(code="hair", name="Hair care")
    return {"partner": partner, "program": program, "link": link}


# URL name, and the URL's kwargs made from the objects fixture.
PAGES = [
    ("crm:dashboard", None),
    ("staff:settings", None),
    ("staff:partners", None),
    ("staff:partner_create", None),
    ("staff:partner_detail", lambda o: {"code": o["partner"].code}),
    ("staff:partner_update", lambda o: {"code": o["partner"].code}),
    ("staff:programs", None),
    ("staff:program_create", None),
    ("staff:program_detail", lambda o: {"pk": o["program"].pk}),
    ("staff:program_update", lambda o: {"pk": o["program"].pk}),
    ("staff:tracking_links", None),
    ("staff:tracking_link_create", None),
    ("staff:tracking_link_update", lambda o: {"pk": o["link"].pk}),
]


def page_url(name, kwargs, objects) -> str:
    return reverse(name, kwargs=kwargs(objects) if kwargs else None)


@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[name for name, _ in PAGES])
def test_every_page_needs_staff(client, plain_user, staff_user, objects, name, kwargs):
    url = page_url(name, kwargs, objects)
    before = (partners_snapshot(), programs_snapshot(), links_snapshot())

    anonymous = client.get(url)
    client.force_login(plain_user)
    not_staff_get = client.get(url)
    not_staff_post = client.post(url, {"name": "Changed", "code": "changed1"})
    client.force_login(staff_user)
    staff = client.get(url)

    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={url}"
    assert not_staff_get.status_code == 403
    assert not_staff_post.status_code == 403
    assert staff.status_code == 200
    assert (partners_snapshot(), programs_snapshot(), links_snapshot()) == before


def test_root_and_login_lead_to_the_staff_home(client, staff_user):
    root = client.get("/")
    login = client.post(
        "/accounts/login/", {"username": staff_user.username, "password": "correct-horse-battery"}
    )

    assert root.status_code == 302
    assert root["Location"] == "/staff/"
    assert login.status_code == 302
    assert login["Location"] == "/staff/"


def test_nav_has_every_entry_and_a_post_logout(staff_client):
    content = staff_client.get("/staff/").content.decode()

    for href, label in [
        ("/staff/partners/", "Partners"),
        ("/staff/programs/", "Programs"),
        ("/staff/tracking-links/", "Tracking links"),
        ("/staff/settings/", "Settings"),
        ("/admin/", "Admin"),
        ("/api/docs/", "API docs"),
    ]:
        assert f'<a href="{href}">{label}</a>' in content
    assert '<form class="logout-form" method="post" action="/accounts/logout/">' in content


# --- Partners -------------------------------------------------------------------------------


def test_partner_list_search_and_status_filter(staff_client):
    PartnerFactory(code="alice1", name="Alice", email="alice@example.com")
    PartnerFactory(code="bob01", name="Bob", email="bob@shop.example", status="inactive")
    PartnerFactory(code="carol1", name="Carol", email="carol@shop.example")

    def codes(**params):
        response = staff_client.get("/staff/partners/", params)
        return [partner.code for partner in response.context["object_list"]]

    assert codes() == ["alice1", "bob01", "carol1"]
    assert codes(q="SHOP.example") == ["bob01", "carol1"]
    assert codes(q="alic") == ["alice1"]
    assert codes(q="CAROL1") == ["carol1"]
    assert codes(status="inactive") == ["bob01"]
    assert codes(status="active", q="shop") == ["carol1"]
    assert codes(q="nobody") == []


def test_partner_list_is_paginated(staff_client):
    PartnerFactory.create_batch(51)

    first = staff_client.get("/staff/partners/")
    second = staff_client.get("/staff/partners/", {"page": 2})

    assert len(first.context["object_list"]) == 50
    assert len(second.context["object_list"]) == 1


def _make_partners(count: int) -> None:
    program = ProgramFactory()
    parent = PartnerFactory()
    for _ in range(count - 1):
        PartnerFactory(parent=parent, program=program)


def test_partner_list_queries_do_not_grow(staff_client, django_assert_max_num_queries):
    _make_partners(1)
    with CaptureQueriesContext(connection) as one:
        assert staff_client.get("/staff/partners/").status_code == 200
    _make_partners(29)
    assert Partner.objects.count() == 30

    with django_assert_max_num_queries(len(one.captured_queries)):
        response = staff_client.get("/staff/partners/")

    assert len(response.context["object_list"]) == 30


def test_partner_detail_by_code_ignoring_case_with_links(staff_client, objects):
    defaults_update(
        data={"code_prefix": "vip-", "link_url": "https://go.example.com"}, acting_user=None
    )
    partner = objects["partner"]
    child = PartnerFactory(code="kid01", parent=partner)

    response = staff_client.get("/staff/partners/JANE1/")

    assert response.status_code == 200
    assert response.context["partner"] == partner
    assert list(response.context["children"]) == [child]
    assert response.context["program"] == objects["program"]
    assert [link["url"] for link in response.context["links"]] == [
        "https://go.example.com/go/vip-jane1/",
        "https://go.example.com/go/hair/vip-jane1/",
    ]
    content = response.content.decode()
    assert 'data-copy="https://go.example.com/go/vip-jane1/"' in content
    assert 'data-copy="https://go.example.com/go/hair/vip-jane1/"' in content
    assert "Jane Doe" in content
    assert "kid01" in content


def test_partner_detail_unknown_code_is_404(staff_client):
    assert staff_client.get("/staff/partners/nobody/").status_code == 404


def test_partner_create(staff_client, objects):
    parent = objects["partner"]
    program = objects["program"]

    response = staff_client.post(
        "/staff/partners/new/",
        {
            "code": "Bob-22",
            "name": "Bob Smith",
            "email": "bob@example.com",
            "parent": "JANE1",
            "program": str(program.pk),
            "status": "active",
            "cookie_days": "30",
            "notify_sale": "on",
        },
        follow=True,
    )

    partner = Partner.objects.get(code="Bob-22")
    assert response.redirect_chain == [("/staff/partners/Bob-22/", 302)]
    assert [str(m) for m in response.context["messages"]] == ["Partner Bob-22 created."]
    assert model_to_dict(partner, exclude=["id"]) == {
        "code": "Bob-22",
        "name": "Bob Smith",
        "email": "bob@example.com",
        "parent": parent.pk,
        "program": program.pk,
        "status": "active",
        "cookie_days": 30,
        "notify_lead": False,
        "notify_sale": True,
        "user": None,
        "programs": [program],  # writing `program` enrolls in it (SPEC §10)
    }


def test_partner_create_makes_a_code_from_the_name(staff_client):
    staff_client.post(
        "/staff/partners/new/",
        {"code": "", "name": "Jane O'Neil", "email": "jane@example.com", "status": "active"},
    )

    partner = Partner.objects.get()
    assert partner.code == "jane-oneil"
    assert partner.parent is None
    assert partner.program is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"code": "JANE1"}, "code", id="code-taken-other-case"),
        pytest.param({"code": "1abc"}, "code", id="code-starts-with-digit"),
        pytest.param({"parent": "nobody"}, "parent", id="unknown-parent"),
        pytest.param({"email": "not-an-email"}, "email", id="bad-email"),
        pytest.param({"cookie_days": "0"}, "cookie_days", id="cookie-days-0"),
    ],
)
def test_partner_create_refused(staff_client, objects, changes, field):
    before = partners_snapshot()
    data = {"code": "newone", "name": "New", "email": "new@example.com", "status": "active"}

    response = staff_client.post("/staff/partners/new/", {**data, **changes})

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert partners_snapshot() == before


def test_partner_create_needs_the_add_permission(client, objects):
    client.force_login(UserFactory(is_staff=True))
    before = partners_snapshot()

    response = client.post(
        "/staff/partners/new/",
        {"code": "newone", "name": "New", "email": "new@example.com", "status": "active"},
    )

    assert response.status_code == 403
    assert partners_snapshot() == before


def test_partner_edit(staff_client, objects):
    partner = objects["partner"]
    parent = PartnerFactory(code="boss1")

    get = staff_client.get("/staff/partners/jane1/edit/")
    response = staff_client.post(
        "/staff/partners/jane1/edit/",
        {
            "code": "jane1",
            "name": "Jane Smith",
            "email": "jane@example.com",
            "parent": "BOSS1",
            "program": "",
            "status": "inactive",
            "cookie_days": "",
            "notify_lead": "on",
        },
    )

    assert get.context["form"]["parent"].value() is None
    assert response.status_code == 302
    assert response["Location"] == "/staff/partners/jane1/"
    partner.refresh_from_db()
    assert model_to_dict(partner, exclude=["id", "code", "user"]) == {
        "name": "Jane Smith",
        "email": "jane@example.com",
        "parent": parent.pk,
        "program": None,
        "status": "inactive",
        "cookie_days": None,
        "notify_lead": True,
        "notify_sale": False,
        "programs": [],
    }
    assert staff_client.get("/staff/partners/jane1/edit/").context["form"]["parent"].value() == (
        "boss1"
    )


def test_partner_edit_refuses_a_cycle(staff_client):
    top = PartnerFactory(code="top01")
    PartnerFactory(code="low01", parent=top)
    before = partners_snapshot()

    response = staff_client.post(
        "/staff/partners/top01/edit/",
        {
            "code": "top01",
            "name": "Top",
            "email": "top@example.com",
            "parent": "low01",
            "status": "active",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "parent": ["This parent would make a cycle: the partner is already above them in the tree."]
    }
    assert response.context["object"].name == top.name
    assert partners_snapshot() == before


def test_partner_service_error_goes_onto_the_form(staff_client, objects, monkeypatch):
    from django.core.exceptions import ValidationError

    def refuse(**kwargs):
        raise ValidationError({"parent": "Refused.", "rates": "Not a field here."})

    monkeypatch.setattr("partners.views.partner_update", refuse)
    before = partners_snapshot()

    response = staff_client.post(
        "/staff/partners/jane1/edit/",
        {"code": "jane1", "name": "Jane", "email": "jane@example.com", "status": "active"},
    )

    assert response.context["form"].errors == {
        "parent": ["Refused."],
        "__all__": ["Not a field here."],
    }
    assert partners_snapshot() == before


# --- Programs -------------------------------------------------------------------------------


def rate_data(**rates: str) -> dict[str, str]:
    """Every rate field of the program form, empty unless given."""
    names = ("lead_amount", "lead_percent", "sale_amount", "sale_percent")
    data = {f"rate_{level}_{name}": "" for level in (1, 2, 3) for name in names}
    data.update(rates)
    return data


def rates_of(program: Program) -> list[tuple]:
    return list(
        program.rates.order_by("level").values_list(
            "level", "lead_amount", "lead_percent", "sale_amount", "sale_percent"
        )
    )


def test_program_create_with_rates(staff_client):
    defaults_update(data={"levels": 3, "payout_percent": True}, acting_user=None)

    response = staff_client.post(
        "/staff/programs/new/",
        {
            "name": "Gold",
            "notes": "For top partners.",
            "priority": "10",
            "unused_lead_amount": "",
            "unused_lead_percent": "",
            "unused_sale_amount": "2.5",
            "unused_sale_percent": "25",
            **rate_data(
                rate_1_lead_amount="5.50",
                rate_1_sale_percent="20",
                rate_2_sale_percent="10",
                rate_3_sale_percent="2.125",
                rate_3_sale_amount="0.01",
            ),
        },
        follow=True,
    )

    program = Program.objects.get()
    assert response.redirect_chain == [(f"/staff/programs/{program.pk}/", 302)]
    assert [str(m) for m in response.context["messages"]] == ["Program Gold created."]
    assert (program.name, program.notes, program.priority) == ("Gold", "For top partners.", 10)
    assert program.structure() == {
        "levels": 3,
        "payout_on_lead": False,
        "payout_on_sale": True,
        "payout_amount": True,
        "payout_percent": True,
        "pay_if_unused": False,
    }
    assert (
        program.unused_lead_amount,
        program.unused_lead_percent,
        program.unused_sale_amount,
        program.unused_sale_percent,
    ) == (Decimal("0.00"), Decimal("0.0000"), Decimal("2.50"), Decimal("25.0000"))
    assert rates_of(program) == [
        (1, Decimal("5.50"), Decimal("0.0000"), Decimal("0.00"), Decimal("20.0000")),
        (2, Decimal("0.00"), Decimal("0.0000"), Decimal("0.00"), Decimal("10.0000")),
        (3, Decimal("0.00"), Decimal("0.0000"), Decimal("0.01"), Decimal("2.1250")),
    ]
    detail = page_text(response)
    assert "Level 1 5.50 0 % 0.00 20 %" in detail
    assert "Level 3 0.00 0 % 0.01 2.125 %" in detail


def test_program_edit_keeps_other_rates(staff_client):
    program = ProgramFactory(
        name="Silver",
        priority=5,
        rates={1: {"sale_percent": Decimal("20")}, 2: {"sale_percent": Decimal("10")}},
    )

    form = staff_client.get(f"/staff/programs/{program.pk}/edit/").context["form"]
    data = {
        name: ("" if value is None else value)
        for name, value in ((name, form[name].value()) for name in form.fields)
    }
    response = staff_client.post(
        f"/staff/programs/{program.pk}/edit/",
        {**data, "name": "Silver plus", "rate_2_sale_percent": "12.5", "rate_3_lead_amount": "1"},
    )

    assert form["rate_1_sale_percent"].value() == "20"
    assert response.status_code == 302
    program.refresh_from_db()
    assert (program.name, program.priority) == ("Silver plus", 5)
    assert rates_of(program) == [
        (1, Decimal("0.00"), Decimal("0.0000"), Decimal("0.00"), Decimal("20.0000")),
        (2, Decimal("0.00"), Decimal("0.0000"), Decimal("0.00"), Decimal("12.5000")),
        (3, Decimal("1.00"), Decimal("0.0000"), Decimal("0.00"), Decimal("0.0000")),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param(
            {"rate_1_sale_percent": "100.5"}, "rate_1_sale_percent", id="percent-over-100"
        ),
        pytest.param({"rate_2_lead_amount": "-1"}, "rate_2_lead_amount", id="negative-amount"),
        pytest.param({"rate_3_sale_amount": "1.234"}, "rate_3_sale_amount", id="three-decimals"),
        pytest.param({"unused_sale_percent": "abc"}, "unused_sale_percent", id="not-a-number"),
        pytest.param({"name": ""}, "name", id="no-name"),
    ],
)
def test_program_edit_refused(staff_client, changes, field):
    program = ProgramFactory(name="Silver", rates={1: {"sale_percent": Decimal("20")}})
    before = programs_snapshot()

    response = staff_client.post(
        f"/staff/programs/{program.pk}/edit/",
        {"name": "Renamed", "priority": "1", **rate_data(rate_1_sale_percent="30"), **changes},
    )

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert programs_snapshot() == before


def test_program_detail_shows_structure_read_only(staff_client):
    program = ProgramFactory(name="Gold", rates={2: {"sale_percent": Decimal("7.5")}})

    response = staff_client.get(f"/staff/programs/{program.pk}/")

    text = page_text(response)
    assert [row["sale_percent"] for row in response.context["rate_rows"]] == ["0", "7.5", "0"]
    assert [row["paid"] for row in response.context["rate_rows"]] == [True, True, False]
    assert "These follow the Referral Partner Defaults and change only there" in text
    assert "Level 3 (not paid)" in text
    assert 'name="levels"' not in response.content.decode()


def test_program_list_marks_the_default(staff_client):
    first = ProgramFactory(name="Main", priority=1)
    ProgramFactory(name="Other", priority=2)
    PartnerFactory(program=first)

    response = staff_client.get("/staff/programs/")

    assert response.context["default_program_id"] == first.pk
    assert [(p.name, p.partner_count) for p in response.context["object_list"]] == [
        ("Main", 1),
        ("Other", 0),
    ]


# --- Tracking links ---------------------------------------------------------------------------


def test_tracking_link_create_and_make_default(staff_client):
    old_default = TrackingLinkFactory(code="home", is_default=True)

    response = staff_client.post(
        "/staff/tracking-links/new/",
        {
            "code": "haircare",
            "name": "Hair care",
            "destination": "https://shop.example/hair",
            "is_default": "on",
        },
        follow=True,
    )

    link = TrackingLink.objects.get(code="haircare")
    assert response.redirect_chain == [("/staff/tracking-links/", 302)]
    assert [str(m) for m in response.context["messages"]] == ["Tracking link haircare created."]
    assert (link.name, link.destination, link.is_default) == (
        "Hair care",
        "https://shop.example/hair",
        True,
    )
    old_default.refresh_from_db()
    assert old_default.is_default is False
    assert "http://127.0.0.1:8000/go/haircare/CODE/" in page_text(response)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"destination": "javascript:alert(1)"}, "destination", id="javascript-url"),
        pytest.param({"code": "hair"}, "code", id="code-taken"),
        pytest.param({"code": "has space"}, "code", id="code-with-space"),
    ],
)
def test_tracking_link_create_refused(staff_client, changes, field):
    TrackingLinkFactory(code="hair")
    before = links_snapshot()
    data = {"code": "newlink", "name": "New", "destination": "https://shop.example/new"}

    response = staff_client.post("/staff/tracking-links/new/", {**data, **changes})

    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert links_snapshot() == before


def test_tracking_link_edit(staff_client):
    link = TrackingLinkFactory(code="hair", name="Hair", destination="https://shop.example/a")

    response = staff_client.post(
        f"/staff/tracking-links/{link.pk}/edit/",
        {"code": "hair", "name": "Hair care", "destination": "https://shop.example/b"},
    )

    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.code, link.name, link.destination, link.is_default) == (
        "hair",
        "Hair care",
        "https://shop.example/b",
        False,
    )


@pytest.mark.parametrize(
    ("url", "data"),
    [
        pytest.param(
            "/staff/programs/new/", {"name": "Gold", "priority": "1", **rate_data()}, id="program"
        ),
        pytest.param(
            "/staff/tracking-links/new/",
            {"code": "newlink", "name": "New", "destination": "https://shop.example/new"},
            id="tracking-link",
        ),
    ],
)
def test_create_needs_the_add_permission(client, url, data):
    client.force_login(UserFactory(is_staff=True))
    before = (programs_snapshot(), links_snapshot())

    response = client.post(url, data)

    assert response.status_code == 403
    assert (programs_snapshot(), links_snapshot()) == before
