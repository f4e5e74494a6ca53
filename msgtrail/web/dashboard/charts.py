"""The report's numbers as pictures (pure logic, no I/O): an activity chart drawn as
SVG on the server, so the page needs no chart library, no script and no network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

# Bucket sizes, in seconds, and how they read.
BUCKETS = ((60, "minute"), (300, "5 minutes"), (900, "15 minutes"), (3600, "hour"),
           (6 * 3600, "6 hours"), (86400, "day"))
# At most this many buckets across the chart.
MAX_BUCKETS = 48
SERIES = ("sent", "delivered", "clicked", "failed")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 48, 28, 12


@dataclass(frozen=True)
class Timeline:
    bucket: int  # seconds per bucket
    start: int  # unix seconds of the first bucket
    counts: dict[str, list[int]]  # series -> count per bucket

    @property
    def size(self) -> int:
        return len(next(iter(self.counts.values()), []))


def bucket_for(first: int, last: int) -> int:
    """The smallest bucket that spreads first..last over at most MAX_BUCKETS."""
    span = max(last - first, 1)
    for seconds, _ in BUCKETS:
        if span / seconds <= MAX_BUCKETS:
            return seconds
    return BUCKETS[-1][0]


def timeline(bucket: int, rows: list[tuple[str, int, int]]) -> Timeline:
    """Counts per series and bucket from (series, bucket start, count) rows."""
    if not rows:
        return Timeline(bucket, 0, {s: [] for s in SERIES})
    start = min(at for _, at, _ in rows)
    size = (max(at for _, at, _ in rows) - start) // bucket + 1
    counts = {s: [0] * size for s in SERIES}
    for series, at, n in rows:
        if series in counts:
            counts[series][(at - start) // bucket] += n
    return Timeline(bucket, start, counts)


def _label(seconds: int) -> str:
    return dict(BUCKETS).get(seconds, f"{seconds} s")


def _clock(ts: int, bucket: int) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%b %d" if bucket >= 86400 else "%b %d %H:%M")


def describe(t: Timeline) -> str:
    """The chart in words: its accessible name."""
    if not t.size:
        return "Activity over time: no activity recorded yet"
    end = t.start + t.size * t.bucket
    peaks = []
    for series in SERIES:
        values = t.counts[series]
        if any(values):
            top = max(range(len(values)), key=values.__getitem__)
            peaks.append(f"{series} peaked at {values[top]:,} around "
                         f"{_clock(t.start + top * t.bucket, t.bucket)}")
    return (f"Activity over time: {', '.join(SERIES)} per {_label(t.bucket)}, from "
            f"{_clock(t.start, t.bucket)} to {_clock(end, t.bucket)} UTC; "
            + "; ".join(peaks))


def svg(t: Timeline) -> str:
    """The chart: one line per series over the buckets, with a y scale and time ticks."""
    label = escape(describe(t))
    parts = [f'<svg class="chart" role="img" aria-label="{label}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}">']
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    top = max((max(v) for v in t.counts.values() if v), default=0) or 1
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
                 f'y2="{TOP + plot_h}"/>')
    for fraction in (0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{int(top * fraction):,}</text>')
    if t.size:
        step = plot_w / max(t.size - 1, 1)
        for i in sorted({0, t.size // 2, t.size - 1}):
            # The end labels align inward, so that neither runs off the chart.
            anchor = "start" if i == 0 else "end" if i == t.size - 1 else "middle"
            parts.append(f'<text class="tick" x="{LEFT + i * step:.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="{anchor}">{_clock(t.start + i * t.bucket, t.bucket)}'
                         '</text>')
        for series in SERIES:
            points = " ".join(f"{LEFT + i * step:.1f},{TOP + plot_h * (1 - n / top):.1f}"
                              for i, n in enumerate(t.counts[series]))
            parts.append(f'<polyline class="series {series}" points="{points}"/>')
            if t.size == 1 and t.counts[series][0]:
                # One bucket is a point, which a line would not show.
                parts.append(f'<circle class="series {series}" cx="{LEFT}" r="4" '
                             f'cy="{TOP + plot_h * (1 - t.counts[series][0] / top):.1f}"/>')
    parts.append("</svg>")
    return "".join(parts)
