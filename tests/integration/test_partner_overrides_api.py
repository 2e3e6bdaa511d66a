"""Partner overrides over the API (SPEC §10): `/api/v1/partners/{code}/rates/`."""

import pytest
from django.contrib.auth.models import Permission

from partners.models import PartnerOverride
from tests.factories import PartnerFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

RATES = {
    "lead_amount": "0.00",
    "lead_percent": "0.0000",
    "sale_amount": "5.00",
    "sale_percent": "12.5000",
}


def stored() -> list[dict]:
    return list(PartnerOverride.objects.order_by("pk").values())


@pytest.fixture
def ann(db):
    return PartnerFactory(code="ann1")


@pytest.fixture
def gold(db):
    return ProgramFactory(name="Gold")


def test_create_list_retrieve_update_delete(api, ann, gold):
    url = "/api/v1/partners/ANN1/rates/"  # the code in any case

    made = api.post(url, {"program": gold.pk, "sku": "HAIR", "level": 1, **RATES}, format="json")
    every = api.post(url, {"program": gold.pk, "level": 2, "sale_percent": "3"}, format="json")

    assert made.status_code == 201, made.content
    assert made.json() == {"id": made.json()["id"], "program": gold.pk, "sku": "HAIR",
                           "level": 1, **RATES}  # fmt: skip
    assert every.status_code == 201, every.content
    assert every.json()["sku"] is None
    assert every.json()["sale_percent"] == "3.0000"
    listed = api.get(url)
    assert listed.status_code == 200
    ids = [row["id"] for row in listed.json()["results"]]
    assert ids == [made.json()["id"], every.json()["id"]]
    one = f"{url}{made.json()['id']}/"
    assert api.get(one).json() == made.json()

    patched = api.patch(one, {"sale_amount": "7.5"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["sale_amount"] == "7.50"
    assert patched.json()["sku"] == "HAIR"  # a PATCH keeps what it does not name
    put = api.put(one, {"program": gold.pk, "sku": None, "level": 1, **RATES}, format="json")
    assert put.status_code == 200, put.content
    assert put.json()["sku"] is None

    assert api.delete(one).status_code == 204
    assert list(PartnerOverride.objects.values_list("pk", flat=True)) == [every.json()["id"]]


def test_another_partners_override_is_not_found_under_this_partner(api, ann, gold):
    bob = PartnerFactory(code="bob1")
    theirs = PartnerOverride.objects.create(partner=bob, program=gold, level=1)

    assert api.get(f"/api/v1/partners/ann1/rates/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/v1/partners/ann1/rates/{theirs.pk}/").status_code == 404
    assert api.get("/api/v1/partners/ann1/rates/").json()["results"] == []
    assert PartnerOverride.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"level": 1}, "program", id="no-program"),
        pytest.param({"program": 999999, "level": 1}, "program", id="unknown-program"),
        pytest.param({"program": "GOLD", "level": 1}, "program", id="program-not-an-id"),
        pytest.param({"program": None, "level": 1}, "level", id="no-level"),
        pytest.param({"program": None, "level": 4}, "level", id="level-4"),
        pytest.param({"program": None, "level": 0}, "level", id="level-0"),
        pytest.param({"program": None, "level": 1, "sku": ""}, "sku", id="blank-sku"),
        pytest.param({"program": None, "level": 1, "sku": "x" * 101}, "sku", id="long-sku"),
        pytest.param({"program": None, "level": 1, "sale_amount": "-1"}, "sale_amount",
                     id="negative-amount"),
        pytest.param({"program": None, "level": 1, "sale_percent": "100.5"}, "sale_percent",
                     id="percent-over-100"),
        pytest.param({"program": None, "level": 1, "lead_amount": "1.234"}, "lead_amount",
                     id="three-decimals"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_field_and_writes_nothing(api, ann, gold, body, field):
    if body.get("program", 0) is None:
        body = {**body, "program": gold.pk}
    if "level" in body and field == "level" and body["level"] == 1:
        body.pop("level")

    response = api.post("/api/v1/partners/ann1/rates/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert stored() == []


def test_a_second_override_for_the_same_program_sku_and_level_is_400(api, ann, gold):
    PartnerOverride.objects.create(partner=ann, program=gold, sku="HAIR", level=1)
    PartnerOverride.objects.create(partner=ann, program=gold, sku=None, level=1)
    before = stored()

    for sku in ("HAIR", None):
        response = api.post(
            "/api/v1/partners/ann1/rates/",
            {"program": gold.pk, "sku": sku, "level": 1, **RATES},
            format="json",
        )
        assert response.status_code == 400, sku
        assert response.json() == {
            "sku": ["This partner already has an override for this program, sku and level."]
        }
    assert stored() == before


def test_a_change_into_another_overrides_place_is_400_and_changes_nothing(api, ann, gold):
    PartnerOverride.objects.create(partner=ann, program=gold, sku="HAIR", level=1)
    other = PartnerOverride.objects.create(partner=ann, program=gold, sku="NAIL", level=1)
    before = stored()

    response = api.patch(f"/api/v1/partners/ann1/rates/{other.pk}/", {"sku": "HAIR"}, format="json")

    assert response.status_code == 400
    assert "sku" in response.json()
    assert stored() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_partner_is_404_and_writes_nothing(api, gold, method):
    body = {"program": gold.pk, "level": 1, **RATES} if method == "post" else None
    response = getattr(api, method)("/api/v1/partners/nobody/rates/", body, format="json")

    assert response.status_code == 404
    assert response.json() == {"code": ["No partner has the code nobody."]}
    assert stored() == []


def test_an_unknown_partner_is_404_before_a_bad_body(api):
    response = api.post("/api/v1/partners/nobody/rates/", {"level": 9}, format="json")

    assert response.status_code == 404


def test_without_a_key_or_staff_nothing_is_read_or_written(client, ann, gold):
    PartnerOverride.objects.create(partner=ann, program=gold, level=1)
    before = stored()
    client.force_login(UserFactory())  # logged in, not staff

    assert client.get("/api/v1/partners/ann1/rates/").status_code == 403
    response = client.post(
        "/api/v1/partners/ann1/rates/",
        {"program": gold.pk, "level": 2},
        content_type="application/json",
    )
    assert response.status_code == 403
    client.logout()
    assert client.get("/api/v1/partners/ann1/rates/").status_code in (401, 403)
    assert stored() == before


def test_staff_write_needs_the_models_permission(client, ann, gold):
    staff_user = UserFactory(is_staff=True)
    client.force_login(staff_user)
    url = "/api/v1/partners/ann1/rates/"

    assert client.get(url).status_code == 200
    refused = client.post(url, {"program": gold.pk, "level": 1}, content_type="application/json")
    assert refused.status_code == 403
    assert stored() == []

    staff_user.user_permissions.add(
        Permission.objects.get(codename="add_partneroverride"),
        Permission.objects.get(codename="delete_partneroverride"),
    )
    client.force_login(staff_user)
    made = client.post(url, {"program": gold.pk, "level": 1}, content_type="application/json")
    assert made.status_code == 201
    assert client.delete(f"{url}{made.json()['id']}/").status_code == 204


def test_the_list_reads_in_constant_queries(api, ann, django_assert_max_num_queries):
    for n in range(20):
        PartnerOverride.objects.create(partner=ann, program=ProgramFactory(), level=1 + n % 3)

    with django_assert_max_num_queries(5):  # key, partner, count, page
        response = api.get("/api/v1/partners/ann1/rates/")

    assert len(response.json()["results"]) == 20


# --- The admin ---------------------------------------------------------------------------


def test_the_admin_adds_lists_refuses_a_twin_and_deletes(staff_client, ann, gold):
    add = "/admin/partners/partneroverride/add/"
    body = {"partner": ann.pk, "program": gold.pk, "level": "2", "sku": "", **RATES}

    assert staff_client.get(add).status_code == 200
    made = staff_client.post(add, body)
    assert made.status_code == 302, made.context["adminform"].form.errors
    [saved] = PartnerOverride.objects.all()
    assert (saved.sku, saved.level, str(saved.sale_percent)) == (None, 2, "12.5000")
    twin = staff_client.post(add, body)
    assert twin.status_code == 200  # the form again, with the error
    assert PartnerOverride.objects.count() == 1
    listed = staff_client.get("/admin/partners/partneroverride/")
    assert listed.status_code == 200
    assert ann.code in listed.content.decode()

    deleted = staff_client.post(
        f"/admin/partners/partneroverride/{saved.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert stored() == []


def test_the_admin_is_refused_to_staff_without_rights(client, ann, gold):
    client.force_login(UserFactory(is_staff=True))

    assert client.get("/admin/partners/partneroverride/").status_code == 403


def test_the_schema_describes_the_overrides(staff_client):
    schema = staff_client.get("/api/schema/", {"format": "json"}).json()

    listed = schema["paths"]["/api/v1/partners/{code}/rates/"]
    one = schema["paths"]["/api/v1/partners/{code}/rates/{id}/"]
    assert {m for m in listed if m != "parameters"} == {"get", "post"}
    assert {m for m in one if m != "parameters"} == {"get", "put", "patch", "delete"}
    for operation in [*listed.values(), *one.values()]:
        if isinstance(operation, dict) and "responses" in operation:
            assert "404" in operation["responses"]
            assert {"apiKey": []} in operation["security"]
    created = listed["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][created["$ref"].rsplit("/", 1)[-1]]
    assert component["properties"]["sku"]["nullable"] is True
    assert component["properties"]["level"]["maximum"] == 3
    assert set(component["properties"]) == {
        "id", "program", "sku", "level", "lead_amount", "lead_percent", "sale_amount",
        "sale_percent",
    }  # fmt: skip
