"""The overview's two charts as inline SVG polylines, drawn the same way by the page script
(static/dashboard.js) when it refreshes them: no chart library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 160
PAD = 4


@dataclass(frozen=True, slots=True)
class Chart:
    """A polyline's points attribute, how many points it has, and the top of its scale."""

    points: str
    count: int
    top: float


def chart(history: Sequence[Sequence[float | int | None]], column: int) -> Chart:
    """Plot ``column`` of the history rows ([t, depth, ops/s]) against time; None is a gap
    in the data and is left out."""
    values = [(float(row[0] or 0), float(v)) for row in history if (v := row[column]) is not None]
    if not values:
        return Chart("", 0, 0.0)
    first, last = values[0][0], values[-1][0]
    top = max(v for _, v in values) or 1.0
    span = (last - first) or 1.0
    points = " ".join(
        f"{PAD + (t - first) / span * (WIDTH - 2 * PAD):.1f},"
        f"{HEIGHT - PAD - v / top * (HEIGHT - 2 * PAD):.1f}"
        for t, v in values
    )
    return Chart(points, len(values), top)
