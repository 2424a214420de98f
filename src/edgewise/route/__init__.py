"""Hybrid edge-cloud routing: decide on the device, keep private data home, never leave a
request unanswered.

    from edgewise.route import Router, CloudClient, CloudConfig
    router = Router.from_policy_file("policy.toml", cloud_fn=CloudClient(CloudConfig(url, model)))
    res = router.route(messages, edge_fn)   # res.text, res.answered_by, res.reason, res.headers()

PII detection and redaction live in edgewise.privacy (a layer below); offline evaluation and calibration in the
subpackage edgewise.route.eval, which nothing the server imports at run time pulls in.
"""

from edgewise.route.breaker import BreakerConfig, CircuitBreaker
from edgewise.route.cloud import CloudAnswer, CloudClient, CloudConfig, CloudDelta, CloudError
from edgewise.route.decision_log import DecisionLog
from edgewise.route.router import Router, RouterConfig, RouteStream
from edgewise.route.types import CLOUD, DEGRADED, EDGE, RouteResult, Verdict

__all__ = ["BreakerConfig", "CircuitBreaker", "CloudAnswer", "CloudClient", "CloudConfig", "CloudDelta",
           "CloudError", "DecisionLog", "Router", "RouterConfig", "RouteStream",
           "RouteResult", "Verdict", "EDGE", "CLOUD", "DEGRADED"]
