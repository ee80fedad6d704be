from __future__ import annotations

from datetime import date, timedelta

import pytest

from dashboard.charts import HEIGHT, DayCounts, RatioSeries, posture_bars, ratio_chart

DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(5)]


def test_a_day_without_a_ratio_breaks_the_line() -> None:
    chart = ratio_chart("t", DAYS, [RatioSeries("Red", [0.1, 0.2, None, 0.3, 0.4], [9] * 5)])
    (line,) = chart.lines
    assert len(line.segments) == 2
    assert len(line.dots) == 4
    assert [t.text for t in chart.y_ticks] == ["0%", "20%", "40%"]
    ys = [d.y for d in line.dots]
    assert ys == sorted(ys, reverse=True)  # higher ratio, higher on the page
    assert min(ys) >= 0 and max(ys) <= HEIGHT
    assert line.dots[0].title == "Red, Mon 02 Mar: 10% of 9"
    assert not chart.empty


def test_no_ratio_at_all_is_an_empty_chart() -> None:
    chart = ratio_chart("t", DAYS, [RatioSeries("Red", [None] * 5, [0] * 5)])
    assert chart.empty
    assert chart.lines[0].dots == []


def test_posture_bars_stack_and_hide_small_days() -> None:
    chart = posture_bars(
        "t",
        [
            DayCounts(DAYS[0], 10, 6, 3, 1),
            DayCounts(DAYS[1], 3, None, None, None),
            DayCounts(DAYS[2], 0, 0, 0, 0),
        ],
    )
    kinds = [r.kind for r in chart.rects]
    assert kinds == ["hinge", "rounded", "unscorable", "hidden"]
    hinge, rounded, _, hidden = chart.rects
    assert rounded.y + rounded.height == pytest.approx(hinge.y, abs=0.11)  # stacked, no gap
    assert hinge.height == pytest.approx(2 * rounded.height, abs=0.2)
    assert "too few" in hidden.title
    assert [t.text for t in chart.y_ticks] == ["0", "5", "10"]
