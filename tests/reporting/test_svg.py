"""SVG primitives: round ticks, UTC time ticks, escaping and marker shapes."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from reporting import svg


def test_nice_ticks_are_round_and_cover_the_range():
    assert svg.nice_ticks(-12.3, 87.1) == [0.0, 20, 40, 60, 80]
    assert svg.tick_labels(svg.nice_ticks(-0.034, 0.0)) == ["-0.03", "-0.02", "-0.01", "0.00"]
    assert svg.tick_labels(svg.nice_ticks(0, 2.5e6, 5)) == ["0", "500,000", "1,000,000", "1,500,000", "2,000,000", "2,500,000"]


def test_time_ticks_fall_on_utc_boundaries_with_fitting_labels():
    start = datetime(2025, 6, 1, 7, 13, tzinfo=timezone.utc).timestamp() * 1000
    days = svg.time_ticks(start, start + 30 * 86_400_000)
    assert all(t % 86_400_000 == 0 for t, _ in days) and days[0][1] == "2025-06-05"
    hours = svg.time_ticks(start, start + 3_600_000)
    assert [label for _, label in hours] == ["06-01 07:15", "06-01 07:30", "06-01 07:45", "06-01 08:00"]
    seconds = svg.time_ticks(start, start + 20_000)
    assert seconds[0][1] == "07:13:00" and len(seconds) == 5


def test_scale_maps_and_flat_domain_goes_to_the_middle():
    assert svg.Scale(0, 10, 100, 200)(2.5) == 125
    assert svg.Scale(5, 5, 100, 200)(5) == 150


def test_every_shape_is_well_formed_with_escaped_tooltip():
    for shape in svg.MARKER_SHAPES:
        element = ET.fromstring(svg.marker(shape, 10, 20, "mk", tooltip="a<b & 'c'"))
        assert element.get("class") == "mk" and element.find("title").text == "a<b & 'c'"
    with pytest.raises(ValueError, match="unknown marker shape 'star'"):
        svg.marker("star", 0, 0, "mk")


def test_chart_is_one_well_formed_svg_with_title():
    frame = svg.Frame(width=300, height=100)
    body = svg.rect(10, 10, -5, 20, "bar") + svg.text(1, 2, "<x>", rotate=-90)
    root = ET.fromstring(svg.chart(frame, "A & B", body))
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text == "A & B"
    assert root.find(f"{ns}rect").get("x") == "5.0" and root.find(f"{ns}rect").get("width") == "5.0"
