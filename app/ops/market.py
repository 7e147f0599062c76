"""The market's figures for Prometheus: orders by status, subsidy by program.

Read from the database at each scrape (`core.metrics` calls `refresh`), so they are
right however many worker processes serve the API.
"""

from collections.abc import Iterable, Iterator
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.timeutil import today_shanghai
from app.ledger import service as ledger
from app.models import Order, OrderStatus, SubsidyProgram

ORDER_STATUSES = tuple(status.value for status in OrderStatus)


class MarketCollector:
    """Orders by status and subsidy by program, as last read from the database."""

    def __init__(self) -> None:
        self.orders: dict[str, int] = dict.fromkeys(ORDER_STATUSES, 0)
        self.year = today_shanghai().year
        self.reserved: dict[str, Decimal] = {}
        self.settled: dict[str, Decimal] = {}
        self.budgets: dict[str, Decimal] = {}

    async def refresh(self, session: AsyncSession) -> None:
        rows = await session.execute(select(Order.status, func.count()).group_by(Order.status))
        orders = dict.fromkeys(ORDER_STATUSES, 0)
        for status, count in rows:
            orders[status] = count
        year = today_shanghai().year
        programs = (
            await session.execute(select(SubsidyProgram.id, SubsidyProgram.annual_budget))
        ).all()
        balances = await ledger.program_balances(session, year)
        zero = Decimal("0.00")
        self.orders = orders
        self.year = year
        self.reserved = {p: balances[p].reserved if p in balances else zero for p, _ in programs}
        self.settled = {p: balances[p].settled if p in balances else zero for p, _ in programs}
        self.budgets = {p: budget for p, budget in programs if budget is not None}

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        orders = GaugeMetricFamily(
            "computematch_orders", "Orders in the database by status", labels=["status"]
        )
        for status, count in sorted(self.orders.items()):
            orders.add_metric([status], count)
        yield orders
        year = str(self.year)
        for name, doc, values in (
            (
                "computematch_subsidy_reserved_yuan",
                "Subsidy reserved for orders not yet settled, this year (CNY), by program",
                self.reserved,
            ),
            (
                "computematch_subsidy_settled_yuan",
                "Subsidy settled on completed orders, this year (CNY), by program",
                self.settled,
            ),
        ):
            family = GaugeMetricFamily(name, doc, labels=["program_id", "year"])
            for program_id, amount in sorted(values.items()):
                family.add_metric([program_id, year], float(amount))
            yield family
        budgets = GaugeMetricFamily(
            "computematch_subsidy_annual_budget_yuan",
            "A program's annual budget (CNY); programs without one are left out",
            labels=["program_id"],
        )
        for program_id, amount in sorted(self.budgets.items()):
            budgets.add_metric([program_id], float(amount))
        yield budgets
