"""The client most callers want (hand-written): `Computematch(base_url, api_key)`.

Its attributes are the API's resources, generated from the document (`client.offers`,
`client.quotes`, `client.orders`, ...; see `api/__init__.py`), each with a method per
operation that returns the model of the answer or raises an `ApiError`, and `iter...` for
every list. Creating calls carry an Idempotency-Key (generated when not given) and are
retried on connection errors and 5xx.
"""

from collections.abc import Mapping
from types import TracebackType
from typing import Self, cast

import httpx

from .api import Resources
from .client import AuthenticatedClient, Client
from .retry import RetryTransport


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
        timeouts = httpx.Timeout(timeout)
        extra = dict(headers or {})
        httpx_args = {"transport": RetryTransport(transport, retries=retries, backoff=backoff)}
        low_level: Client | AuthenticatedClient
        if api_key:
            low_level = AuthenticatedClient(
                base_url, token=api_key, timeout=timeouts, headers=extra, httpx_args=httpx_args
            )
        else:
            low_level = Client(base_url, timeout=timeouts, headers=extra, httpx_args=httpx_args)
        self.low_level = low_level
        # The generated functions of keyed operations are typed for an AuthenticatedClient;
        # they only use its httpx client, which a keyless Client has as well (the server
        # answers 401 where a key is needed).
        super().__init__(cast(AuthenticatedClient, low_level))

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
