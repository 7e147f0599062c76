"""Soak: mixed traffic for minutes against `uvicorn --workers 2` with the edge's flags
(`computematch serve`'s), then memory and latency early against late.

Clients (Python, `--clients` at a time, one request each at a time) mix what a
marketplace's day holds: catalog and offer reads, matches of a request, quotes and
the orders placed on them, order reads. Every `--sample` seconds the workers' RSS is
read. At the end: per endpoint, p50 and p99 of the first minute against the last, the
RSS of the first minute against the last, every answer that was not a success, and
`check-invariants`. A leak shows as RSS still rising in the last minute; a slowdown
as a late p99 above the early one.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/soak.py --minutes 5 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/cm_bench_soak
"""

import argparse
import asyncio
import random
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.cli import uvicorn_flags
from bench._common import (
    check_invariants,
    close_database,
    operator_headers,
    percentile,
    running_server,
    start,
)

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL (default: a temporary SQLite file)")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--enterprises", type=int, default=16)
    parser.add_argument("--offers", type=int, default=40)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS reads")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    return parser.parse_args()


async def _post(client: httpx.AsyncClient, path: str, body: Any, headers: Any) -> Any:
    resp = await client.post(path, json=body, headers=headers)
    if resp.status_code != 201:
        raise RuntimeError(f"POST {path}: {resp.status_code} {resp.text}")
    return resp.json()


async def setup(client: httpx.AsyncClient, args: argparse.Namespace) -> dict[str, Any]:
    op = operator_headers()
    offers = []
    for p in range(max(1, args.offers // 8)):
        provider = await _post(
            client,
            "/v1/providers",
            {
                "name": f"Soak provider {p}",
                "kind": "intelligent_computing_center",
                "unified_social_credit_code": _credit_code(10_000 + p),
                "region_code": "330108",
                "status": "listed",
            },
            op,
        )
        key = await _post(
            client, "/v1/api-keys", {"role": "provider", "provider_id": provider["id"]}, op
        )
        for o in range(8):
            offers.append(
                await _post(
                    client,
                    "/v1/offers",
                    {
                        "external_id": f"soak-{p}-{o}",
                        "accelerator_id": "huawei-ascend-910b",
                        "cards_total": 100_000,
                        "price_per_card_hour": f"{8 + (p * 8 + o) % 13}.50",
                        "available_from": T0.isoformat(),
                        "available_until": (T0 + timedelta(days=365)).isoformat(),
                        "min_hours": 1,
                        "region_code": "330108",
                        "workloads": ["training", "inference"],
                        "free_trial_hours": 0,
                        "free_migration_support": False,
                    },
                    {"Authorization": f"Bearer {key['key']}"},
                )
            )
    enterprises = []
    for e in range(args.enterprises):
        enterprise = await _post(
            client,
            "/v1/enterprises",
            {
                "name": f"Soak enterprise {e}",
                "unified_social_credit_code": _credit_code(20_000 + e),
                "region_code": "330108",
                "is_foundation_model_enterprise": False,
                "filed_models": [],
            },
            op,
        )
        key = await _post(
            client, "/v1/api-keys", {"role": "enterprise", "enterprise_id": enterprise["id"]}, op
        )
        enterprises.append({"Authorization": f"Bearer {key['key']}"})
    return {"offers": offers, "enterprises": enterprises, "orders": []}


def _credit_code(n: int) -> str:
    from app.core.validators import make_credit_code

    return make_credit_code("330108", n * 7919)


def _request_body(rng: random.Random) -> dict[str, Any]:
    return {
        "accelerator_ids": [],
        "domestic": "any",
        "cards": rng.choice((1, 2, 4)),
        "hours": rng.choice((1, 2, 8)),
        "earliest_start": T0.isoformat(),
        "latest_start": (T0 + timedelta(days=30)).isoformat(),
        "purpose": "training",
        "filed_model": None,
        "max_net_budget": None,
        "region_prefixes": [],
        "allow_split": False,
    }


async def client_loop(
    n: int,
    client: httpx.AsyncClient,
    market: dict[str, Any],
    until: float,
    samples: list[tuple[float, str, float, int]],
) -> None:
    rng = random.Random(n)
    headers = market["enterprises"][n % len(market["enterprises"])]
    while time.monotonic() < until:
        kind = rng.choices(("catalog", "offers", "match", "order", "read"), (3, 3, 2, 2, 2))[0]
        started = time.monotonic()
        try:
            if kind == "catalog":
                resp = await client.get("/v1/accelerators", headers=headers)
                samples.append((started, "GET /v1/accelerators", _since(started), resp.status_code))
            elif kind == "offers":
                resp = await client.get("/v1/offers", params={"limit": 20}, headers=headers)
                samples.append((started, "GET /v1/offers", _since(started), resp.status_code))
            elif kind == "match":
                req = await client.post(
                    "/v1/compute-requests", json=_request_body(rng), headers=headers
                )
                samples.append(
                    (started, "POST /v1/compute-requests", _since(started), req.status_code)
                )
                if req.status_code == 201:
                    t = time.monotonic()
                    resp = await client.get(
                        f"/v1/compute-requests/{req.json()['id']}/matches", headers=headers
                    )
                    samples.append((t, "GET …/matches", _since(t), resp.status_code))
            elif kind == "order":
                req = await client.post(
                    "/v1/compute-requests", json=_request_body(rng), headers=headers
                )
                samples.append(
                    (started, "POST /v1/compute-requests", _since(started), req.status_code)
                )
                if req.status_code != 201:
                    continue
                offer = rng.choice(market["offers"])
                t = time.monotonic()
                quote = await client.post(
                    "/v1/quotes",
                    json={"request_id": req.json()["id"], "offer_id": offer["id"]},
                    headers=headers,
                )
                samples.append((t, "POST /v1/quotes", _since(t), quote.status_code))
                if quote.status_code != 201:
                    continue
                t = time.monotonic()
                order = await client.post(
                    "/v1/orders",
                    json={"quote_id": quote.json()["id"]},
                    headers={**headers, "Idempotency-Key": f"soak-{quote.json()['id']}"},
                )
                samples.append((t, "POST /v1/orders", _since(t), order.status_code))
                if order.status_code == 201:
                    market["orders"].append((headers, order.json()["id"]))
            elif market["orders"]:
                owner, order_id = rng.choice(market["orders"])
                resp = await client.get(f"/v1/orders/{order_id}", headers=owner)
                samples.append((started, "GET /v1/orders/{id}", _since(started), resp.status_code))
        except httpx.HTTPError as error:
            samples.append((started, f"transport: {type(error).__name__}", _since(started), 0))


def _since(started: float) -> float:
    return time.monotonic() - started


async def soak(base_url: str, args: argparse.Namespace, rss: Any) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        market = await setup(client, args)
        samples: list[tuple[float, str, float, int]] = []
        memory: list[tuple[float, float]] = []
        began = time.monotonic()
        until = began + args.minutes * 60

        async def sample_memory() -> None:
            while time.monotonic() < until:
                memory.append((time.monotonic() - began, rss()))
                await asyncio.sleep(args.sample)

        await asyncio.gather(
            sample_memory(),
            *(client_loop(n, client, market, until, samples) for n in range(args.clients)),
        )
    return {"samples": samples, "memory": memory, "began": began}


def report(result: dict[str, Any], minutes: float) -> None:
    began, samples, memory = result["began"], result["samples"], result["memory"]
    end = began + minutes * 60
    early = [s for s in samples if s[0] < began + 60]
    late = [s for s in samples if s[0] >= end - 60]
    by_early, by_late = defaultdict(list), defaultdict(list)
    for _t, name, latency, status in early:
        if 200 <= status < 300:
            by_early[name].append(latency * 1000)
    for _t, name, latency, status in late:
        if 200 <= status < 300:
            by_late[name].append(latency * 1000)
    print(f"\n{len(samples):,} requests in {minutes:g} min")
    print("| endpoint | first minute: n, p50, p99 (ms) | last minute: n, p50, p99 (ms) |")
    print("|---|---|---|")
    for name in sorted(set(by_early) | set(by_late)):
        a, b = by_early.get(name, []), by_late.get(name, [])
        cell = lambda v: (  # noqa: E731
            f"{len(v):,}, {percentile(v, 50):.1f}, {percentile(v, 99):.1f}" if v else "-"
        )
        print(f"| {name} | {cell(a)} | {cell(b)} |")
    first = [m for t, m in memory if t < 60]
    last = [m for t, m in memory if t >= minutes * 60 - 60]
    if first and last:
        print(
            f"RSS of the workers (MB): first minute {min(first):.1f}–{max(first):.1f}, "
            f"last minute {min(last):.1f}–{max(last):.1f}"
        )
    failures = Counter((name, status) for _, name, _, status in samples if not 200 <= status < 300)
    print("not a success:", dict(failures) or "none")


def main() -> None:
    args = parse_args()
    db = start(args.database_url, prefix="cm-soak")
    try:
        with running_server(
            db.url,
            workers=2,
            uvicorn_args=uvicorn_flags(),
            env={"COMPUTEMATCH_MAX_OPEN_REQUESTS_PER_ENTERPRISE": "1000000"},
        ) as server:
            result = asyncio.run(soak(server.base_url, args, server.rss_mb))
        report(result, args.minutes)
        code, text = check_invariants(db.url)
        print("check-invariants:", "ok" if code == 0 else f"FAILED\n{text}")
    finally:
        close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
