"""The edge: uvicorn's own limits (`computematch serve`, the Dockerfile) and the sample
proxy in front of it (deploy/nginx.conf), each tried on a real server over loopback.

Found under fault injection: uvicorn with httptools accepted 8 MB of headers and held
1,500 slowloris connections, and the documented deployment had no proxy in front.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.cli import MAX_HEADER_BYTES, uvicorn_flags
from tests.conftest import ROOT
from tests.live_server import LiveServer, free_port, live_server

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def _raw(port: int, request: bytes, *, timeout: float = 10) -> bytes:
    """What the server answers a request sent as these bytes, until it closes (a server
    that refuses midway may reset the connection: what it sent before, if anything)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end of it: read the refusal
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def _status(answer: bytes) -> int | None:
    """The answer's status; None for a connection closed without one."""
    if not answer:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert match, answer[:200]
    return int(match.group(1))


REFUSED = (400, 431, None)  # a 400 (or 431), or the connection reset while sending


def _head(size: int) -> bytes:
    return (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"X-Padding: "
        + b"a" * size
        + b"\r\n\r\n"
    )


def test_the_dockerfile_runs_uvicorn_with_the_edges_limits() -> None:
    command = (ROOT / "Dockerfile").read_text()
    flags = uvicorn_flags()
    for name, value in zip(flags[::2], flags[1::2], strict=True):
        if name == "--limit-concurrency":
            value = "${LIMIT_CONCURRENCY:-" + value + "}"
        assert f"{name} {value}" in command, name


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("edge"), uvicorn_args=uvicorn_flags()) as server:
        yield server


def _port(server: LiveServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def test_uvicorn_refuses_a_head_past_its_limit(edge_server: LiveServer) -> None:
    port = _port(edge_server)
    assert _status(_raw(port, _head(MAX_HEADER_BYTES // 2))) == 200
    # h11 counts what it buffers of a head not yet complete: a head past the limit is
    # refused by the read that takes it past (asyncio reads up to 256 KiB at once).
    assert _status(_raw(port, _head(1024 * 1024))) in REFUSED
    assert _status(_raw(port, _head(8 * 1024 * 1024))) in REFUSED
    # Still serving.
    assert httpx.get(edge_server.base_url + "/healthz").status_code == 200


# ------------------------------------------------------------------ the proxy


@contextmanager
def _nginx(prefix: Path, upstream_port: int) -> Iterator[int]:
    """nginx on a free loopback port with deploy/nginx.conf, its upstream this port."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    port = free_port()
    site = NGINX_CONF.read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    assert f"listen 127.0.0.1:{port};" in site
    (prefix / "computematch.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        f"""
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/computematch.conf;
}}
"""
    )
    # As root, nginx's workers would run as nobody, who cannot write the temporary dirs.
    user = ["-g", "user root;"] if os.geteuid() == 0 else []
    log = prefix / "stderr.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), *user],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    error = log.read_text(errors="replace")
                    raise RuntimeError(f"nginx did not start: {error}") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy(edge_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with _nginx(tmp_path_factory.mktemp("nginx"), _port(edge_server)) as port:
        yield port


def _directive(name: str) -> str:
    match = re.search(rf"^\s*{name}\s+([^;]+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1).strip()


def test_the_proxy_serves_the_app(proxy: int) -> None:
    resp = httpx.get(f"http://127.0.0.1:{proxy}/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert resp.headers["x-request-id"]  # the app's own answer, through the proxy


def test_the_proxy_refuses_a_head_past_its_limit(proxy: int) -> None:
    _count, size = _directive("large_client_header_buffers").split()
    line_limit = int(size.removesuffix("k")) * 1024
    assert _status(_raw(proxy, _head(line_limit // 2))) == 200
    assert _status(_raw(proxy, _head(line_limit * 2))) == 400
    assert _status(_raw(proxy, _head(1024 * 1024))) in REFUSED


def test_the_proxy_refuses_a_body_past_its_limit_as_a_problem(proxy: int) -> None:
    limit = int(_directive("client_max_body_size").removesuffix("m")) * 1024 * 1024
    resp = httpx.post(
        f"http://127.0.0.1:{proxy}/v1/providers",
        content=b"{" + b" " * limit + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["status"] == 413


def test_the_proxy_closes_a_connection_whose_head_never_ends(proxy: int) -> None:
    # A slowloris client: the start of a head, then nothing. The proxy closes the
    # connection once client_header_timeout has passed (its 408 is never sent).
    timeout = int(_directive("client_header_timeout").removesuffix("s"))
    with socket.create_connection(("127.0.0.1", proxy), timeout=timeout + 10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:  # reset_timedout_connection: closed with a reset
            answer = b""
        assert answer == b""  # closed, not held


def test_the_proxy_answers_a_service_down_as_a_retryable_problem(tmp_path: Path) -> None:
    with _nginx(tmp_path, free_port()) as port:  # nothing listens upstream
        resp = httpx.get(f"http://127.0.0.1:{port}/v1/accelerators")
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["retry-after"] == "1"
    assert resp.json()["status"] == 503
