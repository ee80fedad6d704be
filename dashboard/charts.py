"""Chart geometry for server-rendered SVG: the pages need no JavaScript and no CDN.

Functions here turn daily series into coordinates; ``templates/_charts.html`` draws them.
Keeping the arithmetic in Python keeps the templates dumb and the geometry testable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

WIDTH = 640
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 30

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
)
POSTURE_COLOURS = {"hinge": "#4f8fd9", "rounded": "#d9534f", "unscorable": "#b9c0c9"}
HIDDEN_COLOUR = "#e3e6ea"


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    segments: list[str]
    """SVG ``points`` strings; a day without a value breaks the line."""
    dots: list[Dot]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str
    kind: str


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    rects: list[Rect] = field(default_factory=list)
    empty: bool = True

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT

    @property
    def plot_bottom(self) -> int:
        return self.height - BOTTOM


@dataclass(frozen=True)
class RatioSeries:
    name: str
    ratios: Sequence[float | None]
    lifts: Sequence[int]


def _x_of(days: Sequence[date]) -> list[float]:
    span = WIDTH - LEFT - RIGHT
    step = span / len(days)
    return [LEFT + step * (i + 0.5) for i in range(len(days))]


def _day_ticks(days: Sequence[date], xs: Sequence[float]) -> list[Tick]:
    every = 1 if len(days) <= 10 else math.ceil(len(days) / 8)
    last = len(days) - 1
    return [
        Tick(x, f"{d:%a} {d.day}" if len(days) <= 10 else f"{d.day} {d:%b}")
        for i, (d, x) in enumerate(zip(days, xs, strict=True))
        if (last - i) % every == 0
    ]


def _y_scale(top: float, percent: bool) -> tuple[float, list[Tick]]:
    """A round top value for the axis and three ticks."""
    if percent:
        top = min(1.0, max(0.1, math.ceil(top * 10 - 1e-9) / 10))
        labels = [f"{round(top * k / 2 * 100)}%" for k in range(3)]
    else:
        top = max(1.0, float(_nice(top)))
        labels = [f"{top * k / 2:g}" for k in range(3)]
    plot = HEIGHT - TOP - BOTTOM
    return top, [Tick(HEIGHT - BOTTOM - plot * k / 2, labels[k]) for k in range(3)]


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _y(value: float, top: float) -> float:
    return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value / top, 1)


def ratio_chart(title: str, days: Sequence[date], series: Sequence[RatioSeries]) -> Chart:
    """Risky ratio per day, one line per series (a team); hidden or empty days are gaps."""
    xs = _x_of(days)
    values = [r for s in series for r in s.ratios if r is not None]
    top, y_ticks = _y_scale(max(values, default=0.0), percent=True)
    chart = Chart(title=title, x_ticks=_day_ticks(days, xs), y_ticks=y_ticks)
    for k, s in enumerate(series):
        segments: list[str] = []
        current: list[str] = []
        dots = []
        for d, x, ratio, lifts in zip(days, xs, s.ratios, s.lifts, strict=True):
            if ratio is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            y = _y(ratio, top)
            current.append(f"{x:.1f},{y:.1f}")
            dots.append(Dot(round(x, 1), y, f"{s.name}, {d:%a %d %b}: {ratio:.0%} of {lifts}"))
        if current:
            segments.append(" ".join(current))
        chart.lines.append(Line(s.name, PALETTE[k % len(PALETTE)], segments, dots))
    chart.empty = not values
    return chart


@dataclass(frozen=True)
class DayCounts:
    """One day's lifts; the posture split is None when privacy hides it."""

    day: date
    lifts: int
    hinge: int | None
    rounded: int | None
    unscorable: int | None


def posture_bars(title: str, days: Sequence[DayCounts]) -> Chart:
    """Lifts per day stacked by posture; a hidden day is one grey bar of its total."""
    xs = _x_of([d.day for d in days])
    top, y_ticks = _y_scale(max((d.lifts for d in days), default=0), percent=False)
    chart = Chart(title=title, x_ticks=_day_ticks([d.day for d in days], xs), y_ticks=y_ticks)
    width = (WIDTH - LEFT - RIGHT) / max(len(days), 1) * 0.7
    for d, x in zip(days, xs, strict=True):
        if d.lifts == 0:
            continue
        label = f"{d.day:%a %d %b}"
        if d.hinge is None or d.rounded is None or d.unscorable is None:
            y = _y(d.lifts, top)
            chart.rects.append(
                Rect(
                    round(x - width / 2, 1),
                    y,
                    round(width, 1),
                    round(HEIGHT - BOTTOM - y, 1),
                    HIDDEN_COLOUR,
                    f"{label}: {d.lifts} lifts (split hidden: too few)",
                    "hidden",
                )
            )
            continue
        base = 0
        for kind, count in (
            ("hinge", d.hinge),
            ("rounded", d.rounded),
            ("unscorable", d.unscorable),
        ):
            if not count:
                continue
            y0, y1 = _y(base, top), _y(base + count, top)
            chart.rects.append(
                Rect(
                    round(x - width / 2, 1),
                    y1,
                    round(width, 1),
                    round(y0 - y1, 1),
                    POSTURE_COLOURS[kind],
                    f"{label}: {count} {kind}",
                    kind,
                )
            )
            base += count
    chart.empty = not any(d.lifts for d in days)
    return chart
