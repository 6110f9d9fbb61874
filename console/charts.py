"""Chart geometry for the admin dashboard, drawn by the server as inline SVG.

The functions compute rectangles in a fixed viewBox from plain numbers; the templates in
`templates/admin/dashboard/` only print them. No JavaScript and no static asset is needed, so a
chart renders wherever the page does (docs/ARCHITECTURE.md, "Admin console").
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

Number = int | Decimal | float


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: Number

    @property
    def label_x(self) -> float:
        """Where a horizontal bar's label ends (right-aligned before the bar)."""
        return round(self.x - 6, 2)

    @property
    def value_x(self) -> float:
        """Where a horizontal bar's value starts (after the bar's end)."""
        return round(self.x + self.width + 4, 2)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    total: Number
    max_value: Number
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    first_label: str = ""
    last_label: str = ""

    @property
    def baseline(self) -> float:
        return self.height - 1


def _scale(value: Number, top: Number, room: float) -> float:
    if top <= 0 or value <= 0:
        return 0.0
    return round(float(value) / float(top) * room, 2)


def daily_bars(
    key: str, title: str, points: list[tuple[date, Number]], *, width: int = 300, height: int = 80
) -> Chart:
    """One vertical bar per day, left (oldest) to right; heights relative to the largest value.

    Negative values draw as empty bars (none of the dashboard's series can be negative).
    """
    count = max(len(points), 1)
    slot = width / count
    gap = 1 if slot > 3 else 0
    top = max((value for _, value in points), default=0)
    bars = []
    for i, (day, value) in enumerate(points):
        h = _scale(value, top, height - 2)
        bars.append(
            Bar(
                x=round(i * slot, 2),
                y=round(height - 1 - h, 2),
                width=round(slot - gap, 2),
                height=h,
                label=day.isoformat(),
                value=value,
            )
        )
    return Chart(
        key=key,
        title=title,
        total=sum((value for _, value in points), 0),
        max_value=top,
        width=width,
        height=height,
        bars=bars,
        first_label=points[0][0].strftime("%d %b") if points else "",
        last_label=points[-1][0].strftime("%d %b") if points else "",
    )


def horizontal_bars(
    key: str, title: str, points: list[tuple[str, Number]], *, width: int = 300, row: int = 18
) -> Chart:
    """One horizontal bar per label, in the given order; lengths relative to the largest value.

    The left 40% of the width holds the labels, the bars use the rest (the template writes the
    value at the bar's end)."""
    label_room = round(width * 0.4)
    room = width - label_room - 40  # 40 px for the value printed after the bar
    top = max((value for _, value in points), default=0)
    bars = [
        Bar(
            x=label_room,
            y=i * row + 2,
            width=_scale(value, top, room),
            height=row - 4,
            label=label,
            value=value,
        )
        for i, (label, value) in enumerate(points)
    ]
    return Chart(
        key=key,
        title=title,
        total=sum((value for _, value in points), 0),
        max_value=top,
        width=width,
        height=max(len(points), 1) * row,
        bars=bars,
    )
