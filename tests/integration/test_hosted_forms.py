"""Hosted web forms: `POST /f/<code>/` from the merchant's pages (SPEC §9)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from commissions.hosted_forms import form_post_count, hosted_form_save
from commissions.models import Contact, Event, FormPostCount, HostedForm, Lead, Referral
from partners.tokens import TokenClick, encode_token, new_click_id
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

THANKS = "https://shop.example/thanks"


@pytest.fixture(autouse=True)
def _redirect_hosts(settings):
    settings.ALLOWED_REDIRECT_HOSTS = ["shop.example"]
    settings.SITE_URL = "https://partners.example"
    settings.HOSTED_FORM_POSTS_PER_MINUTE = 10


@pytest.fixture
def form(db):
    return hosted_form_save(
        hosted_form=HostedForm(
            code="contact-us",
            name="Contact us",
            keep_fields="phone, company",
            thank_you_url=THANKS,
        )
    )


def token_for(partner, *, minutes_ago=5) -> str:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return encode_token([TokenClick(click_id=new_click_id(at), partner_id=partner.pk, at=at)])


def rows() -> tuple[int, int, int, int]:
    return (
        Event.objects.count(),
        Contact.objects.count(),
        Lead.objects.count(),
        Referral.objects.count(),
    )


def post(client, data, code="contact-us", **extra):
    return client.post(f"/f/{code}/", data, **extra)


def test_a_post_records_the_web_form_event_as_the_api_does_and_redirects(client, form, api):
    maria = PartnerFactory(code="maria-lopez")
    token = token_for(maria)

    response = post(
        client,
        {
            "email": " Ada@Example.com ",
            "first_name": "Ada",
            "phone": "+1 555 0100",
            "message": "not a kept field",
            "rp_ref": token,
            "rp_event_id": "a1b2c3",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == THANKS
    event = Event.objects.get()
    assert event.kind == "web_form"
    assert event.event_id == "form-contact-us-a1b2c3"
    assert event.payload["fields"] == {"phone": "+1 555 0100"}  # "message" is not kept
    assert event.payload["ip"] == "127.0.0.1"
    lead = Lead.objects.select_related("contact", "partner").get()
    assert (lead.contact.email, lead.contact.first_name) == ("ada@example.com", "Ada")
    assert (lead.form, lead.partner) == ("contact-us", maria)
    assert lead.trace["source"] == "cookie"
    # The API, given the same event, answers with the same shape and the same credit.
    same = api.post(
        "/api/v1/events/web-forms/",
        {"event_id": "api-1", "contact": {"email": "bob@example.com"}, "tracking_token": token},
        format="json",
    ).json()
    assert set(event.result) == set(same) - {"duplicate"}
    assert event.result["lead_partner"] == same["lead_partner"] == "maria-lopez"
    assert event.result["attribution"] == same["attribution"]
    assert same["attribution"] == {"source": "cookie", "rule": "last"}


def test_without_the_field_the_sites_own_cookie_counts(client, form):
    maria = PartnerFactory(code="maria-lopez")
    client.cookies["rp_ref"] = token_for(maria)

    response = post(client, {"email": "ada@example.com"})

    assert response.status_code == 302
    assert Lead.objects.get().partner == maria


def test_a_valid_field_wins_over_the_cookie_and_a_forged_field_does_not(client, form):
    maria, jon = PartnerFactory(code="maria-lopez"), PartnerFactory(code="jon-doe")
    client.cookies["rp_ref"] = token_for(jon)

    post(client, {"email": "a@example.com", "rp_ref": token_for(maria)})
    post(client, {"email": "b@example.com", "rp_ref": token_for(maria) + "x"})

    assert dict(Lead.objects.values_list("contact__email", "partner__code")) == {
        "a@example.com": "maria-lopez",
        "b@example.com": "jon-doe",
    }


def test_a_form_sent_twice_with_one_event_id_counts_once(client, form):
    data = {"email": "ada@example.com", "rp_event_id": "once"}

    first, second = post(client, data), post(client, data)

    assert first.status_code == second.status_code == 302
    assert second["Location"] == THANKS
    assert rows()[:3] == (1, 1, 1)


def test_a_form_without_thank_you_url_ends_on_the_sites_thank_you_page(client, db):
    hosted_form_save(hosted_form=HostedForm(code="news", name="Newsletter"))

    response = post(client, {"email": "ada@example.com"}, code="news")

    assert response["Location"] == "/f/news/thanks/"
    page = client.get("/f/news/thanks/")
    assert page.status_code == 200
    assert "Newsletter was sent." in page.text


def test_a_thank_you_host_no_longer_allowed_is_not_followed(client, form, settings):
    settings.ALLOWED_REDIRECT_HOSTS = []

    response = post(client, {"email": "ada@example.com"})

    assert response.status_code == 302
    assert response["Location"] == "/f/contact-us/thanks/"
    assert Lead.objects.count() == 1


def test_csrf_is_not_asked_for_and_no_cors_header_is_sent(form):
    browser = Client(enforce_csrf_checks=True)

    response = post(
        browser, {"email": "ada@example.com"}, headers={"origin": "https://shop.example"}
    )

    assert response.status_code == 302
    assert not any(name.lower().startswith("access-control-") for name in response.headers)


# --- Refused paths: nothing is written ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "active"), [("nope", True), ("contact-us", False)], ids=["unknown", "inactive"]
)
def test_an_unknown_or_inactive_form_is_404(client, form, code, active):
    HostedForm.objects.filter(pk=form.pk).update(is_active=active)

    response = post(client, {"email": "ada@example.com"}, code=code)

    assert response.status_code == 404
    assert rows() == (0, 0, 0, 0)
    assert FormPostCount.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"first_name": "Ada"}, "email", "This field may not be blank."),
        ({"email": "a@example.com", "phone": "1" * 2001}, "phone", "At most 2000 characters."),
        ({"email": "a@example.com", "phone": "1\x002"}, "phone", "Null characters"),
        ({"email": "a@example.com", "first_name": "A\x00"}, "first_name", "Null characters"),
        ({"email": "a@example.com", "rp_event_id": "has space"}, "rp_event_id", "visible ASCII"),
    ],
    ids=["bad-email", "no-email", "kept-too-long", "kept-nul", "name-nul", "bad-event-id"],
)
def test_bad_input_is_a_400_page_naming_the_field_and_writes_nothing(
    client, form, data, field, message
):
    maria = PartnerFactory(code="maria-lopez")

    response = post(
        client,
        {**data, "rp_ref": token_for(maria)},
        headers={"referer": "https://shop.example/contact"},
    )

    assert response.status_code == 400
    assert f'data-field="{field}"' in response.text
    assert message in response.text
    assert '<a href="https://shop.example/contact">Back to the form</a>' in response.text
    assert rows() == (0, 0, 0, 0)


def test_the_back_link_never_points_off_the_allowed_hosts(client, form):
    response = post(client, {"email": "x"}, headers={"referer": "https://evil.example/"})

    assert response.status_code == 400
    assert "evil.example" not in response.text


def test_a_filled_honeypot_records_nothing_but_looks_sent(client, form):
    response = post(client, {"email": "bot@example.com", "website": "https://spam.example"})

    assert response.status_code == 302
    assert response["Location"] == THANKS
    assert rows() == (0, 0, 0, 0)


def test_over_the_rate_limit_is_429_and_records_nothing(client, form, settings):
    settings.HOSTED_FORM_POSTS_PER_MINUTE = 2
    for n in range(2):
        assert post(client, {"email": f"a{n}@example.com"}).status_code == 302

    refused = post(client, {"email": "a2@example.com"})
    other_ip = post(client, {"email": "b@example.com"}, REMOTE_ADDR="198.51.100.7")

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "try again in a minute" in refused.text
    assert other_ip.status_code == 302
    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "a0@example.com",
        "a1@example.com",
        "b@example.com",
    ]


def test_get_is_not_allowed(client, form):
    assert client.get("/f/contact-us/").status_code == 405


def test_the_counter_counts_per_ip_and_minute_and_forgets_old_minutes(db):
    now = timezone.now()
    FormPostCount.objects.create(ip="203.0.113.9", started_at=now - timedelta(hours=2), posts=9)

    counts = [form_post_count(ip="203.0.113.1", at=now) for _ in range(3)]
    other = form_post_count(ip="203.0.113.2", at=now)
    next_minute = form_post_count(ip="203.0.113.1", at=now + timedelta(minutes=1))

    assert counts == [1, 2, 3]
    assert (other, next_minute) == (1, 1)
    assert not FormPostCount.objects.filter(ip="203.0.113.9").exists()


def test_a_post_costs_a_fixed_number_of_queries(client, form, django_assert_max_num_queries):
    maria = PartnerFactory(code="maria-lopez")
    for n in range(3):  # a contact with history: the cost must not grow with it
        post(client, {"email": "ada@example.com", "rp_ref": token_for(maria, minutes_ago=n + 1)})

    with django_assert_max_num_queries(11):  # measured: 11
        response = post(client, {"email": "ada@example.com", "rp_ref": token_for(maria)})

    assert response.status_code == 302


# --- Staff define forms --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"thank_you_url": "https://evil.example/x"}, "thank_you_url", "on one of these hosts"),
        ({"thank_you_url": "javascript:alert(1)"}, "thank_you_url", "Enter a valid URL."),
        ({"keep_fields": "phone, email"}, "keep_fields", "Always read, not an extra: email."),
        ({"keep_fields": "phone, bad name"}, "keep_fields", "Not a field name: bad name."),
        ({"honeypot_field": "email"}, "honeypot_field", "a field no person fills"),
        ({"code": "Bad Code"}, "code", "lower-case letters"),
    ],
    ids=["thanks-off-host", "thanks-not-js", "keep-reserved", "keep-bad-name", "honeypot", "code"],
)
def test_a_bad_form_definition_is_refused_naming_the_field(db, fields, field, message):
    draft = HostedForm(**{"code": "contact", "name": "Contact", **fields})

    with pytest.raises(ValidationError) as refused:
        hosted_form_save(hosted_form=draft)

    assert any(message in m for m in refused.value.message_dict[field])
    assert HostedForm.objects.count() == 0


def test_staff_add_a_form_in_the_admin_and_see_its_html(staff_client):
    response = staff_client.post(
        "/admin/commissions/hostedform/add/",
        {
            "code": "Demo",
            "name": "Demo request",
            "keep_fields": "company",
            "thank_you_url": THANKS,
            "honeypot_field": "website",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    saved = HostedForm.objects.get()
    assert saved.code == "demo"
    page = staff_client.get(f"/admin/commissions/hostedform/{saved.pk}/change/")
    assert "https://partners.example/f/demo/" in page.text
    assert "&lt;input name=&quot;company&quot;&gt;" in page.text


def test_the_admin_refuses_an_off_host_thank_you_url_and_writes_nothing(staff_client):
    response = staff_client.post(
        "/admin/commissions/hostedform/add/",
        {
            "code": "demo",
            "name": "Demo",
            "thank_you_url": "https://evil.example/",
            "honeypot_field": "website",
        },
    )

    assert response.status_code == 200
    assert "on one of these hosts: shop.example, partners.example" in response.text
    assert HostedForm.objects.count() == 0


def test_people_who_are_not_staff_cannot_reach_the_forms_admin(client, plain_user):
    client.force_login(plain_user)

    response = client.get("/admin/commissions/hostedform/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
