"""The burn chart's figures: weekly cumulative use and the straight-line projection."""

from datetime import date
from decimal import Decimal

from app.console.charts import burn_chart, short_money
from app.console.service import burn


def test_cumulative_by_week_and_the_day_the_line_meets_the_budget() -> None:
    days = {date(2026, 1, 1): Decimal("100"), date(2026, 1, 9): Decimal("50")}
    b = burn(2026, days, Decimal("1000"), today=date(2026, 1, 15))
    # Week 0 (1–7 Jan) holds 100, week 1 (8–14 Jan) 50 more; today is in week 2.
    assert b.weekly == [Decimal("100"), Decimal("150"), Decimal("150")]
    # 150 over 15 days is 10 a day: 1,000 is reached on day 100, 10 April.
    assert b.meets_budget_on == date(2026, 4, 10)
    assert b.projected_year_end == Decimal("3650.00")


def test_a_pace_that_lasts_the_year_meets_nothing() -> None:
    b = burn(2026, {date(2026, 6, 1): Decimal("10")}, Decimal("1000000"), today=date(2026, 7, 1))
    assert b.meets_budget_on is None
    assert b.projected_year_end is not None
    assert b.projected_year_end < Decimal("1000000")


def test_a_budget_already_spent_is_met_today_and_past_years_project_nothing() -> None:
    spent = burn(2026, {date(2026, 2, 1): Decimal("500")}, Decimal("400"), today=date(2026, 3, 1))
    assert spent.meets_budget_on == date(2026, 3, 1)
    past = burn(2025, {date(2025, 2, 1): Decimal("500")}, Decimal("400"), today=date(2026, 3, 1))
    assert past.projected_year_end is None
    assert len(past.weekly) == past.weeks_in_year
    assert past.weekly[-1] == Decimal("500")


def test_entries_written_before_the_year_count_in_its_first_week() -> None:
    b = burn(2026, {date(2025, 12, 20): Decimal("7")}, None, today=date(2026, 1, 3))
    assert b.weekly == [Decimal("7")]
    assert b.meets_budget_on is None


def test_the_chart_draws_the_line_the_budget_and_the_projection() -> None:
    b = burn(2026, {date(2026, 1, 1): Decimal("100")}, Decimal("1000"), today=date(2026, 1, 20))
    chart = burn_chart(b)
    assert chart.budget_y is not None
    assert chart.projection is not None
    assert chart.meet is not None
    # The projection starts where the line ends and rises (smaller y) to the year's end.
    assert chart.projection[3] < chart.projection[1]
    assert chart.used_points.count(",") == len(b.weekly) + 1


def test_axis_money() -> None:
    assert short_money(Decimal("50000000")) == "¥5000万"
    assert short_money(Decimal("150000000")) == "¥1.5亿"
