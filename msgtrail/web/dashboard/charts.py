"""The report's numbers as pictures (pure logic, no I/O): the activity over time as
small multiples, one small chart per event with its own scale, drawn as SVG on the
server (no chart library, no script, no network). A shared scale laid the rare events
(a few hundred clicks, failures) flat against tens of thousands sent; each panel's
scale starts at 0 and ends at a round number, and the panels are drawn at the width a
phone shows them, so their labels stay legible at 360 px."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from msgtrail.store.counters import BUCKETS

# How each bucket reads.
_BUCKET_NAMES = dict(zip(BUCKETS, ("minute", "5 minutes", "15 minutes", "hour", "6 hours",
                                   "day"), strict=True))
# The order panels are drawn in, the most common first; a channel's other events after.
ORDER = ("sent", "delivered", "opened", "clicked", "failed", "bounced", "unsubscribed")
WIDTH, HEIGHT, LEFT, RIGHT, BOTTOM, TOP = 340, 120, 44, 10, 22, 20


@dataclass(frozen=True)
class Timeline:
    bucket: int  # seconds per bucket
    start: int  # unix seconds of the first bucket
    counts: dict[str, list[int]]  # event -> count per bucket, in drawing order

    @property
    def size(self) -> int:
        return len(next(iter(self.counts.values()), []))


def timeline(bucket: int, rows: list[tuple[str, int, int]],
             events: tuple[str, ...] | list[str] = ORDER) -> Timeline:
    """Counts per event (of `events`, in ORDER) and bucket, from (event, bucket start,
    count) rows; the buckets run from the first activity to the last."""
    names = sorted(events, key=lambda e: (ORDER.index(e) if e in ORDER else len(ORDER), e))
    if not rows:
        return Timeline(bucket, 0, {e: [] for e in names})
    start = min(at for _, at, _ in rows)
    size = (max(at for _, at, _ in rows) - start) // bucket + 1
    counts = {e: [0] * size for e in names}
    for event, at, n in rows:
        if event in counts:
            counts[event][(at - start) // bucket] += n
    return Timeline(bucket, start, counts)


def bucket_name(seconds: int) -> str:
    return _BUCKET_NAMES.get(seconds, f"{seconds} s")


def nice_top(value: int) -> int:
    """The round number (1, 2 or 5 times a power of ten) at or above `value`: a scale's
    end that reads at a glance."""
    top = 1
    while True:
        for step in (1, 2, 5):
            if step * top >= value:
                return step * top
        top *= 10


def _clock(ts: int, bucket: int) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%b %d" if bucket >= 86400 else "%b %d %H:%M")


def _short(n: float) -> str:
    """A tick's number: 0, 2.5, 250, 25k, 1.5M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


def describe(t: Timeline) -> str:
    """The chart in words: its accessible name."""
    if not t.size:
        return "Activity over time: no activity recorded yet"
    end = t.start + t.size * t.bucket
    peaks = []
    for event, values in t.counts.items():
        if any(values):
            top = max(range(len(values)), key=values.__getitem__)
            peaks.append(f"{event} peaked at {values[top]:,} around "
                         f"{_clock(t.start + top * t.bucket, t.bucket)}")
    return (f"Activity over time: {', '.join(t.counts)} per "
            f"{_BUCKET_NAMES.get(t.bucket, f'{t.bucket} s')}, from "
            f"{_clock(t.start, t.bucket)} to {_clock(end, t.bucket)} UTC; "
            + "; ".join(peaks))


def svg(t: Timeline) -> str:
    """The small multiples: a panel per event that happened, each an image named for
    what it shows."""
    drawn = [event for event, values in t.counts.items() if any(values)]
    if not drawn:
        return (f'<p class="muted chart-empty" role="img" aria-label="{escape(describe(t))}">'
                "No activity recorded yet.</p>")
    return "".join(_panel(t, event) for event in drawn)


def _panel(t: Timeline, event: str) -> str:
    values = t.counts[event]
    top = nice_top(max(values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    peak = max(range(len(values)), key=values.__getitem__)
    label = escape(f"{event}: {sum(values):,} in all, peaking at {values[peak]:,} per "
                   f"{_BUCKET_NAMES.get(t.bucket, f'{t.bucket} s')} around "
                   f"{_clock(t.start + peak * t.bucket, t.bucket)} UTC")
    parts = [f'<svg class="chart panel" role="img" aria-label="{label}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}">',
             f'<text class="title" x="{LEFT}" y="13">{escape(event)} · {sum(values):,}</text>']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="{"axis" if fraction == 0 else "grid"}" x1="{LEFT}" '
                     f'y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_short(top * fraction)}</text>")
    step = plot_w / max(t.size - 1, 1)
    for i in sorted({0, t.size - 1}):
        anchor = "start" if i == 0 else "end"
        parts.append(f'<text class="tick" x="{LEFT + i * step:.1f}" y="{HEIGHT - 5}" '
                     f'text-anchor="{anchor}">{_clock(t.start + i * t.bucket, t.bucket)}'
                     "</text>")
    if t.size == 1:  # one bucket is a point, which a line would not show
        parts.append(f'<circle class="series {event}" cx="{LEFT}" r="4" '
                     f'cy="{TOP + plot_h * (1 - values[0] / top):.1f}"/>')
    else:
        points = " ".join(f"{LEFT + i * step:.1f},{TOP + plot_h * (1 - n / top):.1f}"
                          for i, n in enumerate(values))
        parts.append(f'<polyline class="series {event}" points="{points}"/>')
    parts.append("</svg>")
    return "".join(parts)
