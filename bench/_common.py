"""Shared plumbing of the benchmarks: databases, a real uvicorn server, percentiles.

Benchmarks are scripts run by hand (see bench/README.md), never tests.
"""

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
OPERATOR_KEY = "bench-operator-key-" + os.urandom(12).hex()


# --------------------------------------------------------------------------- databases


@dataclass
class BenchDatabase:
    url: str
    created: bool  # made by this run: dropped (PostgreSQL) or deleted (SQLite) at the end
    tmpdir: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.url).get_backend_name() == "sqlite"

    @property
    def backend(self) -> str:
        return "SQLite" if self.is_sqlite else "PostgreSQL"


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _pg_database_exists(url: str) -> bool:
    name = make_url(url).database
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    engine = create_async_engine(admin)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
    finally:
        await engine.dispose()
    return found is not None


def open_database(url: str | None, *, prefix: str) -> BenchDatabase:
    """A database for the run: a temp SQLite file by default; a PostgreSQL one is
    created if it does not exist (and then dropped by `close_database`)."""
    if url is None:
        tmpdir = tempfile.mkdtemp(prefix=f"{prefix}-")
        return BenchDatabase(f"sqlite+aiosqlite:///{tmpdir}/bench.db", created=True, tmpdir=tmpdir)
    db = BenchDatabase(url, created=False)
    if not db.is_sqlite and not asyncio.run(_pg_database_exists(url)):
        name = make_url(url).database
        admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        db.created = True
    return db


def start(url: str | None, *, prefix: str) -> BenchDatabase:
    """A benchmark's start: refuse to run beside another one (exit 2), then open the
    database (`open_database`), say which, and migrate it."""
    others = other_benchmarks_running()
    if others:
        print("other benchmarks are running; wait for them:\n  " + "\n  ".join(others))
        sys.exit(2)
    db = open_database(url, prefix=prefix)
    print(f"database: {db.backend} ({db.url})", flush=True)
    try:
        migrate(db.url)
    except BaseException:
        close_database(db, keep=False)
        raise
    return db


def close_database(db: BenchDatabase, *, keep: bool) -> None:
    if keep or not db.created:
        return
    if db.is_sqlite:
        if db.tmpdir:
            for path in Path(db.tmpdir).iterdir():
                path.unlink()
            Path(db.tmpdir).rmdir()
        return
    name = make_url(db.url).database
    admin = make_url(db.url).set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def vacuum_analyze(url: str) -> None:
    asyncio.run(analyze(url))


async def analyze(url: str) -> None:
    """VACUUM ANALYZE (PostgreSQL), as autovacuum would. This machine's PostgreSQL runs
    with autovacuum off, and a plan cached while a table was empty (a sequential scan)
    would otherwise be kept while the table grows."""
    if make_url(url).get_backend_name() != "sqlite":
        await _admin(url, "VACUUM ANALYZE")


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def check_invariants(url: str) -> tuple[int, str]:
    """`python -m app.cli check-invariants` against the database: (exit code, its words)."""
    done = subprocess.run(
        [PYTHON, "-m", "app.cli", "check-invariants"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    shown = lines[:10] + ([f"... and {len(lines) - 10} more lines"] if len(lines) > 10 else [])
    return done.returncode, "\n".join(shown)


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """The server process and its children (uvicorn's workers when --workers > 1)."""
        out = [self.pid]
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            out += [int(p) for p in children.read_text().split()]
        return out

    def rss_mb(self) -> float:
        """Resident set size of the serving processes (VmRSS), summed, in MB."""
        total_kb = 0
        pids = self.pids()
        # With workers, the supervisor only forks: count the workers that serve.
        serving = pids[1:] if len(pids) > 1 else pids
        for pid in serving:
            total_kb += _status_kb(pid, "VmRSS")
        return total_kb / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def start_server(
    database_url: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_dir: str | None = None,
    app: str = "app.main:app",
    uvicorn_args: Sequence[str] = (),
    root: Path = ROOT,
) -> Server:
    """`uvicorn app.main:app` (or another `app`) on a free 127.0.0.1 port, ready when
    /readyz answers; `root` is the checkout whose app it serves (another commit's, for a
    paired measurement)."""
    port = free_port()
    args = [
        PYTHON,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        args += ["--workers", str(workers)]
    args += list(uvicorn_args)
    log_path = Path(log_dir or tempfile.gettempdir()) / f"bench-server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        args,
        cwd=root,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "COMPUTEMATCH_OPERATOR_KEY": OPERATOR_KEY,
            "COMPUTEMATCH_ENVIRONMENT": "development",
            **(env or {}),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited; see {log_path}:\n{log_path.read_text()}")
        try:
            if httpx.get(server.base_url + "/readyz", timeout=1).status_code == 200:
                if workers > 1:
                    _wait_for_workers(server, workers)
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server did not become ready; see {log_path}")


def _wait_for_workers(server: Server, workers: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(server.pids()) < workers + 1:
        time.sleep(0.1)
    # Each worker imports the app on its own: give both time to answer.
    for _ in range(20 * workers):
        httpx.get(server.base_url + "/readyz", timeout=5)


@contextlib.contextmanager
def running_server(database_url: str, **kwargs: object) -> Iterator[Server]:
    server = start_server(database_url, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_KEY}"}


# --------------------------------------------------------------------------- load (wrk)

WRK_SCRIPT = ROOT / "bench" / "wrk_requests.lua"


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class WrkRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""

    def line(self) -> str:
        pairs = "|".join(f"{k}: {v}" for k, v in self.headers.items())
        for part in (self.path, pairs, self.body):
            if "\t" in part or "\n" in part:
                raise ValueError("wrk request lines cannot hold tabs or newlines")
        return f"{self.method}\t{self.path}\t{pairs}\t{self.body}"


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    statuses: dict[str, int]
    p50: float
    p95: float
    p99: float
    max: float
    socket_errors: int
    exhausted: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s

    def per_second(self, status: str) -> float:
        return self.statuses.get(status, 0) / self.duration_s


def run_wrk(
    base_url: str,
    requests: Sequence[WrkRequest],
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    cycle: bool = False,
) -> WrkResult:
    """Drive `requests` with wrk (C, epoll): `connections` keep-alive clients, each
    sending its next request when the last is answered, for `seconds`.

    wrk costs the machine a fraction of what a Python client does, so the server,
    not the load generator, is what is measured. Without `cycle` each request is
    sent at most once; running out is reported as `exhausted`.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
        f.write("\n".join(r.line() for r in requests) + "\n")
        path = f.name
    try:
        args = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--timeout",
            "30s",
        ]
        args += ["-s", str(WRK_SCRIPT), base_url, "--", path, str(threads)]
        if cycle:
            args.append("cycle")
        done = subprocess.run(args, capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    raw = json.loads(line[4:])
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_s"],
        statuses={str(k): v for k, v in raw["statuses"].items()},
        p50=raw["p50_ms"],
        p95=raw["p95_ms"],
        p99=raw["p99_ms"],
        max=raw["max_ms"],
        socket_errors=raw["socket_errors"],
        exhausted=raw["exhausted"],
    )


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    ms = [x * 1000 for x in latencies_s]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def other_benchmarks_running() -> list[str]:
    """Other processes running a benchmark (`pgrep -f bench/`), besides this one."""
    done = subprocess.run(["pgrep", "-af", "bench/"], capture_output=True, text=True, check=False)
    mine = {os.getpid(), os.getppid()}
    return [
        line
        for line in done.stdout.splitlines()
        if int(line.split()[0]) not in mine and "pgrep" not in line and "flock" not in line
    ]
