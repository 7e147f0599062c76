"""Retrying creating calls (hand-written): a transport under httpx, sync and async.

A `POST` that carries an `Idempotency-Key` (the SDK gives every creating call one when the
caller does not) is sent again, with the same key and body, when the connection fails or
the answer is a 5xx: the API runs it at most once and answers a retry with the first
result. Nothing else is retried: without the key a second attempt could act twice.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

RETRYABLE_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
MAX_DELAY = 30.0


def _retried(request: httpx.Request) -> bool:
    return request.method == "POST" and "idempotency-key" in request.headers


def _delay(backoff: float, attempt: int, response: httpx.Response | None) -> float:
    """Doubling from `backoff`; a 5xx's `Retry-After` (in seconds) when it gives one."""
    retry_after = response.headers.get("retry-after", "") if response is not None else ""
    if retry_after.isdigit():
        return min(float(retry_after), MAX_DELAY)
    return min(backoff * 2.0**attempt, MAX_DELAY)


class RetryTransport(httpx.BaseTransport):
    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not _retried(request):
            return self.inner.handle_request(request)
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self.inner.handle_request(request)
            except RETRYABLE_ERRORS:
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 500 or attempt >= self.retries:
                    return response
                response.close()
            self.sleep(_delay(self.backoff, attempt, response))
            attempt += 1

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not _retried(request):
            return await self.inner.handle_async_request(request)
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.inner.handle_async_request(request)
            except RETRYABLE_ERRORS:
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 500 or attempt >= self.retries:
                    return response
                await response.aclose()
            await self.sleep(_delay(self.backoff, attempt, response))
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
