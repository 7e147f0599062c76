"""Retrying creating calls (hand-written): a transport under httpx.

A `POST` that carries an `Idempotency-Key` (the SDK gives every creating call one when the
caller does not) is sent again, with the same key and body, when the connection fails or
the answer is a 5xx: the API runs it at most once and answers a retry with the first
result. Nothing else is retried: without the key a second attempt could act twice.
"""

import time
from collections.abc import Callable

import httpx

RETRYABLE_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
MAX_DELAY = 30.0


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
        if request.method != "POST" or "idempotency-key" not in request.headers:
            return self.inner.handle_request(request)
        attempt = 0
        while True:
            delay = min(self.backoff * 2**attempt, MAX_DELAY)
            try:
                response = self.inner.handle_request(request)
            except RETRYABLE_ERRORS:
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 500 or attempt >= self.retries:
                    return response
                retry_after = response.headers.get("retry-after", "")
                if retry_after.isdigit():
                    delay = min(float(retry_after), MAX_DELAY)
                response.close()
            attempt += 1
            self.sleep(delay)

    def close(self) -> None:
        self.inner.close()
