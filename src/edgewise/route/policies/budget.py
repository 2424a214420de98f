"""Budget: cap escalations by share of recent requests and by count per rolling hour."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from edgewise.errors import EdgewiseError
from edgewise.route.policies.base import POLICIES
from edgewise.route.types import CLOUD, EDGE, RouteContext, Verdict


@dataclass(frozen=True)
class BudgetConfig:
    """max_share: at most this share of the last `window` requests may go to the cloud.
    max_per_hour: at most this many escalations in any rolling 3600 s."""

    max_share: float | None = None
    max_per_hour: int | None = None
    window: int = 1000
    enabled: bool = True

    def __post_init__(self):
        share = self.max_share
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1):
            raise EdgewiseError(f"budget max_share must be in [0, 1], got {self.max_share!r}")
        hourly = self.max_per_hour
        if hourly is not None and (not isinstance(hourly, int) or isinstance(hourly, bool) or hourly < 0):
            raise EdgewiseError(f"budget max_per_hour must be a non-negative integer, got {self.max_per_hour!r}")
        if not isinstance(self.window, int) or self.window < 1:
            raise EdgewiseError(f"budget window must be a positive integer, got {self.window!r}")
        if self.enabled and self.max_share is None and self.max_per_hour is None:
            raise EdgewiseError("[policies.budget] sets no limit: give max_share and/or max_per_hour, "
                                "or set enabled = false")


@POLICIES.register("budget")
class BudgetPolicy:
    name = "budget"
    Config = BudgetConfig

    def __init__(self, config: BudgetConfig, clock=time.monotonic):
        self.config, self.clock = config, clock
        self._lock = threading.Lock()
        self._recent: deque[int] = deque(maxlen=config.window)  # 1 = escalated, per finished request
        self._recent_sum = 0
        self._pending = 0  # escalations approved but not yet finished
        self._hour: deque[float] = deque()  # times of approved escalations

    def decide(self, ctx: RouteContext) -> Verdict | None:
        if ctx.target != CLOUD:
            return None
        c = self.config
        with self._lock:
            now = self.clock()
            while self._hour and self._hour[0] <= now - 3600.0:
                self._hour.popleft()
            if c.max_per_hour is not None and len(self._hour) >= c.max_per_hour:
                return Verdict(EDGE, f"budget: {c.max_per_hour} escalations in the last hour", final=True)
            if c.max_share is not None:
                # Share of escalations if this one went too, counting in-flight requests.
                n = len(self._recent) + self._pending + 1
                share = (self._recent_sum + self._pending + 1) / n
                if share > c.max_share:
                    return Verdict(EDGE, f"budget: escalations would reach {share:.0%} > {c.max_share:.0%}",
                                   final=True)
            self._hour.append(now)
            self._pending += 1
            ctx.state["budget_reserved"] = now
        return None

    def record(self, ctx: RouteContext, result) -> None:
        with self._lock:
            reserved = ctx.state.get("budget_reserved")
            if reserved is not None:
                self._pending -= 1
                if not ctx.escalated:  # approved, but the cloud was never called: give it back
                    try:
                        self._hour.remove(reserved)
                    except ValueError:
                        pass
            if len(self._recent) == self._recent.maxlen:
                self._recent_sum -= self._recent[0]
            self._recent.append(int(ctx.escalated))
            self._recent_sum += int(ctx.escalated)

    def snapshot(self) -> dict:
        with self._lock:
            return {"recent_share": self._recent_sum / len(self._recent) if self._recent else 0.0,
                    "last_hour": len(self._hour)}
