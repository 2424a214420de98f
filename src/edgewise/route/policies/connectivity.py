"""Connectivity: while the cloud's circuit breaker is open, answer on the device at once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgewise.route.breaker import BreakerConfig, CircuitBreaker
from edgewise.route.policies.base import POLICIES
from edgewise.route.types import EDGE, RouteContext, Verdict


@dataclass(frozen=True)
class ConnectivityConfig(BreakerConfig):
    """fail_max consecutive cloud failures open the circuit; after reset_timeout_s one probe request
    may try again (pybreaker's defaults: 5 and 60 s)."""

    enabled: bool = True


@POLICIES.register("connectivity")
class ConnectivityPolicy:
    name = "connectivity"
    Config = ConnectivityConfig

    def __init__(self, config: ConnectivityConfig, clock=time.monotonic):
        self.config = config
        # The router finds this attribute and reports every cloud call's outcome to it.
        self.breaker = CircuitBreaker(BreakerConfig(config.fail_max, config.reset_timeout_s), clock=clock)

    def decide(self, ctx: RouteContext) -> Verdict | None:
        if self.breaker.available():
            return None
        return Verdict(EDGE, f"cloud circuit open (next probe in {self.breaker.retry_in():.0f} s)",
                       final=True, degraded=True)
