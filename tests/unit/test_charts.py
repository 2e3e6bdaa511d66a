"""Server-made SVG bar charts (Partner Center dashboard). No database."""

import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import pytest

from commissions.charts import HEIGHT, LEFT, TOP, Series, bar_chart, fill_dates, nice_scale

SVG = "{http://www.w3.org/2000/svg}"
PLOT_HEIGHT = 188.0  # HEIGHT - TOP - BOTTOM
BASE_Y = TOP + PLOT_HEIGHT
D1 = date(2026, 11, 2)


def chart(*series: Series, **options) -> ET.Element:
    markup = bar_chart(
        chart_id=options.pop("chart_id", "c"),
        title=options.pop("title", "Clicks per day"),
        series=list(series),
        x_label=options.pop("x_label", "Day"),
        y_label=options.pop("y_label", "Count"),
        **options,
    )
    return ET.fromstring(markup)  # well-formed XML, or this raises


def bars(svg: ET.Element) -> list[dict]:
    return [
        {
            "class": rect.get("class"),
            "x": float(rect.get("x")),
            "y": float(rect.get("y")),
            "width": float(rect.get("width")),
            "height": float(rect.get("height")),
            "title": rect.find(f"{SVG}title").text,
        }
        for rect in svg.iter(f"{SVG}rect")
        if "chart-bar" in rect.get("class", "")
    ]


def texts(svg: ET.Element, css_class: str) -> list[str]:
    return [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == css_class]


def test_the_chart_is_an_image_named_by_its_title_and_desc():
    svg = chart(Series("Clicks", [(D1, 3)]), chart_id="daily")

    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "daily-title daily-desc"
    assert svg.find(f"{SVG}title").get("id") == "daily-title"
    assert svg.find(f"{SVG}title").text == "Clicks per day"
    assert svg.find(f"{SVG}desc").text == (
        "One group of bars per day, 2026-11-02 to 2026-11-02. Totals: Clicks 3."
    )
    assert texts(svg, "chart-axis-label") == ["Day", "Count"]
    assert texts(svg, "chart-legend") == ["Clicks"]


@pytest.mark.parametrize("series", [[], [Series("Clicks", [])]], ids=["no-series", "no-points"])
def test_an_empty_chart_says_so_and_has_no_bars(series):
    svg = chart(*series)

    assert bars(svg) == []
    assert texts(svg, "chart-empty") == ["No data yet"]
    assert svg.find(f"{SVG}desc").text == "No data yet."
    assert texts(svg, "chart-tick") == ["0", "1"]  # an axis from 0 to 1


def test_one_point_makes_one_bar_on_a_nice_axis():
    svg = chart(Series("Clicks", [(D1, 7)]))

    [bar] = bars(svg)
    assert bar["height"] == PLOT_HEIGHT * 7 / 8  # the axis runs to 8, in steps of 2
    assert bar["y"] == BASE_Y - PLOT_HEIGHT * 7 / 8
    assert bar["width"] == pytest.approx(512.0)  # 640 wide, less a 20 % gap
    assert bar["x"] == pytest.approx(LEFT + 64.0)
    assert bar["title"] == "Nov 2: 7 Clicks"
    assert texts(svg, "chart-tick") == ["0", "2", "4", "6", "8", "Nov 2"]


def test_bar_heights_follow_the_values_and_zero_draws_nothing():
    points = [(D1, 10), (D1 + timedelta(days=1), 5), (D1 + timedelta(days=2), 0)]

    drawn = bars(chart(Series("Clicks", points)))

    assert [(b["height"], b["y"]) for b in drawn] == [
        (PLOT_HEIGHT, TOP),
        (PLOT_HEIGHT / 2, BASE_Y - PLOT_HEIGHT / 2),
    ]
    assert [b["title"] for b in drawn] == ["Nov 2: 10 Clicks", "Nov 3: 5 Clicks"]


def test_series_are_grouped_side_by_side_per_date():
    days = [D1, D1 + timedelta(days=1)]
    svg = chart(
        Series("Clicks", [(days[0], 4), (days[1], 2)]),
        Series("Orders", [(days[0], 1), (days[1], 0)]),
    )

    drawn = bars(svg)
    assert [(b["class"], b["title"]) for b in drawn] == [
        ("chart-bar chart-series-0", "Nov 2: 4 Clicks"),
        ("chart-bar chart-series-1", "Nov 2: 1 Orders"),
        ("chart-bar chart-series-0", "Nov 3: 2 Clicks"),
    ]
    first, second, _ = drawn
    assert second["x"] == pytest.approx(first["x"] + first["width"])
    assert second["height"] == PLOT_HEIGHT / 4
    assert texts(svg, "chart-legend") == ["Clicks", "Orders"]


def test_money_values_use_the_given_format():
    svg = chart(
        Series("Commissions", [(D1, Decimal("12.50")), (D1 + timedelta(weeks=1), Decimal("0"))]),
        format_value=lambda value: f"{Decimal(value):.2f}",
    )

    assert [b["title"] for b in bars(svg)] == ["Nov 2: 12.50 Commissions"]
    assert texts(svg, "chart-tick")[:4] == ["0.00", "5.00", "10.00", "15.00"]


def test_every_text_is_escaped():
    markup = bar_chart(
        chart_id="c",
        title="<script>alert(1)</script> & Co",
        series=[Series('"Clicks" <b>', [(D1, 1)])],
        x_label="<Day>",
        y_label="Count & more",
    )

    assert "<script>" not in markup and "<b>" not in markup
    svg = ET.fromstring(markup)
    assert svg.find(f"{SVG}title").text == "<script>alert(1)</script> & Co"
    assert texts(svg, "chart-legend") == ['"Clicks" <b>']
    assert texts(svg, "chart-axis-label") == ["<Day>", "Count & more"]
    assert bars(svg)[0]["title"] == 'Nov 2: 1 "Clicks" <b>'


def test_no_more_than_eight_date_labels():
    points = [(D1 + timedelta(days=n), n) for n in range(30)]

    labels = [t for t in texts(chart(Series("Clicks", points)), "chart-tick") if " " in t]

    assert labels == ["Nov 2", "Nov 6", "Nov 10", "Nov 14", "Nov 18", "Nov 22", "Nov 26", "Nov 30"]


def test_the_chart_fits_its_box():
    svg = chart(Series("Clicks", [(D1 + timedelta(days=n), n * 3) for n in range(30)]))

    assert svg.get("viewBox") == f"0 0 720 {HEIGHT}"
    for bar in bars(svg):
        assert bar["y"] >= TOP
        assert bar["y"] + bar["height"] == pytest.approx(BASE_Y)
        assert bar["x"] >= LEFT
        assert bar["x"] + bar["width"] <= 720


@pytest.mark.parametrize(
    ("largest", "whole", "scale"),
    [
        ("0", True, ("1", "1")),
        ("1", True, ("1", "1")),
        ("3", True, ("3", "1")),
        ("10", True, ("10", "2")),
        ("47", True, ("50", "10")),
        ("1234", True, ("1500", "500")),
        ("0.3", False, ("0.3", "0.1")),
        ("12.5", False, ("15", "5")),
        ("123.45", False, ("150", "50")),
    ],
)
def test_nice_scale(largest, whole, scale):
    top, step = nice_scale(Decimal(largest), whole=whole)

    assert (str(top), str(step)) == scale


def test_fill_dates_puts_zeros_where_nothing_happened():
    values = {D1: 3, D1 + timedelta(days=2): 1, D1 - timedelta(days=1): 9}

    assert fill_dates(values, start=D1, count=4) == [
        (D1, 3),
        (D1 + timedelta(days=1), 0),
        (D1 + timedelta(days=2), 1),
        (D1 + timedelta(days=3), 0),
    ]
    weekly = fill_dates(
        {D1 + timedelta(weeks=1): Decimal("5.00")}, start=D1, count=2, step=timedelta(weeks=1)
    )
    assert weekly == [(D1, 0), (D1 + timedelta(weeks=1), Decimal("5.00"))]
