"""Prometheus metrics: requests by route and status, match latency, and market figures.

Each app owns its registry (not prometheus_client's global one), so that many
apps in one process (the tests) never collide. Request counts and latencies are
recorded by the request-context middleware, which already knows each request's
route template, status and duration (prometheus-fastapi-instrumentator, used
before, matched every request against every route a second time: a third of
the cost of a request that touches no database); the market figures (orders by
status, subsidy reserved and settled by program: `app.ops.market`, handed in by the
app) are read from the database at scrape time, so they are right however many
worker processes serve the API.
With several workers, set PROMETHEUS_MULTIPROC_DIR (an empty directory shared
by the workers, emptied at each start) and each scrape adds up every worker's
request and latency figures.
"""

import asyncio
import hmac
import os
from typing import Protocol

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.db import Database
from app.core.errors import Unauthorized

MATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MarketFigures(Collector, Protocol):
    """Figures read from the database at each scrape (the domains', `app.ops.market`)."""

    async def refresh(self, session: AsyncSession) -> None: ...


class Metrics:
    """One app's registry and the metrics it observes itself."""

    def __init__(self, market: MarketFigures) -> None:
        self.registry = CollectorRegistry()
        self.market = market
        self.registry.register(self.market)
        self.match_latency = Histogram(
            "computematch_match_duration_seconds",
            "Time to find and rank the matches of one compute request",
            buckets=MATCH_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests_total",
            "Requests answered, by route template, method and status",
            ["handler", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer a request, by route template, method and status",
            ["handler", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._scrape = asyncio.Lock()

    def observe_request(self, handler: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request. `handler` is the route template (never the ids
        in a URL), or "none" where no route matched."""
        if handler == "/metrics":
            return
        labels = (handler, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    async def render(self, db: Database) -> bytes:
        # One scrape at a time per process: the market figures are read, then written out.
        async with self._scrape:
            async with db.sessionmaker() as session:
                await self.market.refresh(session)
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
                registry = CollectorRegistry()
                multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
                registry.register(self.market)
            else:
                registry = self.registry
            return generate_latest(registry)


def install(app: FastAPI, settings: Settings, db: Database, market: MarketFigures) -> Metrics:
    """Create the app's metrics; when enabled, serve GET /metrics (the request-context
    middleware counts the requests, `market` reads its figures at each scrape)."""
    app_metrics = Metrics(market)
    app.state.metrics = app_metrics
    if not settings.metrics_enabled:
        return app_metrics
    token = settings.metrics_token

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token is not None and not _bearer_matches(request, token.get_secret_value()):
            raise Unauthorized(
                "GET /metrics needs `Authorization: Bearer <COMPUTEMATCH_METRICS_TOKEN>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Response(await app_metrics.render(db), media_type=CONTENT_TYPE_LATEST)

    return app_metrics


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def observe_match(app: FastAPI, seconds: float) -> None:
    app_metrics: Metrics | None = getattr(app.state, "metrics", None)
    if app_metrics is not None:
        app_metrics.match_latency.observe(seconds)
