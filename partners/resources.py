"""CSV import and export of partners in the admin (django-import-export).

Columns: code, name, email, parent (a partner code), program (a program id), status,
cookie_days, notify_lead, notify_sale. Rows are matched by `code` (exactly as written):
a known code updates that partner, a new one creates a partner. A parent must exist or
be defined on an earlier line of the same file; the export lists parents before their
children, so an exported file can be imported into an empty installation.

A file is all or nothing: every row is checked with the model's full_clean (code rules,
codes unique without regard to case, parent cycles, email), and one bad row means
nothing of the file is written. Rows are saved through `partners.services`.

Empty cells: `parent`, `program` and `cookie_days` empty mean none / no limit; an empty
`status`, `notify_lead` or `notify_sale` keeps the current value (a new partner gets the
model default: active, switches on).
"""

from django.db.models import QuerySet
from import_export import fields, resources, widgets

from referral_program.csv_cells import csv_text, csv_text_read

from .models import Partner, Program
from .services.partners import PARTNER_FIELDS, partner_create, partner_update

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


def _text(value) -> str:
    return "" if value is None else str(value).strip()


class TextWidget(widgets.CharWidget):
    """Text with the spaces around it removed; written so that a spreadsheet never runs it
    as a formula (a leading `'`, taken off again on import: referral_program/csv_cells.py)."""

    def clean(self, value, row=None, **kwargs):
        return csv_text_read(_text(value))

    def render(self, value, obj=None, **kwargs):
        text = super().render(value, obj, **kwargs)
        return csv_text(text) if isinstance(text, str) else text


class ParentCodeWidget(widgets.Widget):
    """A parent named by its partner code (matched without regard to case); empty: none."""

    def clean(self, value, row=None, **kwargs):
        code = _text(value)
        if not code:
            return None
        parent = Partner.objects.by_code(code).first()
        if parent is None:
            raise ValueError(
                f"No partner with code {code!r}. A parent must already exist or be on an "
                "earlier line of the file."
            )
        return parent

    def render(self, value, obj=None, **kwargs):
        return value.code if value is not None else ""


class ProgramIdWidget(widgets.Widget):
    """A program named by its id; empty: none (the partner gets the default program)."""

    def clean(self, value, row=None, **kwargs):
        text = _text(value)
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"Give the program's id (a number), not {text!r}.")
        program = Program.objects.filter(pk=int(text)).first()
        if program is None:
            raise ValueError(f"No program with id {text}.")
        return program

    def render(self, value, obj=None, **kwargs):
        return str(value.pk) if value is not None else ""


class StatusWidget(widgets.Widget):
    """`active`, `inactive`, `pending` or `rejected` (any case); empty keeps the current status."""

    def clean(self, value, row=None, **kwargs):
        return _text(value).lower() or None

    def render(self, value, obj=None, **kwargs):
        return value or ""


class DaysWidget(widgets.Widget):
    """A whole number of days; empty means no limit."""

    def clean(self, value, row=None, **kwargs):
        text = _text(value)
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise ValueError(
                f"Give a whole number of days, or leave it empty for no limit (got {text!r})."
            )
        return int(text)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class SwitchWidget(widgets.Widget):
    """true/false (also 1/0, yes/no, on/off, any case); empty keeps the current value."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool):
            return value
        word = _text(value).lower()
        if not word:
            return None
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"Use true or false (got {_text(value)!r}).")

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return "true" if value else "false"


def _column(name: str, widget: widgets.Widget, *, keep_when_empty: bool = False) -> fields.Field:
    return fields.Field(
        attribute=name,
        column_name=name,
        widget=widget,
        saves_null_values=not keep_when_empty,
    )


def _tree_depths() -> dict[int, int]:
    """Each partner's depth in the tree (0 = no parent), from one query."""
    parent_of = dict(Partner.objects.values_list("pk", "parent_id"))
    depths: dict[int, int] = {}
    for start in parent_of:
        path, current = [], start
        while current is not None and current not in depths and current not in path:
            path.append(current)
            current = parent_of.get(current)
        depth = depths.get(current, -1) if current is not None else -1
        for pk in reversed(path):
            depth += 1
            depths[pk] = depth
    return depths


class PartnerResource(resources.ModelResource):
    code = _column("code", TextWidget())
    name = _column("name", TextWidget())
    email = _column("email", TextWidget())
    parent = _column("parent", ParentCodeWidget())
    program = _column("program", ProgramIdWidget())
    status = _column("status", StatusWidget(), keep_when_empty=True)
    cookie_days = _column("cookie_days", DaysWidget())
    notify_lead = _column("notify_lead", SwitchWidget(), keep_when_empty=True)
    notify_sale = _column("notify_sale", SwitchWidget(), keep_when_empty=True)

    class Meta:
        model = Partner
        fields = PARTNER_FIELDS
        import_order = PARTNER_FIELDS
        export_order = PARTNER_FIELDS
        import_id_fields = ["code"]
        clean_model_instances = True
        use_transactions = True
        skip_unchanged = True
        report_skipped = True

    def import_data(
        self,
        dataset,
        dry_run=False,
        raise_errors=False,
        use_transactions=None,
        collect_failed_rows=False,
        rollback_on_validation_errors=False,
        **kwargs,
    ):
        # All or nothing. django-import-export only rolls back on exceptions unless
        # rollback_on_validation_errors is passed, and its admin's confirm step does not
        # pass it: force both here, whoever calls.
        return super().import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=raise_errors,
            use_transactions=True,
            collect_failed_rows=collect_failed_rows,
            rollback_on_validation_errors=True,
            **kwargs,
        )

    def before_import(self, dataset, **kwargs):
        headers = [_text(header) for header in dataset.headers or ()]
        dataset.headers = headers
        if "code" not in headers:
            raise ValueError(
                "The first line must name the columns and include 'code'. Columns: "
                + ", ".join(PARTNER_FIELDS)
                + "."
            )
        unknown = [header for header in headers if header not in PARTNER_FIELDS]
        if unknown:
            raise ValueError(
                f"Unknown column(s): {', '.join(unknown)}. Columns: {', '.join(PARTNER_FIELDS)}."
            )

    def do_instance_save(self, instance, is_create):
        data = {name: getattr(instance, name) for name in PARTNER_FIELDS}
        if is_create:
            created = partner_create(data=data)
            instance.pk = created.pk
            instance.created_at = created.created_at
        else:
            partner_update(partner=instance, data=data)

    def iter_queryset(self, queryset):
        """Parents before their children, then by code, so the file imports in order."""
        if not isinstance(queryset, QuerySet):
            yield from queryset
            return
        depths = _tree_depths()
        partners = list(queryset.select_related("parent", "program"))
        partners.sort(key=lambda partner: (depths.get(partner.pk, 0), partner.code.lower()))
        yield from partners
