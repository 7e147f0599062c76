"""The generated SDK (build/sdk, made when missing or stale) and a real server to drive."""

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.live_server import LiveServer, live_server
from tests.sdk.generate import generate


@pytest.fixture(scope="module")
def sdk_path() -> Iterator[str]:
    """Makes `import computematch_client` work: the generated package, never the app."""
    folder = str(generate())
    sys.path.insert(0, folder)
    yield folder
    sys.path.remove(folder)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("sdk-server")) as running:
        yield running


@pytest.fixture
def connect(server: LiveServer, sdk_path: str) -> Iterator[Callable[[str | None], Any]]:
    """`connect(key)`: an SDK client of the server with that key (None: no key). Every client
    raises on a status the document does not declare."""
    from computematch_client import AuthenticatedClient, Client

    opened: list[Any] = []

    def connect(key: str | None) -> Any:
        options: dict[str, Any] = {"raise_on_unexpected_status": True, "timeout": 30.0}
        made = (
            AuthenticatedClient(base_url=server.base_url, token=key, **options)
            if key
            else Client(base_url=server.base_url, **options)
        )
        opened.append(made)
        return made

    yield connect
    for made in opened:
        made.get_httpx_client().close()
