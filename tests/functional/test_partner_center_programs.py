"""The Partner Center's My programs and My recruits over HTTP (SPEC §12)."""

from decimal import Decimal

import pytest
from django.conf import settings as django_settings

from commissions.models import Commission
from partners.models import PartnerStatus
from partners.services.defaults import defaults_update
from partners.services.programs import program_set_product_rates
from tests.factories import PartnerFactory, ProgramFactory
from tests.functional.test_partner_center import logged_in, page_text, partner_with_login, sell

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def gold(db):
    """Three levels, percent only: 10 %, 5 %, 2 % of sales; BOOK pays 1.50 % at level 1."""
    program = ProgramFactory(
        name="Gold",
        priority=1,
        levels=3,
        payout_amount=False,
        payout_percent=True,
        hold_days=14,
        rates={
            1: {"sale_percent": D("10")},
            2: {"sale_percent": D("5")},
            3: {"sale_percent": D("2")},
        },
    )
    program_set_product_rates(
        program=program,
        product_rates=[{"sku": "BOOK", "rates": [{"level": 1, "sale_percent": D("1.5")}]}],
    )
    return program


def test_my_programs_says_every_rate_in_words_and_the_engine_pays_it(api, gold):
    jane = partner_with_login("jane", program=gold)

    response = logged_in(jane).get("/partner/programs/")

    assert response.status_code == 200
    text = page_text(response)
    assert (
        "You earn 10 % of each sale you refer, and 5 % of the sales of partners you recruit, "
        "and 2 % of the sales of partners your recruits recruit." in text
    )
    assert "On BOOK you earn 1.5 % of each sale you refer." in text
    assert "Payable 14 days after it is earned" in text
    assert "When the order is placed" in text
    # The figure the page shows for a 100.00 item at level 1 is what the engine pays on one.
    [figure] = response.context["structure"][0].rates[:1]
    assert (figure.kind, figure.level, figure.example) == ("sale", 1, D("10.00"))
    sell(api, "o-1", "2026-11-18T10:00:00Z", "100.00", "jane")  # sku A: no product rate
    assert Commission.objects.get(partner=jane).amount == figure.example


def test_a_partner_without_any_program_is_told_so(db):
    jane = partner_with_login("jane")

    text = page_text(logged_in(jane).get("/partner/programs/"))

    assert "No program pays you yet." in text


@pytest.fixture
def family(api, gold):
    """jane recruited bob and eve; bob recruited cy. bob sells 100.00 (jane: level 2, 5.00),
    cy sells 200.00 (jane: level 3 through bob, 2 % = 4.00)."""
    jane = partner_with_login("jane", program=gold)
    bob = PartnerFactory(code="bob", name="Bob", parent=jane, program=gold)
    PartnerFactory(code="eve", name="Eve", parent=jane, program=gold, status=PartnerStatus.PENDING)
    PartnerFactory(code="cy", name="Cy", parent=bob, program=gold)
    sell(api, "o-1", "2026-11-18T10:00:00Z", "100.00", "bob", email="a@example.com")
    sell(api, "o-2", "2026-11-19T10:00:00Z", "200.00", "cy", email="b@example.com")
    return jane


def test_my_recruits_shows_what_was_earned_through_each(family, django_assert_max_num_queries):
    client = logged_in(family)

    with django_assert_max_num_queries(6):  # session, user+partner, defaults, recruits, sums
        response = client.get("/partner/recruits/")

    assert response.status_code == 200
    recruits = {r["code"]: r for r in response.context["recruits"]}
    assert sorted(recruits) == ["bob", "eve"]  # cy is bob's recruit, not jane's
    assert recruits["bob"]["level_2"] == [("USD", D("5.00"))]  # 5 % of 100.00
    assert recruits["bob"]["level_3"] == [("USD", D("4.00"))]  # 2 % of 200.00
    assert recruits["eve"]["level_2"] == recruits["eve"]["level_3"] == []


def test_the_recruits_page_costs_the_same_with_more_recruits(
    family, gold, django_assert_max_num_queries
):
    for n in range(10):
        PartnerFactory(code=f"r{n}", parent=family, program=gold)
    client = logged_in(family)

    with django_assert_max_num_queries(6):
        response = client.get("/partner/recruits/")

    assert len(response.context["recruits"]) == 12


def test_the_recruit_link_leads_through_the_tracker_to_the_sign_up_page(client, family):
    defaults_update(data={"signup_enabled": True}, acting_user=None)

    response = logged_in(family).get("/partner/recruits/")

    link = response.context["recruit_link"]
    assert link == (
        f"{django_settings.SITE_URL}/go/jane/?to="
        + f"{django_settings.SITE_URL}/partner/signup/".replace(":", "%3A").replace("/", "%2F")
    )
    assert f'data-copy="{link}"' in response.content.decode()
    path = link.removeprefix(django_settings.SITE_URL)
    go = client.get(path, headers={"user-agent": "Mozilla/5.0"})
    assert go.status_code == 302
    assert go["Location"].startswith(f"{django_settings.SITE_URL}/partner/signup/?rp_ref=")


def test_without_sign_up_there_is_no_recruit_link(family):
    text = page_text(logged_in(family).get("/partner/recruits/"))

    assert "Sign-up for new partners is closed" in text
