"""SPEC §3: partner codes, parents without cycles, generated links."""

import pytest
from django.core.exceptions import ValidationError

from partners.models import Partner
from partners.selectors import partner_link, partner_links
from partners.services.defaults import defaults_update
from partners.services.partners import partner_create, partner_update, partners_set_parent
from tests.factories import PartnerFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "code",
    ["jane", "Jane_Doe-2", "a123", "x" * 32, "Z-_-"],
    ids=["lower", "mixed", "letter-digits", "32-chars", "symbols-after-letter"],
)
def test_codes_accepted(code):
    partner = partner_create(data={"code": code, "name": "Jane", "email": "jane@example.com"})
    assert Partner.objects.get(pk=partner.pk).code == code


@pytest.mark.parametrize(
    "code",
    ["abc", "x" * 33, "1abc", "-abc", "_abc", "ja ne", "jane!", "jané", "jane\n"],
    ids=[
        "3-chars",
        "33-chars",
        "starts-digit",
        "starts-hyphen",
        "starts-underscore",
        "space",
        "punctuation",
        "non-ascii",
        "trailing-newline",
    ],
)
def test_codes_refused(code):
    with pytest.raises(ValidationError) as error:
        partner_create(data={"code": code, "name": "Jane", "email": "jane@example.com"})
    assert "code" in error.value.message_dict
    assert Partner.objects.count() == 0


def test_codes_are_unique_without_regard_to_case():
    PartnerFactory(code="Jane")
    with pytest.raises(ValidationError) as error:
        partner_create(data={"code": "jANE", "name": "Other", "email": "o@example.com"})
    assert error.value.message_dict["code"] == [
        "A partner with this code already exists (codes ignore case)."
    ]
    assert list(Partner.objects.values_list("code", flat=True)) == ["Jane"]


def test_code_is_made_from_the_name_when_not_given():
    first = partner_create(data={"name": "Jane O'Neil", "email": "j@example.com"})
    second = partner_create(data={"name": "Jane O'Neil", "email": "j2@example.com"})
    digits = partner_create(data={"name": "42", "email": "n@example.com"})
    assert (first.code, second.code, digits.code) == ("jane-oneil", "jane-oneil-2", "p-42")


def test_a_partner_cannot_be_its_own_parent():
    jane = PartnerFactory()
    with pytest.raises(ValidationError) as error:
        partner_update(partner=jane, data={"parent": jane})
    assert "parent" in error.value.message_dict
    assert Partner.objects.get(pk=jane.pk).parent is None


def test_a_cycle_of_two_is_refused():
    a = PartnerFactory()
    b = PartnerFactory(parent=a)
    with pytest.raises(ValidationError) as error:
        partner_update(partner=Partner.objects.get(pk=a.pk), data={"parent": b})
    assert "cycle" in error.value.message_dict["parent"][0]
    assert Partner.objects.get(pk=a.pk).parent_id is None


def test_a_cycle_of_three_is_refused():
    a = PartnerFactory()
    b = PartnerFactory(parent=a)
    c = PartnerFactory(parent=b)
    with pytest.raises(ValidationError) as error:
        partner_update(partner=Partner.objects.get(pk=a.pk), data={"parent": c})
    assert "parent" in error.value.message_dict
    assert Partner.objects.get(pk=a.pk).parent_id is None


def test_bulk_set_parent_refuses_a_cycle_and_changes_nothing():
    a = PartnerFactory()
    b = PartnerFactory(parent=a)
    other = PartnerFactory()
    with pytest.raises(ValidationError):
        partners_set_parent(partners=Partner.objects.filter(pk__in=[a.pk, other.pk]), parent=b)
    assert dict(Partner.objects.values_list("pk", "parent_id")) == {
        a.pk: None,
        b.pk: a.pk,
        other.pk: None,
    }


def test_bulk_set_parent_moves_the_chosen_partners():
    boss = PartnerFactory()
    a, b, c = PartnerFactory(), PartnerFactory(), PartnerFactory()
    updated = partners_set_parent(partners=Partner.objects.filter(pk__in=[a.pk, b.pk]), parent=boss)
    assert updated == 2
    assert dict(Partner.objects.values_list("pk", "parent_id")) == {
        boss.pk: None,
        a.pk: boss.pk,
        b.pk: boss.pk,
        c.pk: None,
    }


@pytest.mark.parametrize(
    ("prefix", "link_url", "expected"),
    [
        ("", "", "http://127.0.0.1:8000/go/jane/"),
        ("vip-", "", "http://127.0.0.1:8000/go/vip-jane/"),
        ("vip-", "https://go.shop.example", "https://go.shop.example/go/vip-jane/"),
        ("", "https://go.shop.example/", "https://go.shop.example/go/jane/"),
    ],
    ids=["site-url", "prefix", "prefix-and-link-url", "link-url-trailing-slash"],
)
def test_link_follows_prefix_and_link_url(settings, prefix, link_url, expected):
    settings.SITE_URL = "http://127.0.0.1:8000"
    defaults_update(data={"code_prefix": prefix, "link_url": link_url}, acting_user=None)
    assert partner_link(PartnerFactory(code="jane")) == expected


def test_links_for_every_tracking_link(settings):
    settings.SITE_URL = "https://aff.example"
    defaults_update(data={"code_prefix": "p-"}, acting_user=None)
    TrackingLinkFactory(code="haircare", destination="https://shop.example/hair")
    urls = [link["url"] for link in partner_links(PartnerFactory(code="jane"))]
    assert urls == ["https://aff.example/go/p-jane/", "https://aff.example/go/haircare/p-jane/"]
