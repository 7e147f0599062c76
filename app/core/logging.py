"""Structured logs: one JSON line per request and per business event.

Everything goes through the standard `logging` module under the `computematch`
logger; python-json-logger turns each record, with the fields passed as
`extra={...}`, into one JSON object per line. The request id of the request
being served is added to every record, so a business event can be joined to
its access line. Secrets (API keys) are never passed to a logger.
"""

import logging
import sys
from typing import IO, Literal

from pythonjsonlogger.orjson import OrjsonFormatter

from app.core.context import current_request_id

LogFormat = Literal["json", "text"]
ROOT_LOGGER = "computematch"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_handler: logging.Handler | None = None


class RequestIdFilter(logging.Filter):
    """Stamp the current request id on records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


def json_formatter() -> logging.Formatter:
    # orjson writes UTF-8 as it is (no \u escapes), several times faster than json.
    return OrjsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601, UTC, with offset
    )


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when a line is written (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def build_handler(stream: IO[str] | None = None, fmt: LogFormat = "json") -> logging.Handler:
    """A handler writing one line per record to `stream` (default: stderr)."""
    handler = logging.StreamHandler(stream) if stream is not None else StderrHandler()
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(level: int | str = logging.INFO, fmt: LogFormat = "json") -> None:
    """Send the `computematch` loggers to stderr, one JSON object per line (or plain text).

    Calling it again replaces the handler it installed before, so the last
    settings win and lines are never written twice.
    """
    global _handler
    root = logging.getLogger(ROOT_LOGGER)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = build_handler(fmt=fmt)
    root.addHandler(_handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Our lines are complete on their own; a host's root handler would print them twice.
    root.propagate = False
