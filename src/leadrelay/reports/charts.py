"""Charts of the reports, drawn by matplotlib: each function takes plain data (labels and numbers)
and returns a `Chart`, which gives an SVG string to put inline in HTML (no external reference, no
script) or PNG bytes.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas, never through pyplot, so
charts can be drawn in several threads at once and nothing global is changed.

    chart = funnel(["Lead", "MQL", "SAL"], [1200, 310, 240], title="Funnel, March")
    html = f"<figure>{chart.svg()}</figure>"
    Path("funnel.png").write_bytes(chart.png())

Every function takes `title` and an optional `name` (a short identifier: file names of PNGs, and
the prefix of the SVG's internal ids, so that several charts can share one HTML page).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

# Calm, distinguishable colours (muted; readable by most colour-blind readers).
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#64b5cd", "#c44e52", "#8c8c8c")
TEXT = "#333333"
GRID = "#e6e6e6"
TARGET = "#c44e52"
WIDTH, HEIGHT = 7.0, 3.6  # inches
FONT = 9

Number = float | int | None
Formatter = Callable[[float], str]


def count_format(value: float) -> str:
    return f"{value:,.0f}"


def percent_format(value: float) -> str:
    """A share (0.25) as a percentage (25 %)."""
    return f"{value * 100:.0f} %"


def days_format(value: float) -> str:
    """Seconds as days (or hours, under a day)."""
    return f"{value / 3600:.1f} h" if abs(value) < 86400 else f"{value / 86400:.1f} d"


@dataclass
class Chart:
    name: str
    title: str
    figure: Figure

    def svg(self) -> str:
        """The chart as an `<svg>` element: no XML prolog, no DOCTYPE, no metadata, text drawn as
        paths (it looks the same everywhere, offline), ids prefixed by the chart's name."""
        buffer = io.StringIO()
        self.figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                                            "Type": None})
        text = buffer.getvalue()
        text = text[text.index("<svg"):]
        text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
        prefix = re.sub(r"[^a-zA-Z0-9_-]", "-", self.name) + "-"
        text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
        text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}{m.group(1)}"', text)
        text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
        return text.replace("<svg ", f'<svg role="img" aria-label="{_attribute(self.title)}" ', 1)

    def png(self, dpi: int = 150) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        return buffer.getvalue()


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _colour(colors: Sequence[str] | None, index: int) -> str:
    if colors:
        return colors[index % len(colors)]
    return PALETTE[index % len(PALETTE)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


def _figure(title: str, height: float = HEIGHT) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    FigureCanvasAgg(figure)  # its own canvas: nothing of pyplot's global state
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=FONT + 2, color=TEXT, fontweight="bold")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color("#bbbbbb")
    axes.tick_params(colors=TEXT, labelsize=FONT)
    axes.set_axisbelow(True)
    return figure, axes


def _values(values: Sequence[Number]) -> list[float]:
    return [0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
            for value in values]


def _check(labels: Sequence[str], *series: Sequence[Number]) -> None:
    for values in series:
        if len(values) != len(labels):
            raise ValueError(f"{len(labels)} labels but {len(values)} values")


def _empty(axes: Axes, labels: Sequence[str]) -> bool:
    if labels:
        return False
    axes.text(0.5, 0.5, "nothing in this period", ha="center", va="center", color="#888888", fontsize=FONT + 1,
              transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])
    return True


def bar(labels: Sequence[str], values: Sequence[Number], *, title: str, name: str | None = None,
        horizontal: bool = False, value_format: Formatter = count_format, axis_label: str | None = None,
        color: str = PALETTE[0]) -> Chart:
    """One bar per label, each with its value written on it.

    labels: the categories (stages, sources, teams, ...), in the order shown (top to bottom when
    `horizontal`). values: one number per label (None is drawn as 0). value_format: how a value is
    written (count_format, percent_format for shares 0..1, days_format for seconds).
    """
    _check(labels, values)
    numbers = _values(values)
    figure, axes = _figure(title, max(HEIGHT, 0.9 + 0.32 * len(labels)) if horizontal else HEIGHT)
    if not _empty(axes, labels):
        positions = list(range(len(labels)))
        if horizontal:
            bars = axes.barh(positions, numbers, color=color, height=0.6)
            axes.set_yticks(positions, labels)
            axes.invert_yaxis()
            axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
            axes.grid(axis="x", color=GRID)
        else:
            bars = axes.bar(positions, numbers, color=color, width=0.6)
            axes.set_xticks(positions, labels, rotation=30 if len(labels) > 6 else 0,
                            ha="right" if len(labels) > 6 else "center")
            axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
            axes.grid(axis="y", color=GRID)
        axes.bar_label(bars, labels=[value_format(v) if v is not None else "–" for v in values], padding=2,
                       fontsize=FONT - 1, color=TEXT)
        axes.margins(x=0.12 if horizontal else 0.02, y=0.02 if horizontal else 0.12)
        if axis_label:
            (axes.set_xlabel if horizontal else axes.set_ylabel)(axis_label, fontsize=FONT, color=TEXT)
    return Chart(name or _slug(title), title, figure)


def grouped_bar(labels: Sequence[str], series: Mapping[str, Sequence[Number]], *, title: str,
                name: str | None = None, value_format: Formatter = count_format, axis_label: str | None = None,
                colors: Sequence[str] | None = None) -> Chart:
    """Bars side by side: for each label, one bar per series (e.g. this period and the one before).

    labels: the categories. series: series name -> one number per label (None drawn as 0); the
    series' names make the legend. colors: one per series (default: the palette).
    """
    _check(labels, *series.values())
    figure, axes = _figure(title)
    if not _empty(axes, labels):
        count = max(len(series), 1)
        width = 0.8 / count
        for index, (label, values) in enumerate(series.items()):
            positions = [p - 0.4 + width * (index + 0.5) for p in range(len(labels))]
            bars = axes.bar(positions, _values(values), width=width * 0.92, label=label,
                            color=_colour(colors, index))
            axes.bar_label(bars, labels=[value_format(v) if v is not None else "–" for v in values], padding=2,
                           fontsize=FONT - 2, color=TEXT)
        axes.set_xticks(list(range(len(labels))), labels)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
        axes.grid(axis="y", color=GRID)
        axes.margins(y=0.15)
        axes.legend(frameon=False, fontsize=FONT)
        if axis_label:
            axes.set_ylabel(axis_label, fontsize=FONT, color=TEXT)
    return Chart(name or _slug(title), title, figure)


def stacked_bar(labels: Sequence[str], series: Mapping[str, Sequence[Number]], *, title: str,
                name: str | None = None, horizontal: bool = True, value_format: Formatter = count_format,
                axis_label: str | None = None, colors: Sequence[str] | None = None) -> Chart:
    """Bars made of parts: for each label, the series stacked in order (e.g. per source: leads won,
    qualified but not won, not qualified).

    labels: the categories (top to bottom when `horizontal`). series: part name -> one number per
    label (None drawn as 0), stacked in the mapping's order; the names make the legend. Each bar's
    total is written at its end. colors: one per series (default: the palette).
    """
    _check(labels, *series.values())
    figure, axes = _figure(title, max(HEIGHT, 1.2 + 0.32 * len(labels)) if horizontal else HEIGHT)
    if not _empty(axes, labels):
        positions = list(range(len(labels)))
        bottoms = [0.0] * len(labels)
        for index, (label, values) in enumerate(series.items()):
            numbers = _values(values)
            colour = _colour(colors, index)
            if horizontal:
                axes.barh(positions, numbers, left=bottoms, height=0.6, label=label, color=colour)
            else:
                axes.bar(positions, numbers, bottom=bottoms, width=0.6, label=label, color=colour)
            bottoms = [b + n for b, n in zip(bottoms, numbers, strict=True)]
        for position, total in zip(positions, bottoms, strict=True):
            if horizontal:
                axes.text(total, position, " " + value_format(total), va="center", fontsize=FONT - 1, color=TEXT)
            else:
                axes.text(position, total, value_format(total), ha="center", va="bottom", fontsize=FONT - 1, color=TEXT)
        if horizontal:
            axes.set_yticks(positions, labels)
            axes.invert_yaxis()
            axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
            axes.grid(axis="x", color=GRID)
            axes.margins(x=0.12)
        else:
            axes.set_xticks(positions, labels)
            axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
            axes.grid(axis="y", color=GRID)
            axes.margins(y=0.12)
        axes.legend(frameon=False, fontsize=FONT, loc="lower right" if horizontal else "upper right")
        if axis_label:
            (axes.set_xlabel if horizontal else axes.set_ylabel)(axis_label, fontsize=FONT, color=TEXT)
    return Chart(name or _slug(title), title, figure)


def funnel(stages: Sequence[str], counts: Sequence[int], *, title: str, name: str | None = None,
           conversions: Sequence[float | None] | None = None) -> Chart:
    """The funnel: one centred bar per stage, as wide as the leads that reached it.

    stages: stage names, from the top of the funnel down. counts: leads that reached each stage.
    conversions: optional share (0..1) converted from the stage above, written beside each bar
    (None for the first stage).
    """
    _check(stages, counts)
    if conversions is not None:
        _check(stages, conversions)
    figure, axes = _figure(title, max(HEIGHT, 0.9 + 0.45 * len(stages)))
    if not _empty(axes, stages):
        widest = max([*counts, 1])
        positions = list(range(len(stages)))
        lefts = [(widest - count) / 2 for count in counts]
        colours = [PALETTE[0]] * len(stages)
        axes.barh(positions, counts, left=lefts, height=0.7, color=colours)
        for position, count, left in zip(positions, counts, lefts, strict=True):
            text = f"{count:,}"
            if conversions is not None and conversions[position] is not None:
                text += f"  ({percent_format(conversions[position])} of the stage above)"  # type: ignore[arg-type]
            axes.text(left + count + widest * 0.01, position, text, va="center", fontsize=FONT, color=TEXT)
        axes.set_yticks(positions, stages)
        axes.invert_yaxis()
        axes.set_xticks([])
        axes.spines["bottom"].set_visible(False)
        axes.set_xlim(0, widest * 1.45)
    return Chart(name or _slug(title), title, figure)


def line(labels: Sequence[str], series: Mapping[str, Sequence[Number]], *, title: str, name: str | None = None,
         target: float | None = None, target_label: str = "target", value_format: Formatter = count_format,
         axis_label: str | None = None, colors: Sequence[str] | None = None) -> Chart:
    """Lines over time (weeks, months): one line per series, with an optional target line.

    labels: the periods, oldest first (e.g. "2026-03", "W10"). series: series name -> one number per
    period (None leaves a gap). target: a horizontal line (e.g. the MQLs a week marketing promised),
    named by `target_label`. colors: one per series (default: the palette).
    """
    _check(labels, *series.values())
    figure, axes = _figure(title)
    if not _empty(axes, labels):
        positions = list(range(len(labels)))
        for index, (label, values) in enumerate(series.items()):
            points = [float("nan") if v is None else float(v) for v in values]
            axes.plot(positions, points, marker="o", markersize=4, linewidth=2, label=label,
                      color=_colour(colors, index))
        if target is not None:
            axes.axhline(target, color=TARGET, linestyle="--", linewidth=1.2, label=f"{target_label} ({value_format(target)})")
        step = max(1, math.ceil(len(labels) / 12))
        axes.set_xticks(positions[::step], list(labels)[::step])
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: value_format(v)))
        axes.grid(axis="y", color=GRID)
        axes.set_ylim(bottom=0)
        axes.legend(frameon=False, fontsize=FONT)
        if axis_label:
            axes.set_ylabel(axis_label, fontsize=FONT, color=TEXT)
    return Chart(name or _slug(title), title, figure)
