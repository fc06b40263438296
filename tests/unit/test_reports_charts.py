"""Charts: plain data in, an SVG to put inline in HTML (nothing fetched from anywhere) and a PNG
out; drawn without pyplot, so several threads can draw at once."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from leadrelay.reports import charts


def all_charts() -> list[charts.Chart]:
    return [
        charts.funnel(["Lead", "MQL", "SAL"], [120, 31, 24], conversions=[None, 31 / 120, 24 / 31], title="Funnel"),
        charts.bar(["americas", "emea"], [0.9, None], horizontal=True, value_format=charts.percent_format,
                   title="SLA met"),
        charts.bar(["lead", "mql"], [86400.0, 3600.0], value_format=charts.days_format, title="Time in stage"),
        charts.grouped_bar(["→ MQL", "→ SAL"], {"this period": [0.26, 0.77], "before": [0.3, None]},
                           value_format=charts.percent_format, title="Conversion"),
        charts.stacked_bar(["organic", "paid"], {"won": [3, 1], "not won": [20, 10]}, title="Leads by source"),
        charts.line(["W1", "W2", "W3"], {"MQLs": [30, None, 41]}, target=40, title="MQLs per week"),
    ]


def test_every_chart_is_an_inline_svg_that_fetches_nothing() -> None:
    for chart in all_charts():
        svg = chart.svg()
        assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<script" not in svg
        # the only URLs are the SVG namespaces, which are names, not addresses to fetch
        assert set(re.findall(r"https?://[^\"'\s)]+", svg)) <= {"http://www.w3.org/2000/svg",
                                                               "http://www.w3.org/1999/xlink"}
        assert not re.search(r'(?:href|src)="(?!#)', svg)  # references stay inside the SVG
        assert f'aria-label="{chart.title}"' in svg


def test_every_chart_is_also_a_png() -> None:
    for chart in all_charts():
        assert chart.png(dpi=50).startswith(b"\x89PNG\r\n\x1a\n")


def test_two_charts_on_one_page_never_share_an_id() -> None:
    first, second = charts.bar(["a"], [1], title="One").svg(), charts.bar(["a"], [1], title="Two").svg()
    ids_first = set(re.findall(r'id="([^"]+)"', first))
    ids_second = set(re.findall(r'id="([^"]+)"', second))
    assert ids_first and not ids_first & ids_second
    references = re.findall(r'href="#([^"]+)"', first) + re.findall(r"url\(#([^)]+)\)", first)
    assert references and all(ref in ids_first for ref in references)


def test_a_chart_of_nothing_says_so() -> None:
    svg = charts.bar([], [], title="Nothing").svg()
    assert svg.startswith("<svg ")
    assert charts.funnel([], [], title="Empty funnel").png(dpi=40).startswith(b"\x89PNG")


def test_a_value_for_each_label_is_required() -> None:
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        charts.bar(["a", "b"], [1], title="Wrong")
    with pytest.raises(ValueError, match="1 labels but 2 values"):
        charts.line(["W1"], {"MQLs": [1, 2]}, title="Wrong")


def test_charts_can_be_drawn_in_several_threads_at_once() -> None:
    def draw(number: int) -> bytes:
        return charts.line([f"W{i}" for i in range(8)], {"MQLs": [number + i for i in range(8)]},
                           title=f"Chart {number}").png(dpi=40)

    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(draw, range(8)))
    assert all(image.startswith(b"\x89PNG") for image in images)
    assert len(set(images)) == 8


def test_values_are_written_the_way_people_read_them() -> None:
    assert charts.percent_format(0.255) == "26 %"
    assert charts.count_format(12345) == "12,345"
    assert charts.days_format(3 * 86400) == "3.0 d"
    assert charts.days_format(5400) == "1.5 h"
