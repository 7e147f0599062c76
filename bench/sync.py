"""PUT /v1/providers/{id}/offers:sync of 10,000 offers, beside the keyed read, on one server.

    flock /tmp/computematch-bench.lock .venv/bin/python bench/sync.py [--database-url URL]

Migrates a scratch database (a temporary SQLite file by default; a PostgreSQL
URL is created if missing and dropped afterwards), starts `uvicorn app.main:app`
(one worker) on a free loopback port, and for each of --runs runs creates a
provider through the API, then times, each as one call:

- the first sync of --offers offers (all created),
- the same body again (all unchanged),
- the same inventory with 10% of the prices changed (updated).

Then 200 GET /v1/offers/{id} as a baseline. Prints each run and the medians.
Targets (bench/README.md): first sync <= 5 s, unchanged re-sync <= 2 s.
"""

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.validators import make_credit_code
from bench import _common as common

SEED = 2026
ACCELERATORS = [
    ("huawei-ascend-910b", "12.00"),
    ("huawei-ascend-910c", "20.00"),
    ("nvidia-h20", "10.00"),
    ("nvidia-a800-sxm-80gb", "14.00"),
    ("cambricon-mlu590", "9.00"),
]
REGIONS = ["330108", "330106", "330110", "330109", "330203"]
TARGETS = {"first": 5.0, "unchanged": 2.0}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", help="default: a temporary SQLite file")
    p.add_argument("--offers", type=int, default=10_000, help="offers per sync")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--reads", type=int, default=200, help="GET /v1/offers/{id} for the baseline")
    p.add_argument("--changed", type=float, default=0.10, help="share of prices changed")
    p.add_argument("--keep", action="store_true", help="keep the database the run created")
    return p.parse_args()


def inventory(n: int, run: int) -> list[dict[str, Any]]:
    """A provider's whole inventory: n offers over a few models, regions and windows."""
    rng = random.Random(SEED + run)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    offers = []
    for i in range(n):
        accelerator, price = ACCELERATORS[i % len(ACCELERATORS)]
        begin = start + timedelta(days=rng.randint(0, 60))
        offers.append(
            {
                "external_id": f"node-{i:06d}",
                "accelerator_id": accelerator,
                "cards_total": rng.choice([8, 16, 32, 64, 128]),
                "price_per_card_hour": price,
                "available_from": begin.isoformat(),
                "available_until": (begin + timedelta(days=rng.randint(30, 365))).isoformat(),
                "min_hours": rng.choice([1, 1, 8, 24]),
                "region_code": REGIONS[i % len(REGIONS)],
                "workloads": ["training", "inference"],
                "free_trial_hours": rng.choice([0, 0, 2, 10]),
                "free_migration_support": rng.random() < 0.3,
            }
        )
    return offers


def with_changed_prices(offers: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    step = max(1, round(1 / share))
    changed = []
    for i, offer in enumerate(offers):
        if i % step == 0:
            offer = {
                **offer,
                "price_per_card_hour": f"{float(offer['price_per_card_hour']) + 1:.2f}",
            }
        changed.append(offer)
    return changed


def timed_sync(
    client: httpx.Client, provider: dict[str, Any], body: bytes
) -> tuple[float, dict[str, int]]:
    headers = {"Authorization": f"Bearer {provider['key']}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    resp = client.put(f"/v1/providers/{provider['id']}/offers:sync", content=body, headers=headers)
    elapsed = time.perf_counter() - t0
    if resp.status_code != 200:
        raise RuntimeError(f"sync answered {resp.status_code}: {resp.text[:500]}")
    counts: dict[str, int] = resp.json()
    return elapsed, counts


def new_provider(client: httpx.Client, run: int) -> dict[str, Any]:
    operator = common.operator_headers()
    made = client.post(
        "/v1/providers",
        json={
            "name": f"bench sync provider {run}",
            "kind": "intelligent_computing_center",
            "unified_social_credit_code": make_credit_code("330108", SEED * 1000 + run),
            "region_code": "330108",
            "status": "listed",
        },
        headers=operator,
    )
    made.raise_for_status()
    provider_id = made.json()["id"]
    key = client.post(
        "/v1/api-keys", json={"role": "provider", "provider_id": provider_id}, headers=operator
    )
    key.raise_for_status()
    return {"id": provider_id, "key": key.json()["key"]}


def expect(counts: dict[str, int], **wanted: int) -> None:
    got = {k: counts.get(k, 0) for k in wanted}
    if got != wanted:
        raise RuntimeError(f"sync counts {counts}, expected {wanted}")


def read_baseline(client: httpx.Client, provider: dict[str, Any], reads: int) -> list[float]:
    headers = {"Authorization": f"Bearer {provider['key']}"}
    page = client.get(
        "/v1/offers", params={"limit": 500, "provider_id": provider["id"]}, headers=headers
    ).json()["items"]
    ids = [offer["id"] for offer in page]
    rng = random.Random(SEED)
    for offer_id in ids[:20]:  # warm-up
        client.get(f"/v1/offers/{offer_id}", headers=headers)
    latencies = []
    for _ in range(reads):
        t0 = time.perf_counter()
        resp = client.get(f"/v1/offers/{rng.choice(ids)}", headers=headers)
        latencies.append(time.perf_counter() - t0)
        resp.raise_for_status()
    return latencies


def main() -> None:
    args = parse_args()
    n = args.offers
    n_changed = len(range(0, n, max(1, round(1 / args.changed))))
    db = common.start(args.database_url, prefix="cm-bench-sync")
    backend = db.backend
    try:
        timings: dict[str, list[float]] = {"first": [], "unchanged": [], "changed": []}
        with (
            common.running_server(db.url) as server,
            httpx.Client(base_url=server.base_url, timeout=300) as client,
        ):
            provider: dict[str, Any] = {}
            body_bytes = 0
            for run in range(1, args.runs + 1):
                provider = new_provider(client, run)
                offers = inventory(n, run)
                body = json.dumps({"offers": offers}).encode()
                changed = json.dumps({"offers": with_changed_prices(offers, args.changed)}).encode()
                body_bytes = len(body)

                first, counts = timed_sync(client, provider, body)
                expect(counts, created=n, updated=0, unchanged=0)
                unchanged, counts = timed_sync(client, provider, body)
                expect(counts, created=0, updated=0, unchanged=n)
                updated, counts = timed_sync(client, provider, changed)
                expect(counts, created=0, updated=n_changed, unchanged=n - n_changed)
                timings["first"].append(first)
                timings["unchanged"].append(unchanged)
                timings["changed"].append(updated)
                print(
                    f"run {run}: first sync {first:.2f} s | unchanged {unchanged:.2f} s | "
                    f"{n_changed} prices changed {updated:.2f} s | server RSS "
                    f"{server.rss_mb():.0f} MB",
                    flush=True,
                )
            reads = read_baseline(client, provider, args.reads)
        read_ms = statistics.median(reads) * 1000
        med = {kind: statistics.median(values) for kind, values in timings.items()}
        print(
            f"\n{backend}, {n} offers per sync ({body_bytes / 1e6:.1f} MB body), "
            f"median of {args.runs} runs, one uvicorn worker:\n"
            f"  first sync (all created)      {med['first']:6.2f} s   target <= "
            f"{TARGETS['first']:.0f} s  {'ok' if med['first'] <= TARGETS['first'] else 'MISSED'}\n"
            f"  unchanged re-sync             {med['unchanged']:6.2f} s   target <= "
            f"{TARGETS['unchanged']:.0f} s  "
            f"{'ok' if med['unchanged'] <= TARGETS['unchanged'] else 'MISSED'}\n"
            f"  re-sync, {args.changed:.0%} prices changed   {med['changed']:6.2f} s\n"
            f"  GET /v1/offers/{{id}} median  {read_ms:6.2f} ms over {len(reads)} reads"
        )
    finally:
        common.close_database(db, keep=args.keep)


if __name__ == "__main__":
    main()
