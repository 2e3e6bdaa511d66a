"""Partner overrides wired to the engine (SPEC §10 "Partner overrides"): the chain's query
reads every member's overrides, `program_lines` pays them, the trace names them; the API
and the import write the same rows; the query count does not grow."""

import html
import json
from decimal import Decimal

import pytest

from commissions.models import Commission, Contact, Event, Order, Referral
from partners.models import PartnerOverride
from partners.services.enrollment import partner_set_programs
from tests.factories import ProgramFactory
from tests.integration import test_program_engine
from tests.integration.test_import_events import run
from tests.integration.test_program_engine import ORDERS, order, queries_of_an_order, rows

pytestmark = pytest.mark.django_db

D = Decimal
shop = test_program_engine.shop  # the fixture: two programs, a product rate, three levels


def override(partner, program, level, sku=None, **rates) -> PartnerOverride:
    return PartnerOverride.objects.create(
        partner=partner, program=program, level=level, sku=sku,
        **{name: D(value) for name, value in rates.items()},
    )  # fmt: skip


@pytest.fixture
def overridden(shop):
    """`me` has an override of BOOKS for the sku BOOK at level 1: 3.00 + 15 %; its parent
    one of STANDARD for every item at level 2: 0 + 12 %. Overrides that must not apply: the
    parent's at level 1 (it is paid at level 2 here) and the grandparent's of a program
    that pays none of these items."""
    me = shop["me"]
    parent, grandparent = me.parent, me.parent.parent
    override(me, shop["books"], 1, "BOOK", sale_amount="3", sale_percent="15")
    override(parent, shop["standard"], 2, sale_percent="12")
    override(parent, shop["standard"], 1, sale_percent="90")
    override(grandparent, ProgramFactory(name="Other"), 3, sale_percent="90")
    return shop


def test_a_mixed_order_paid_with_overrides(api, overridden):
    """The order of test_program_engine: items 2 x 30.00 BOOK, 1 x 40.00 MUG, 4 x 25.00
    POSTER (200.00), discount 10.01: bases 57.00, 38.00, 94.99; BOOKS pays the book (57.00),
    STANDARD the mug and the poster (132.99).

    level 1 BOOKS:    override 3.00 x 2 + 57.00 x 15 %  = 6.00 + 8.55    = 14.55
    level 1 STANDARD: 5.00 once + 132.99 x 20 % = 26.598 = 31.598        -> 31.60
    level 2 BOOKS:    1.00 x 2 + 57.00 x 5 %            = 2.00 + 2.85    = 4.85
    level 2 STANDARD: override 132.99 x 12 %            = 15.9588        -> 15.96
    level 3 BOOKS:    57.00 x 2 %                                        = 1.14
    level 3 STANDARD: 132.99 x 5 %                      = 6.6495         -> 6.65 (half up)
    """
    response = api.post(ORDERS, order(), format="json")

    assert response.status_code == 201, response.content
    found = {(row[0], row[1], row[3]): (row[4], row[5]) for row in rows()}
    assert found == {
        ("me-seller", 1, "Books"): (D("57.00"), D("14.55")),
        ("me-seller", 1, "Standard"): (D("132.99"), D("31.60")),
        ("parent", 2, "Books"): (D("57.00"), D("4.85")),
        ("parent", 2, "Standard"): (D("132.99"), D("15.96")),
        ("grandpa", 3, "Books"): (D("57.00"), D("1.14")),
        ("grandpa", 3, "Standard"): (D("132.99"), D("6.65")),
    }
    me_books = Commission.objects.get(partner__code="me-seller", program__name="Books")
    assert me_books.trace["items"] == [
        {"item": 0, "sku": "BOOK", "quantity": 2, "base": "57.00", "rate": "override",
         "amount": "3.00", "percent": "15.0000", "per_unit": True},
    ]  # fmt: skip
    parent_standard = Commission.objects.get(partner__code="parent", program__name="Standard")
    assert [(i["item"], i["rate"], i["amount"], i["percent"], i["per_unit"])
            for i in parent_standard.trace["items"]] == [
        (1, "override", "0.00", "12.0000", False),
        (2, "override", "0.00", "12.0000", False),
    ]  # fmt: skip


def test_with_one_program_only_the_overridden_line_leaves_the_simple_trace(api, overridden):
    """STANDARD alone pays the whole order (189.99): me 5.00 + 189.99 x 20 % = 42.998 ->
    43.00 at its level-1 rate; the parent 189.99 x 12 % = 22.7988 -> 22.80 by its override;
    the grandparent 189.99 x 5 % = 9.4995 -> 9.50 (half up)."""
    partner_set_programs(partner=overridden["me"], programs=[overridden["standard"]])

    api.post(ORDERS, order(), format="json")

    lines = {c.level: c for c in Commission.objects.all()}
    assert {level: (c.base, c.amount) for level, c in lines.items()} == {
        1: (D("189.99"), D("43.00")),
        2: (D("189.99"), D("22.80")),
        3: (D("189.99"), D("9.50")),
    }
    assert lines[1].trace["rates"] == {"rate": "level 1", "amount": "5.00", "percent": "20.0000"}
    assert lines[3].trace["rates"] == {"rate": "level 3", "amount": "0.00", "percent": "5.0000"}
    assert "rates" not in lines[2].trace
    assert {i["rate"] for i in lines[2].trace["items"]} == {"override"}
    assert lines[2].trace["base"] == "189.99"


def test_an_override_changed_later_leaves_recorded_lines_alone(api, overridden):
    api.post(ORDERS, order("first"), format="json")
    before = rows()

    PartnerOverride.objects.filter(level=2).update(sale_percent=D("50"))

    assert rows() == before
    api.post(ORDERS, order("second"), format="json")
    second = Commission.objects.get(
        order__order_id="second", partner__code="parent", program__name="Standard"
    )
    assert second.amount == D("66.50")  # 132.99 x 50 % = 66.495 -> 66.50 (half up)


def test_the_import_writes_the_same_rows(api, overridden, tmp_path):
    payloads = [order("mixed-1"), order("mixed-2", discount="0")]
    for payload in payloads:
        assert api.post(ORDERS, payload, format="json").status_code == 201
    by_api = rows()
    assert len(by_api) == 12
    assert sum('"override"' in row[6] for row in by_api) == 4  # two lines of each order
    Commission.objects.all().delete()
    for model in (Order, Referral, Event, Contact):
        model.objects.all().delete()
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in payloads))

    _, _, error = run(path)

    assert error is None
    assert rows() == by_api


def test_overrides_add_no_query(api, shop):
    """The chain's one query reads the members' overrides: an order costs as many queries
    with overrides at every level as with none."""
    queries_of_an_order(api, "first")  # the contact's first order writes it
    without = queries_of_an_order(api, "without")
    me = shop["me"]
    for level, partner in enumerate([me, me.parent, me.parent.parent], start=1):
        for program in (shop["standard"], shop["books"]):
            override(partner, program, level, sale_percent="1")
            override(partner, program, level, "BOOK", sale_percent="2")
            override(partner, program, level, "MUG", sale_percent="3")

    with_overrides = queries_of_an_order(api, "with")

    assert with_overrides == without
    assert Commission.objects.filter(order__order_id="with").count() == 6
    assert all(
        {i["rate"] for i in c.trace["items"]} == {"override"}
        for c in Commission.objects.filter(order__order_id="with")
    )


def test_the_staff_order_page_says_which_rate_paid_each_item(api, staff_client, overridden):
    api.post(ORDERS, order(), format="json")

    page = staff_client.get("/staff/orders/mixed-1/")

    assert page.status_code == 200
    text = " ".join(html.unescape(page.content.decode()).split())
    assert (
        "Program Standard pays at level 2, item by item. Item 2 (MUG, quantity 1): the "
        "partner's override, 12 % of 38.00. Item 3 (POSTER, quantity 4): the partner's "
        "override, 12 % of 94.99."
    ) in text
    assert (
        "Program Books pays at level 1, item by item. Item 1 (BOOK, quantity 2): the "
        "partner's override, 3.00 per unit + 15 % of 57.00."
    ) in text
