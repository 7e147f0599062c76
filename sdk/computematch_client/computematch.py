"""The clients most callers want (hand-written): `Computematch(base_url, api_key)`, and
`AsyncComputematch` with the same methods as coroutines.

Their attributes are the API's resources, generated from the document (`client.offers`,
`client.quotes`, `client.orders`, ...; see `api/__init__.py`), each with a method per
operation that returns the model of the answer or raises an `ApiError`, and `iter...` for
every list. Creating calls carry an Idempotency-Key (generated when not given) and are
retried on connection errors and 5xx.

`low_level` is the generated client underneath, for the generated functions
(`api.<tag>.<operation>`): their `sync...` ones with a `Computematch`'s, their `asyncio...`
ones with an `AsyncComputematch`'s.
"""

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, cast

import httpx

from .api import AsyncResources, Resources
from .client import AuthenticatedClient, Client
from .retry import AsyncRetryTransport, RetryTransport


def _low_level(
    base_url: str,
    api_key: str | None,
    timeout: float,
    headers: Mapping[str, str] | None,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport,
) -> Client | AuthenticatedClient:
    options: dict[str, Any] = {
        "timeout": httpx.Timeout(timeout),
        "headers": dict(headers or {}),
        "httpx_args": {"transport": transport},
    }
    if api_key:
        return AuthenticatedClient(base_url, token=api_key, **options)
    return Client(base_url, **options)


class Computematch(Resources):
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`api_key` None: only what needs no key (self-registration, health). `retries`:
        how many times a creating call is sent again; `transport`: an httpx transport to
        send through (a proxy's, a test's)."""
        retrying = RetryTransport(transport, retries=retries, backoff=backoff)
        self.low_level = _low_level(base_url, api_key, timeout, headers, retrying)
        # The generated functions of keyed operations are typed for an AuthenticatedClient;
        # they only use its httpx client, which a keyless Client has as well (the server
        # answers 401 where a key is needed).
        super().__init__(cast(AuthenticatedClient, self.low_level))

    def close(self) -> None:
        self.low_level.get_httpx_client().close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class AsyncComputematch(AsyncResources):
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """As `Computematch`, for asyncio: `await client.orders.create(...)`,
        `async for order in client.orders.iter()`."""
        retrying = AsyncRetryTransport(transport, retries=retries, backoff=backoff)
        self.low_level = _low_level(base_url, api_key, timeout, headers, retrying)
        super().__init__(cast(AuthenticatedClient, self.low_level))

    async def aclose(self) -> None:
        await self.low_level.get_async_httpx_client().aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()
