"""Charts as SVG geometry computed on the server: the templates draw what these return
(numbers and short labels only, escaped like any other text), so the console needs
no script for them."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from app.console.service import Burn

WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 16, 28


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass
class BurnChart:
    width: int
    height: int
    used_points: str
    budget_y: float | None
    projection: tuple[float, float, float, float] | None
    meet: tuple[float, float] | None
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    plot: tuple[int, int, int, int] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)


def _trim(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def short_money(value: Decimal, lang: str = "zh") -> str:
    """¥1.2亿 / ¥350万 / ¥8,000 (in English ¥120M / ¥3.5M / ¥8,000): axis labels that fit."""
    if lang == "en":
        if value >= 1_000_000:
            return f"¥{_trim(value / 1_000_000)}M"
        if value >= 10_000:
            return f"¥{_trim(value / 1_000)}K"
        return f"¥{value:,.0f}"
    if value >= 100_000_000:
        return f"¥{_trim(value / 100_000_000)}亿"
    if value >= 10_000:
        return f"¥{_trim(value / 10_000)}万"
    return f"¥{value:,.0f}"


NICE = ("1", "1.2", "1.6", "2", "2.4", "3", "4", "5", "6", "8", "10")
SMALLEST_TOP = Decimal(10_000)


def _nice_top(value: Decimal) -> Decimal:
    """The axis's top: a round figure at or above `value` whose quarters read well."""
    if value <= SMALLEST_TOP:
        return SMALLEST_TOP
    exponent = len(str(int(value))) - 1
    step = Decimal(10) ** exponent
    for m in NICE:
        top = step * Decimal(m)
        if top >= value:
            return top
    return step * 10  # pragma: no cover


def burn_chart(b: Burn, *, lang: str = "zh", width: int = WIDTH, height: int = HEIGHT) -> BurnChart:
    x0, y0, x1, y1 = LEFT, TOP, width - RIGHT, height - BOTTOM
    days_in_year = (date(b.year, 12, 31) - date(b.year, 1, 1)).days + 1
    highest = max(
        [Decimal(0), *b.weekly]
        + ([b.budget] if b.budget is not None else [])
        + ([b.projected_year_end] if b.projected_year_end is not None else [])
    )
    top = _nice_top(highest * Decimal("1.05"))

    def x(day_index: float) -> float:
        return round(x0 + (x1 - x0) * day_index / days_in_year, 1)

    def y(amount: Decimal) -> float:
        return round(float(y1 - (y1 - y0) * (amount / top)), 1)

    # Each week's figure at the end of that week (the last one: today's, or the year's end).
    points = [f"{x(0)},{y(Decimal(0))}"]
    for week, amount in enumerate(b.weekly):
        points.append(f"{x(min((week + 1) * 7, days_in_year))},{y(amount)}")
    projection = None
    meet = None
    if b.projected_year_end is not None and b.weekly:
        last_x = min(len(b.weekly) * 7, days_in_year)
        projection = (x(last_x), y(b.weekly[-1]), x(days_in_year), y(b.projected_year_end))
        if b.meets_budget_on is not None and b.budget is not None:
            meet = (x((b.meets_budget_on - date(b.year, 1, 1)).days + 1), y(b.budget))
    x_ticks = []
    for month in range(1, 13):
        first = date(b.year, month, 1)
        x_ticks.append(Tick(x((first - date(b.year, 1, 1)).days), f"{month}"))
    y_ticks = [
        Tick(y(top * Decimal(i) / 4), short_money(top * Decimal(i) / 4, lang)) for i in range(5)
    ]
    return BurnChart(
        width=width,
        height=height,
        used_points=" ".join(points),
        budget_y=y(b.budget) if b.budget is not None else None,
        projection=projection,
        meet=meet,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        plot=(x0, y0, x1, y1),
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    width: float
    y: float
    text: str


def bars(
    items: Sequence[tuple[str, Decimal, str]], *, width: int = 360, row: int = 22
) -> tuple[list[Bar], int]:
    """Horizontal bars (label, value, value as written), scaled to the largest."""
    largest = max((v for _, v, _ in items), default=Decimal(0))
    out = []
    for i, (label, value, text) in enumerate(items):
        share = float(value / largest) if largest > 0 else 0.0
        out.append(Bar(label, value, round(width * max(share, 0.0), 1), i * row, text))
    return out, max(len(items), 1) * row


@dataclass(frozen=True)
class Spark:
    points: str
    dots: list[tuple[float, float]]
    width: int
    height: int


def sparkline(values: Sequence[Decimal | None], *, width: int = 160, height: int = 32) -> Spark:
    """A line through the weeks that have a figure (gaps where none traded)."""
    known = [v for v in values if v is not None]
    if not known:
        return Spark("", [], width, height)
    low, high = min(known), max(known)
    span = high - low or Decimal(1)
    step = (width - 8) / max(len(values) - 1, 1)
    coords = [
        (round(4 + i * step, 1), round(float(height - 4 - (height - 8) * ((v - low) / span)), 1))
        for i, v in enumerate(values)
        if v is not None
    ]
    return Spark(" ".join(f"{a},{b}" for a, b in coords), coords, width, height)


def week_label(start: date) -> str:
    end = start + timedelta(days=6)
    return f"{start:%m-%d}–{end:%m-%d}"
