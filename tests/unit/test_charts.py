"""The report's chart (pure logic): buckets, counts, its accessible name, its SVG."""

from __future__ import annotations

from msgtrail.web.dashboard import charts

T = 1_790_000_000  # 2026-09-21 14:13:20 UTC


def test_bucket_spreads_the_span_over_at_most_48() -> None:
    assert charts.bucket_for(T, T + 30 * 60) == 60
    assert charts.bucket_for(T, T + 6 * 3600) == 900
    assert charts.bucket_for(T, T + 2 * 86400) == 3600
    assert charts.bucket_for(T, T + 400 * 86400) == 86400
    assert charts.bucket_for(T, T) == 60


def test_timeline_fills_empty_buckets_with_zero() -> None:
    t = charts.timeline(3600, [("sent", T, 5), ("sent", T + 2 * 3600, 7),
                               ("clicked", T + 3600, 2)])
    assert (t.start, t.size) == (T, 3)
    assert t.counts["sent"] == [5, 0, 7] and t.counts["clicked"] == [0, 2, 0]
    assert t.counts["failed"] == [0, 0, 0]


def test_description_names_the_chart_and_its_peaks() -> None:
    t = charts.timeline(3600, [("sent", T, 5), ("sent", T + 3600, 9)])
    text = charts.describe(t)
    assert text.startswith("Activity over time: sent, delivered, clicked, failed per hour")
    assert "sent peaked at 9 around Sep 21 15:13" in text
    assert charts.describe(charts.timeline(60, [])) == (
        "Activity over time: no activity recorded yet")


def test_svg_is_an_image_with_its_name_and_a_line_per_series() -> None:
    svg = charts.svg(charts.timeline(60, [("sent", T, 3), ("failed", T + 60, 1)]))
    assert svg.startswith('<svg class="chart" role="img" aria-label="Activity over time:')
    assert svg.count("<polyline") == len(charts.SERIES)
    assert "<script" not in svg and "style=" not in svg  # nothing the CSP would block


def test_a_single_bucket_is_drawn_as_points() -> None:
    svg = charts.svg(charts.timeline(60, [("sent", T, 120_000)]))
    assert svg.count("<circle") == 1 and 'class="series sent"' in svg
