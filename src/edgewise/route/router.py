"""The hybrid router: policies decide edge or cloud; the cloud is tried within the request's
latency budget, and any cloud failure falls back to the edge answer (`edge-degraded`).

    router = Router.from_policy_file("policy.toml")
    result = router.route(messages, edge_fn, cloud_fn, deadline_s=10)
    result.text, result.answered_by, result.reason, result.headers()

edge_fn(request) returns an object with `.text` and `.logprobs` (the runtime's GenerationResult).
cloud_fn(request, deadline_s, **cloud_params) returns a str or an object with `.text` (CloudClient is one)
and raises on failure. request is a prompt string or OpenAI-style messages; the cloud gets the same
shape, with PII replaced by placeholders in redact mode. cloud_params are OpenAI request fields
(max_tokens, temperature, logprobs, ...), passed on only when the caller gives some.

The configuration (RouterConfig, policy files) is in config.py, the streaming answer (RouteStream) in stream.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from edgewise.errors import EdgewiseError
from edgewise.privacy.pii import restore
from edgewise.route.cloud import CloudAnswer, CloudError
from edgewise.route.config import RouterConfig, build_policies, load_policy_file
from edgewise.route.decision_log import DecisionLog
from edgewise.route.stream import RouteStream
from edgewise.route.types import CLOUD, DEGRADED, EDGE, Request, RouteContext, RouteResult, config_from_table, request_text

_FROM_FILE = object()


class Router:
    def __init__(self, policies: list, config: RouterConfig | None = None, *, cloud_fn: Callable | None = None,
                 cloud_stream_fn: Callable | None = None, log: DecisionLog | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.policies = list(policies)
        self.config = config or RouterConfig()
        self.cloud_fn, self.cloud_stream_fn = cloud_fn, cloud_stream_fn
        self.log, self.clock = log, clock
        # The connectivity policy owns the breaker; the router reports cloud outcomes to it.
        self.breaker = next((p.breaker for p in self.policies if hasattr(p, "breaker")), None)
        self._lock = threading.Lock()
        self._edge_avg_s: float | None = None
        self.counts = {EDGE: 0, CLOUD: 0, DEGRADED: 0}

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_policy(cls, doc: dict | None = None, *, base_dir: Path | None = None, clock=time.monotonic,
                    **kwargs) -> "Router":
        """Build from a parsed policy document ({} or None = defaults: redact PII, breaker on)."""
        doc = doc or {}
        unknown = sorted(set(doc) - {"router", "policies", "calibration"})
        if unknown:
            raise EdgewiseError(f"unknown table [{unknown[0]}] in the policy file: use [router] and [policies.<name>]")
        config = config_from_table(RouterConfig, doc.get("router", {}), "router")
        log = kwargs.pop("log", _FROM_FILE)  # log=None turns the file's log off
        if log is _FROM_FILE:
            log = None
            if config.log:
                p = Path(config.log).expanduser()
                log = DecisionLog(p if p.is_absolute() or base_dir is None else base_dir / p)
        return cls(build_policies(doc, config.order, base_dir, clock), config, log=log, clock=clock, **kwargs)

    @classmethod
    def from_policy_file(cls, path: str | Path | None, **kwargs) -> "Router":
        if path is None:
            return cls.from_policy({}, **kwargs)
        path = Path(path)
        return cls.from_policy(load_policy_file(path), base_dir=path.parent.resolve(), **kwargs)

    def warnings(self) -> list[str]:
        """Configuration that is legal but probably not meant (the server prints these at start)."""
        names = {p.name for p in self.policies}
        if self.config.prefer == EDGE and "confidence" not in names:
            return ["no [policies.confidence] and prefer = 'edge': nothing will ever be escalated to the cloud; "
                    "run `edgewise route calibrate` or set [router] prefer = 'cloud'"]
        return []

    def stats(self) -> dict:
        """Counters for /metrics: answers by who answered, the breaker, and each policy's snapshot."""
        with self._lock:
            out: dict[str, Any] = {"answered_by": dict(self.counts)}
        if self.breaker is not None:
            out["breaker"] = self.breaker.snapshot()
        for p in self.policies:
            if hasattr(p, "snapshot"):
                out[p.name] = p.snapshot()
        return out

    # --- deciding ----------------------------------------------------------------------------

    def _decide(self, ctx: RouteContext) -> tuple[str, bool]:
        """Run the policy chain; returns (reason, degraded) and leaves the decision in ctx.target."""
        ctx.target, reason, degraded = self.config.prefer, f"default: prefer {self.config.prefer}", False
        for p in self.policies:
            v = p.decide(ctx)
            if v is None:
                continue
            ctx.target, reason, degraded = v.target, v.reason, v.degraded
            if v.final and v.target == EDGE:
                break
        return reason, degraded

    def _edge_reserve(self) -> float:
        if self.config.edge_reserve_s is not None:
            return self.config.edge_reserve_s
        return 1.5 * (self._edge_avg_s if self._edge_avg_s is not None else 1.0)

    def _open(self, request: Request, edge_fn: Callable, cloud_fn: Callable | None) -> tuple[RouteContext, str, bool]:
        """Run the policy chain for a request; with no cloud to call, an escalation stays on the edge."""
        ctx = RouteContext(request, request_text(request), edge_fn, self.clock)
        reason, degraded = self._decide(ctx)
        if ctx.target == CLOUD and cloud_fn is None:
            ctx.target, reason = EDGE, f"no cloud configured; {reason}"
        return ctx, reason, degraded

    def _cloud_gate(self, ctx: RouteContext, deadline: float, reason: str) -> tuple[float, str, bool]:
        """May an escalation start now? (time budget, reason, refused): refused when too little time is left
        or the circuit is open. Asking the breaker counts as the half-open probe, so ask it last."""
        budget = self._cloud_budget(ctx, deadline)
        if budget < self.config.min_cloud_s:
            return budget, f"{reason}; no time left for the cloud", True
        if self.breaker is not None and not self.breaker.allow():
            return budget, f"{reason}; cloud circuit open", True
        return budget, reason, False

    def _cloud_budget(self, ctx: RouteContext, deadline: float) -> float:
        return deadline - self.clock() - (0.0 if ctx.edge_done else self._edge_reserve())

    def _call_cloud(self, fn: Callable, req: Request, budget: float, timing: dict, params: dict):
        # A cloud_fn that says it honours its deadline (CloudClient) runs inline. Any other runs in
        # a watchdog thread so that it cannot hold the request past its budget (the thread is
        # left to finish on its own). timing["cloud_s"] gets the cloud_fn's own time; starting
        # the thread counts as router overhead.
        if getattr(fn, "honours_deadline", False):
            t = self.clock()
            try:
                v = fn(req, budget, **params)
            finally:
                timing["cloud_s"] = self.clock() - t
            return v if hasattr(v, "text") else CloudAnswer(text=str(v))
        box: dict[str, Any] = {}
        done = threading.Event()

        def run():
            t = self.clock()
            try:
                box["v"] = fn(req, budget, **params)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["e"] = e
            finally:
                box["s"] = self.clock() - t
                done.set()

        t0 = self.clock()
        threading.Thread(target=run, daemon=True, name="edgewise-cloud").start()
        finished = done.wait(budget + 0.05)
        timing["cloud_s"] = box["s"] if finished else self.clock() - t0
        if not finished:
            raise CloudError(f"cloud gave no answer within the {budget:.2f} s budget", "timeout")
        if "e" in box:
            raise box["e"]
        v = box["v"]
        return v if hasattr(v, "text") else CloudAnswer(text=str(v))

    def cloud_failed(self, e: BaseException) -> str:
        """Report a failed cloud call to the breaker; returns the reason's words for it."""
        if self.breaker is not None:
            if isinstance(e, CloudError) and not e.health_failure:
                self.breaker.record_success()  # the link works; this request was the problem
            else:
                self.breaker.record_failure()
        return str(e) if isinstance(e, CloudError) else f"cloud_fn raised {type(e).__name__}"

    def route(self, request: Request, edge_fn: Callable[[Request], Any], cloud_fn: Callable | None = None,
              deadline_s: float | None = None, request_id: str | None = None,
              cloud_params: dict | None = None) -> RouteResult:
        """Answer one request. Never raises for a cloud problem; edge_fn errors propagate.
        cloud_params: OpenAI request fields for the cloud (max_tokens, temperature, logprobs, ...)."""
        t0 = self.clock()
        deadline = t0 + (deadline_s if deadline_s is not None else self.config.deadline_s)
        cloud_fn = cloud_fn or self.cloud_fn
        ctx, reason, degraded = self._open(request, edge_fn, cloud_fn)
        cloud_s, answer, cloud_answer = 0.0, None, None
        if ctx.target == CLOUD:
            budget, reason, refused = self._cloud_gate(ctx, deadline, reason)
            if refused:
                degraded = True
            else:
                ctx.escalated = True
                timing: dict[str, float] = {}
                try:
                    cloud_answer = self._call_cloud(cloud_fn, ctx.cloud_request, budget, timing, cloud_params or {})
                    if self.breaker is not None:
                        self.breaker.record_success()
                    answer = restore(cloud_answer.text, ctx.mapping)
                    reason = reason + ("; PII redacted for the cloud" if ctx.mapping else "")
                except Exception as e:  # noqa: BLE001 - any cloud failure degrades to the edge
                    reason, degraded = f"{reason}; {self.cloud_failed(e)}", True
                cloud_s = timing.get("cloud_s", 0.0)
        if answer is None:
            answer = ctx.edge().text
            answered_by = DEGRADED if degraded else EDGE
        else:
            answered_by = CLOUD
        return self.finish(ctx, t0, answer, answered_by, reason, cloud_s, cloud_answer, request_id)

    def finish(self, ctx: RouteContext, t0: float, text: str, answered_by: str, reason: str, cloud_s: float,
               cloud_answer, request_id: str | None) -> RouteResult:
        """Record an answered request (policies' `record`, counters, the decision log) and return its result."""
        total = self.clock() - t0
        lat = {"total": total * 1e3, "edge": ctx.edge_s * 1e3, "cloud": cloud_s * 1e3,
               "overhead": max(0.0, total - ctx.edge_s - cloud_s) * 1e3}
        res = RouteResult(text=text, answered_by=answered_by, reason=reason,
                          redacted=bool(ctx.mapping) and ctx.escalated, pii=ctx.pii, scores=ctx.scores,
                          edge=ctx._edge, cloud=cloud_answer, latency_ms=lat)
        for p in self.policies:
            if hasattr(p, "record"):
                p.record(ctx, res)
        with self._lock:
            self.counts[answered_by] += 1
            if ctx.edge_done:
                a = self._edge_avg_s
                self._edge_avg_s = ctx.edge_s if a is None else 0.8 * a + 0.2 * ctx.edge_s
        if self.log is not None:
            rec = {"request_id": request_id, "answered_by": answered_by, "reason": reason,
                   "escalated": ctx.escalated, "redacted": res.redacted, "pii": ctx.pii,
                   "scores": ctx.scores, "latency_ms": {k: round(v, 3) for k, v in lat.items()}}
            if self.breaker is not None:
                rec["breaker"] = self.breaker.state
            self.log.write(rec)
        # The caller's copy also counts the bookkeeping above (the logged copy cannot count its own write).
        extra = (self.clock() - t0 - total) * 1e3
        lat["total"] += extra
        lat["overhead"] += extra
        return res

    # --- streaming ---------------------------------------------------------------------------

    def open_stream(self, request: Request, edge_fn: Callable[[Request], Any],
                    cloud_stream_fn: Callable | None = None, deadline_s: float | None = None,
                    request_id: str | None = None, cloud_params: dict | None = None, *,
                    edge_stream_fn: Callable[..., Any] | None = None) -> RouteStream:
        """Decide, and if escalating wait for the cloud's first delta, so that `answered_by` is
        known before the first byte goes out (it belongs in a header). Iterate the result for
        text deltas (a CloudClient's carry their log-probs unless the prompt was redacted); `.result`
        holds the final RouteResult once iteration ends.
        edge_stream_fn(request, on_step=, cancel=) is edge_fn that also streams (runtime.generate's keywords):
        when given, an edge answer that no policy had to read streams token by token."""
        t0 = self.clock()
        deadline = t0 + (deadline_s if deadline_s is not None else self.config.deadline_s)
        fn = cloud_stream_fn or self.cloud_stream_fn
        s = RouteStream(self, t0, request_id, edge_fn, edge_stream_fn)
        ctx, reason, degraded = self._open(request, s.edge_answer, fn)
        s.ctx = ctx
        if ctx.target == CLOUD:
            budget, reason, refused = self._cloud_gate(ctx, deadline, reason)
            if refused:
                degraded = True
            else:
                ctx.escalated = True
                c0 = self.clock()
                try:
                    it = iter(fn(ctx.cloud_request, budget, **(cloud_params or {})))
                    first = next(it, None)
                except Exception as e:  # noqa: BLE001
                    reason, degraded = f"{reason}; {self.cloud_failed(e)}", True
                else:
                    s.use_cloud(it, first, c0, reason + ("; PII redacted for the cloud" if ctx.mapping else ""))
                    return s
                s.cloud_s = self.clock() - c0
        s.use_edge(DEGRADED if degraded else EDGE, reason)
        return s
