"""What the middlewares and the API learn about a request, in one typed place.

The request-context middleware names the request, the rate limiter (or the
idempotency middleware, which counts a keyed POST in its claim) finds the key live and
its owner, the idempotency middleware claims the key's record, and the API's
authentication names the principal. Each writes its field of one `RequestState`
(kept in the ASGI scope's state), and each reader reads a field of it: nothing is
passed under a string key that only an agreed spelling and middleware order tie
together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the types only: these modules read and write this one
    from app.core.middleware import PendingAnswer
    from app.core.security import Principal

_KEY = "computematch"  # where the state is kept in scope["state"]


@dataclass
class RequestState:
    # The request's id, in logs, problems and the X-Request-ID header.
    request_id: str | None = None
    # Counted against its rate limit already, by a middleware outside the limiter
    # (the idempotency middleware counts a keyed POST in the statement that claims it).
    counted: bool = False
    # The key the rate limiter's count found live: (its hash, its Principal), so the
    # API does not look it up again (`app.core.security`).
    live_key: tuple[str, Principal] | None = None
    # Who the API authenticated, for the access log.
    principal: Principal | None = None
    # The claimed idempotency record, for an endpoint that writes its answer itself.
    idempotency: PendingAnswer | None = None


def request_state(scope: Any) -> RequestState:
    """The request's state (made on first use), from its ASGI scope."""
    state = scope.setdefault("state", {})
    current: RequestState | None = state.get(_KEY)
    if current is None:
        current = state[_KEY] = RequestState()
    return current
