"""Resource ids: a short prefix naming the kind, then a time-ordered random part.

Ids sort by creation time, so keyset pagination by id lists oldest first.
"""

import secrets
import time


def new_id(prefix: str) -> str:
    millis = int(time.time() * 1000)
    return f"{prefix}_{millis:012x}{secrets.token_hex(8)}"
