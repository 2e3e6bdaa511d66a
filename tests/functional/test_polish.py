"""Nothing left from development on the pages users see (issue 20): error pages inside the
layout, one way to show "nothing", dates in one format, contacts dated by their first
event."""

import re
from datetime import UTC, datetime

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from commissions.models import Contact
from tests.factories import PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

NOTHING = (
    '<span class="muted nothing"><span aria-hidden="true">—</span>'
    '<span class="visually-hidden">none</span></span>'
)


def test_a_missing_page_is_answered_inside_the_layout(staff_client):
    response = staff_client.get("/staff/partners/nobody-here/")
    html = response.content.decode()
    assert response.status_code == 404
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html
    assert "This page does not exist" in html
    assert 'href="/staff/">Go to the dashboard</a>' in html
    anonymous = Client().get("/no-such-page/").content.decode()
    assert 'href="/">Go to the start page</a>' in anonymous


def test_a_refused_page_says_why_inside_the_layout(client):
    client.force_login(UserFactory(username="visitor"))
    response = client.get("/staff/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "You may not open this page" in html
    assert "You are logged in as visitor." in html
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html


def test_a_refused_write_says_what_is_allowed(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    response = client.post("/staff/signups/", {"decide": "approve"})
    assert response.status_code == 403
    assert "You may look at sign-ups but not decide on them." in response.content.decode()


def test_the_server_error_page_needs_nothing_that_could_fail_again():
    response = server_error(RequestFactory().get("/staff/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html


def test_nothing_is_shown_one_way(staff_client, api):
    PartnerFactory(code="lone")  # no parent
    response = api.post(
        "/api/v1/events/orders/",
        {
            "event_id": "o1",
            "contact": {"email": "ada@example.com"},
            "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
        },
        format="json",
    )
    assert response.status_code == 201
    pages = [
        staff_client.get("/staff/orders/"),
        staff_client.get("/staff/orders/o1/"),
        staff_client.get("/staff/contacts/"),
        staff_client.get("/staff/partners/"),
        staff_client.get("/staff/partners/lone/"),
    ]
    for page in pages:
        html = page.content.decode()
        assert NOTHING in html, page.wsgi_request.path
        assert ">None<" not in html, page.wsgi_request.path
        assert '<span class="muted">—</span>' not in html, page.wsgi_request.path


@pytest.mark.parametrize(
    "url",
    ["/staff/orders/", "/staff/reports/ledger/", "/staff/payouts/", "/staff/?days=30"],
)
def test_date_fields_take_the_format_the_pages_show(staff_client, url):
    html = staff_client.get(url).content.decode()
    inputs = re.findall(r"<input[^>]*name=\"(?:start|end)\"[^>]*>", html)
    assert inputs, url
    for tag in inputs:
        assert 'type="text"' in tag and 'placeholder="YYYY-MM-DD"' in tag, tag
    assert 'type="date"' not in html


def test_a_contact_is_dated_by_its_first_event_not_by_when_it_was_written(staff_client, api):
    for event_id, day in (("later", "2026-10-05"), ("first", "2026-03-02")):
        assert (
            api.post(
                "/api/v1/events/orders/",
                {
                    "event_id": event_id,
                    "occurred_at": f"{day}T12:00:00Z",
                    "contact": {"email": "ada@example.com"},
                    "items": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
                },
                format="json",
            ).status_code
            == 201
        )
    web_form = {
        "event_id": "w1",
        "occurred_at": "2026-04-01T08:00:00Z",
        "contact": {"email": "ada@example.com"},
    }
    assert api.post("/api/v1/events/web-forms/", web_form, format="json").status_code == 201
    contact = Contact.objects.get()
    Contact.objects.filter(pk=contact.pk).update(created_at=datetime(2026, 11, 30, tzinfo=UTC))

    listed = staff_client.get("/staff/contacts/")
    detail = staff_client.get(f"/staff/contacts/{contact.pk}/").content.decode()

    assert listed.context["object_list"][0].since == datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert '<td class="nowrap">2026-03-02</td>' in listed.content.decode()
    assert "contact since 2026-03-02" in detail
