"""The real server for black-box tests (the generated SDK, the fuzzer): `uvicorn app.main:app`
in a subprocess on a free loopback port, over a fresh database migrated by Alembic.

SQLite: a temporary file. With TEST_DATABASE_URL: a new PostgreSQL database next to the
suite's own, dropped afterwards.
"""

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, _admin, migrate

STARTUP_SECONDS = 60


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    operator_key: str
    database_url: str
    log: Path
    pid: int = 0  # uvicorn's (with --workers, its workers are this process's children)

    def log_tail(self, lines: int = 80) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fresh_database(workdir: Path) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        url = f"sqlite+aiosqlite:///{workdir / 'live.db'}"
        migrate(url)
        yield url
        return
    name = f"cm_live_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def live_server(
    workdir: Path, *, uvicorn_args: Sequence[str] = (), **settings: str
) -> Iterator[LiveServer]:
    """Serve the app until the block ends; `settings` become COMPUTEMATCH_* variables,
    `uvicorn_args` more of uvicorn's flags (`--workers 2`, the edge's limits)."""
    operator_key = "live-operator-key-" + uuid.uuid4().hex
    with fresh_database(workdir) as database_url:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "COMPUTEMATCH_OPERATOR_KEY": operator_key,
            "COMPUTEMATCH_ENVIRONMENT": "test",
            "COMPUTEMATCH_LOG_LEVEL": "WARNING",
            **{f"COMPUTEMATCH_{k.upper()}": v for k, v in settings.items()},
        }
        env.pop("COMPUTEMATCH_DATABASE_URL", None)
        log = workdir / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "app.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    *uvicorn_args,
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(f"http://127.0.0.1:{port}", operator_key, database_url, log, proc.pid)
        try:
            _wait_ready(proc, server)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.base_url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready in {STARTUP_SECONDS}s:\n{server.log_tail()}")
