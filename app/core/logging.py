"""Readable logs: one line per request and per business event."""

import logging
import sys

_configured = False


def configure_logging(level: int = logging.INFO) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("computematch")
    root.setLevel(level)
    root.addHandler(handler)
    root.propagate = False
