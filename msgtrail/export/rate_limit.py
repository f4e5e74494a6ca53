"""Request rate limits per app, with the `limits` library: in process by default, in
Redis (shared by every API process) when configured."""

from __future__ import annotations

import logging
import math

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from msgtrail.clock import exact
from msgtrail.errors import RateLimited, Unavailable

log = logging.getLogger("msgtrail.export.rate_limit")


class RateLimit:
    """One limit, e.g. "60/minute", counted per key (an app)."""

    def __init__(self, spec: str, storage_uri: str = "memory://") -> None:
        self.item = parse(spec)
        options = {"key_prefix": "msgtrail"} if storage_uri.startswith("redis") else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))

    def hit(self, *key: str) -> None:
        """Count one request; 429 with an honest Retry-After once over the limit, 503 if
        the counters (Redis) cannot be reached."""
        try:
            allowed = self.limiter.hit(self.item, *key)
        except Exception as exc:  # noqa: BLE001 - redis-py's errors, whatever the transport
            log.warning("rate limit store unavailable: %s", exc)
            raise Unavailable("Service temporarily unavailable: rate limit store "
                              "cannot be reached") from None
        if allowed:
            return
        reset = self.limiter.get_window_stats(self.item, *key).reset_time
        raise RateLimited("API rate limit exceeded",
                          retry_after=max(1, math.ceil(reset - exact())))
