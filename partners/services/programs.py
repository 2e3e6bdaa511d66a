"""Programs: `program_create`, `program_update` and their rate rows (levels 1..3). Each
change of a program's pay terms makes its next version (`versions.program_version_record`,
SPEC §10): a service takes who acts (`acting_user`, or `actor` for an API key or command)."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import (
    LEVELS,
    ProductRate,
    ProductRateLevel,
    Program,
    ProgramRate,
    ReferralDefaults,
    RenewalRate,
)
from ..selectors import PRODUCT_RATE_COLUMNS, PRODUCT_RATE_NAMES
from .enrollment import program_partners_sync
from .versions import program_version_record

PROGRAM_FIELDS = (
    "name",
    "notes",
    "priority",
    "unused_lead_amount",
    "unused_lead_percent",
    "unused_sale_amount",
    "unused_sale_percent",
    "hold_days",
    "pays_default",
    "renewal_cycles",
    "credit_on",
)
RATE_FIELDS = ("lead_amount", "lead_percent", "sale_amount", "sale_percent")


def _rate_rows(
    program: Program,
    rates: Iterable[Mapping[str, Any]],
    model: type[ProgramRate | RenewalRate] = ProgramRate,
    name: str = "rates",
) -> list[Any]:
    """A row of `model` for each of levels 1..3: the rates given, 0 where left out."""
    by_level = {}
    for rate in rates:
        level = rate.get("level")
        if level not in LEVELS:
            raise ValidationError({name: f"Level must be 1, 2 or 3 (got {level!r})."})
        if level in by_level:
            raise ValidationError({name: f"Level {level} is given twice."})
        by_level[level] = rate
    rows = []
    for level in LEVELS:
        given = by_level.get(level, {})
        values = {f: given[f] for f in RATE_FIELDS if f in given}
        rows.append(model(program=program, level=level, **values))
    return rows


@transaction.atomic
def _renewal_rates_replace(
    *, program: Program, renewal_rates: Iterable[Mapping[str, Any]] | None
) -> None:
    """Replace what the program pays a subscription's renewals (SPEC §10): rates per level
    1..3 (levels left out pay 0), or None (or none given): its own rates."""
    rows = _rate_rows(program, renewal_rates or (), RenewalRate, "renewal_rates")
    for row in rows:
        row.full_clean(exclude=["program"], validate_unique=False)
    RenewalRate.objects.filter(program=program).delete()
    if renewal_rates:
        RenewalRate.objects.bulk_create(rows)


PRODUCT_UNUSED_FIELDS = tuple(f for f in PROGRAM_FIELDS if f.startswith("unused_"))


@transaction.atomic
def program_set_product_rates(
    *,
    program: Program,
    product_rates: Iterable[Mapping[str, Any]],
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> None:
    """Replace the program's product rates (SPEC §10): `[{sku, rates: [{level, ...}],
    unused_...}]`, each sku once; levels left out pay 0."""
    _product_rates_replace(program=program, product_rates=product_rates)
    program_version_record(program=program, acting_user=acting_user, actor=actor)


def _product_rates_replace(*, program: Program, product_rates: Iterable[Mapping[str, Any]]) -> None:
    rows, levels = [], []
    for given in product_rates:
        row = ProductRate(
            program=program,
            sku=given.get("sku") or "",
            **{f: given[f] for f in PRODUCT_UNUSED_FIELDS if f in given},
        )
        row.full_clean(exclude=["program"], validate_unique=False)
        rows.append(row)
        levels.append(_rate_rows(program, given.get("rates") or ()))
    skus = [row.sku for row in rows]
    if len(set(skus)) != len(skus):
        raise ValidationError({"product_rates": "Give each sku once."})
    ProductRate.objects.filter(program=program).delete()
    ProductRate.objects.bulk_create(rows)
    ProductRateLevel.objects.bulk_create(
        ProductRateLevel(
            product_rate=row,
            level=rate.level,
            **{f: getattr(rate, f) for f in RATE_FIELDS},
        )
        for row, rates in zip(rows, levels, strict=True)
        for rate in rates
    )


@transaction.atomic
def program_create(
    *,
    data: Mapping[str, Any],
    rates: Iterable[Mapping[str, Any]] = (),
    product_rates: Iterable[Mapping[str, Any]] = (),
    renewal_rates: Iterable[Mapping[str, Any]] | None = None,
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> Program:
    """A new program with the defaults' structure and a rate row for each of levels 1..3,
    and its version 1."""
    defaults = ReferralDefaults.objects.get(pk=ReferralDefaults.SINGLETON_PK)
    program = Program(**{f: data[f] for f in PROGRAM_FIELDS if f in data}, **defaults.structure())
    program.full_clean()
    rows = _rate_rows(program, rates)
    for row in rows:
        row.full_clean(exclude=["program"])
    program.save()
    ProgramRate.objects.bulk_create(rows)
    if product_rates:
        _product_rates_replace(program=program, product_rates=product_rates)
    if renewal_rates:
        _renewal_rates_replace(program=program, renewal_rates=renewal_rates)
    program_version_record(program=program, acting_user=acting_user, actor=actor)
    return program


NOT_GIVEN: Any = object()  # renewal rates left out of an update (None: removed)


@transaction.atomic
def program_update(
    *,
    program: Program,
    data: Mapping[str, Any],
    rates: Iterable[Mapping[str, Any]] | None = None,
    product_rates: Iterable[Mapping[str, Any]] | None = None,
    renewal_rates: Iterable[Mapping[str, Any]] | None = NOT_GIVEN,
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> Program:
    """Change a program's name, notes, priority, renewal limit, rates and (given: all of)
    its product rates and renewal rates (None: none, renewals earn its rates). Its structure
    follows the defaults. A change of its pay terms makes its next version; a save that
    changes none of them makes none."""
    priority = program.priority
    for name in PROGRAM_FIELDS:
        if name in data:
            setattr(program, name, data[name])
    program.full_clean()
    program.save()
    if program.priority != priority:
        program_partners_sync(program=program)
    if rates is not None:
        existing = {rate.level: rate for rate in program.rates.all()}
        for rate in rates:
            row = existing.get(rate.get("level"))
            if row is None:
                raise ValidationError(
                    {"rates": f"Level must be 1, 2 or 3 (got {rate.get('level')!r})."}
                )
            for name in RATE_FIELDS:
                if name in rate:
                    setattr(row, name, rate[name])
            row.full_clean()
        ProgramRate.objects.bulk_update(existing.values(), RATE_FIELDS)
    if product_rates is not None:
        _product_rates_replace(program=program, product_rates=product_rates)
    if renewal_rates is not NOT_GIVEN:
        _renewal_rates_replace(program=program, renewal_rates=renewal_rates)
    program_version_record(program=program, acting_user=acting_user, actor=actor)
    return program


def program_update_arguments(validated: Mapping[str, Any]) -> dict[str, Any]:
    """A program update's validated fields (the program resource's) as `program_update`
    takes them: rates, product rates and renewal rates apart; those left out are kept."""
    data = dict(validated)
    return {
        "data": data,
        "rates": data.pop("rates", None),
        "product_rates": data.pop("product_rates", None),
        "renewal_rates": data.pop("renewal_rates", NOT_GIVEN),
    }


def product_rate_given(columns: Mapping[str, Any]) -> dict[str, Any]:
    """A product rate as `program_set_product_rates` takes it, from the columns of
    `PRODUCT_RATE_COLUMNS` (a CSV line's text, or the staff table's row): an empty or
    missing rate is 0."""

    def rate(column: str) -> Any:
        value = columns.get(column)
        if isinstance(value, str):
            value = value.strip()
        return "0" if value in (None, "") else value

    return {
        "sku": columns.get("sku") or "",
        "rates": [
            {"level": level, **{name: rate(f"level_{level}_{name}") for name in PRODUCT_RATE_NAMES}}
            for level in LEVELS
        ],
        **{f"unused_{name}": rate(f"unused_{name}") for name in PRODUCT_RATE_NAMES},
    }


def program_product_rates_import(
    *,
    program: Program,
    rows: Iterable[Mapping[str, str]],
    acting_user: AbstractBaseUser | None = None,
    actor: str = "system",
) -> int:
    """Replace the program's product rates with a CSV's rows (the columns of
    `partners.selectors.PRODUCT_RATE_COLUMNS`; only `sku` is required, an empty rate is 0).
    All or nothing: a row in error refuses the whole file, naming its line. Answers how
    many product rates the program has now."""
    product_rates, errors, seen = [], [], {}
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        unknown = sorted(set(row) - set(PRODUCT_RATE_COLUMNS) - {None})
        if unknown:
            raise ValidationError(
                {"file": [f"Unknown column(s): {', '.join(unknown)}. Columns: "
                          f"{', '.join(PRODUCT_RATE_COLUMNS)}."]}
            )  # fmt: skip
        sku = (row.get("sku") or "").strip()
        if sku in seen:
            errors.append(f"Line {number}: sku {sku!r} is also on line {seen[sku]}.")
            continue
        seen[sku] = number
        given = product_rate_given({**row, "sku": sku})
        try:
            _product_rate_checked(program, given)
        except ValidationError as error:
            messages = "; ".join(
                f"{field}: {m}" for field, ms in error.message_dict.items() for m in ms
            )
            errors.append(f"Line {number}: {messages}")
            continue
        product_rates.append(given)
    if errors:
        raise ValidationError({"file": errors})
    program_set_product_rates(
        program=program, product_rates=product_rates, acting_user=acting_user, actor=actor
    )
    return len(product_rates)


def _product_rate_checked(program: Program, given: Mapping[str, Any]) -> None:
    """Raise the model's ValidationError for one product rate and its levels."""
    ProductRate(
        program=program,
        sku=given["sku"],
        **{f: given[f] for f in PRODUCT_UNUSED_FIELDS},
    ).full_clean(exclude=["program"], validate_unique=False)
    for rate in given["rates"]:
        ProductRateLevel(level=rate["level"], **{f: rate[f] for f in RATE_FIELDS}).full_clean(
            exclude=["product_rate"]
        )
