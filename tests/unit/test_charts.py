"""The report's chart (pure logic): buckets, counts, its accessible names, its SVG."""

from __future__ import annotations

import re

from msgtrail.store.counters import bucket_for
from msgtrail.web.dashboard import charts

T = 1_790_000_000  # 2026-09-21 14:13:20 UTC


def test_bucket_spreads_the_span_over_at_most_48() -> None:
    assert bucket_for(T, T + 30 * 60) == 60
    assert bucket_for(T, T + 6 * 3600) == 900
    assert bucket_for(T, T + 2 * 86400) == 3600
    assert bucket_for(T, T + 400 * 86400) == 86400
    assert bucket_for(T, T) == 60


def test_timeline_fills_empty_buckets_with_zero_in_drawing_order() -> None:
    t = charts.timeline(3600, [("sent", T, 5), ("sent", T + 2 * 3600, 7),
                               ("clicked", T + 3600, 2)],
                        ("clicked", "failed", "opened", "sent", "delivered"))
    assert (t.start, t.size) == (T, 3)
    assert list(t.counts) == ["sent", "delivered", "opened", "clicked", "failed"]
    assert t.counts["sent"] == [5, 0, 7] and t.counts["clicked"] == [0, 2, 0]
    assert t.counts["failed"] == [0, 0, 0]


def test_scales_end_at_round_numbers() -> None:
    assert [charts.nice_top(v) for v in (1, 3, 7, 10, 11, 499, 501, 30_000)] == [
        1, 5, 10, 10, 20, 500, 1000, 50_000]


def test_description_names_the_chart_and_its_peaks() -> None:
    t = charts.timeline(3600, [("sent", T, 5), ("sent", T + 3600, 9)], ("sent", "clicked"))
    text = charts.describe(t)
    assert text.startswith("Activity over time: sent, clicked per hour")
    assert "sent peaked at 9 around Sep 21 15:13" in text
    assert charts.describe(charts.timeline(60, [])) == (
        "Activity over time: no activity recorded yet")


def test_a_panel_per_event_each_with_its_own_scale_from_zero() -> None:
    """Clicks in the hundreds are not flattened by sends in the tens of thousands."""
    t = charts.timeline(60, [("sent", T, 30_000), ("sent", T + 60, 29_000),
                             ("clicked", T, 120), ("clicked", T + 60, 480)],
                        ("sent", "clicked", "failed"))
    svg = charts.svg(t)
    assert svg.count("<svg") == 2  # nothing failed: no empty panel
    sent, clicked = svg.split("</svg>")[:2]
    assert 'aria-label="sent: 59,000 in all' in sent and 'aria-label="clicked: 600' in clicked
    # Each scale's ticks: 0, half, and a round top.
    assert re.findall(r'text-anchor="end">([^<]+)</text>', clicked)[:3] == ["0", "250", "500"]
    assert re.findall(r'text-anchor="end">([^<]+)</text>', sent)[:3] == ["0", "25k", "50k"]
    # The busier clicked bucket reaches 96% of its panel's height, not 1% of the sends'.
    ys = [float(p.split(",")[1]) for p in re.search(r'points="([^"]+)"', clicked)[1].split()]
    assert ys[1] < ys[0] and (120 - 22 - ys[1]) / (120 - 22 - 20) > 0.9
    assert "<script" not in svg and "style=" not in svg  # nothing the CSP would block


def test_a_single_bucket_is_drawn_as_a_point() -> None:
    svg = charts.svg(charts.timeline(60, [("sent", T, 120_000)], ("sent",)))
    assert svg.count("<circle") == 1 and 'class="series sent"' in svg
    assert "No activity" in charts.svg(charts.timeline(60, [], ("sent",)))
