"""A thread-safe circuit breaker for the cloud link.

closed --(fail_max consecutive failures)--> open --(reset_timeout_s)--> half-open
half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open again

Defaults follow pybreaker (fail_max=5, reset_timeout=60 s). In half-open only one probe request is
let through at a time; the rest answer locally until it reports back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from edgewise.errors import EdgewiseError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True)
class BreakerConfig:
    fail_max: int = 5
    reset_timeout_s: float = 60.0

    def __post_init__(self):
        if not isinstance(self.fail_max, int) or isinstance(self.fail_max, bool) or self.fail_max < 1:
            raise EdgewiseError(f"fail_max must be a positive integer, got {self.fail_max!r}")
        if not isinstance(self.reset_timeout_s, (int, float)) or not self.reset_timeout_s > 0:
            raise EdgewiseError(f"reset_timeout_s must be > 0 seconds, got {self.reset_timeout_s!r}")


class CircuitBreaker:
    def __init__(self, config: BreakerConfig | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config or BreakerConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._fails = 0  # consecutive failures while closed
        self._opened_at = 0.0
        self._probe_since: float | None = None  # when the half-open probe was handed out
        self.opened_count = 0  # times it tripped, for metrics

    def _tick(self, now: float) -> None:
        if self._state == OPEN and now - self._opened_at >= self.config.reset_timeout_s:
            self._state, self._probe_since = HALF_OPEN, None
        # A probe that never reported back (its caller died) must not wedge the breaker.
        if (self._state == HALF_OPEN and self._probe_since is not None
                and now - self._probe_since >= self.config.reset_timeout_s):
            self._probe_since = None

    @property
    def state(self) -> str:
        with self._lock:
            self._tick(self.clock())
            return self._state

    def available(self) -> bool:
        """Would a call be allowed now? Does not take the half-open probe slot."""
        with self._lock:
            self._tick(self.clock())
            return self._state == CLOSED or (self._state == HALF_OPEN and self._probe_since is None)

    def allow(self) -> bool:
        """Take permission for one call; in half-open this hands out the single probe slot."""
        with self._lock:
            now = self.clock()
            self._tick(now)
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN and self._probe_since is None:
                self._probe_since = now
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state, self._fails, self._probe_since = CLOSED, 0, None

    def record_failure(self) -> None:
        with self._lock:
            now = self.clock()
            self._tick(now)
            if self._state == HALF_OPEN:
                self._trip(now)
            elif self._state == CLOSED:
                self._fails += 1
                if self._fails >= self.config.fail_max:
                    self._trip(now)

    def _trip(self, now: float) -> None:
        self._state, self._opened_at, self._fails, self._probe_since = OPEN, now, 0, None
        self.opened_count += 1

    def retry_in(self) -> float:
        """Seconds until the open breaker lets a probe through (0 when not open)."""
        with self._lock:
            now = self.clock()
            self._tick(now)
            if self._state != OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.config.reset_timeout_s - now)

    def snapshot(self) -> dict:
        with self._lock:
            self._tick(self.clock())
            return {"state": self._state, "consecutive_failures": self._fails, "opened_count": self.opened_count}
