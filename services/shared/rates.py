"""Rate limits per partner: a token bucket each, in process, for ingest and the API."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from services.shared.partners import Partner
from services.shared.problems import Problem


class TokenBucket:
    """`rate` requests a second on average, up to `burst` at once.

    In process: each ingest replica limits on its own, so N replicas let a partner send up
    to N times its rate. Good enough to stop a runaway client; not a quota.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """Take a token: 0 when granted, else the seconds until one will be there."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class RateLimiter:
    """One token bucket per partner, made again when the partner's limit changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, partner: Partner) -> None:
        """Raise 429 with `Retry-After` (whole seconds, at least 1) when over the limit."""
        if partner.rate is None:
            return
        bucket = self._buckets.get(partner.name)
        if bucket is None or (bucket.rate, bucket.burst) != (partner.rate, partner.burst):
            bucket = self._buckets[partner.name] = TokenBucket(
                partner.rate, partner.burst, self._clock
            )
        wait = bucket.take()
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"at most {partner.rate:g} requests a second (bursts of {partner.burst}); "
                f"retry after {retry} s",
                headers={"Retry-After": str(retry)},
            )
