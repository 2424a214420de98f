"""The objects the router and its policies pass around."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from edgewise.errors import EdgewiseError

EDGE, CLOUD, DEGRADED = "edge", "cloud", "edge-degraded"

Request = str | list[dict]  # a prompt, or OpenAI-style chat messages


@dataclass(frozen=True)
class Verdict:
    """A policy's say. target "cloud" is always tentative (a later policy may veto it);
    target "edge" with final=True ends the chain."""

    target: str  # EDGE | CLOUD
    reason: str
    final: bool = False
    degraded: bool = False  # answered locally because the cloud is unavailable


class RouteContext:
    """One request on its way through the policies. The edge answer is computed lazily, the first
    time a policy (or the router) asks for it."""

    def __init__(self, request: Request, text: str, edge_fn: Callable[[Request], Any], clock: Callable[[], float]):
        self.request = request
        self.text = text  # every piece of text the cloud would receive
        self.cloud_request: Request = request  # what the cloud would get (redacted by the privacy policy)
        self.mapping: dict[str, str] = {}  # placeholder -> original value
        self.pii: dict[str, int] = {}  # kind -> count, never the values
        self.scores: dict[str, float] = {}
        self.escalated = False  # set by the router once it actually calls the cloud
        self.target = EDGE  # the tentative decision so far, updated as policies speak
        self.state: dict[str, Any] = {}  # per-request scratch space for policies
        self._edge_fn, self._clock = edge_fn, clock
        self._edge: Any = None
        self.edge_s = 0.0

    @property
    def prompt(self) -> str:
        """The text a prompt-only scorer looks at: the last user message (as RouteLLM does)."""
        return last_user_text(self.request)

    @property
    def edge_done(self) -> bool:
        return self._edge is not None

    def edge(self) -> Any:
        if self._edge is None:
            t0 = self._clock()
            self._edge = self._edge_fn(self.request)
            self.edge_s = self._clock() - t0
        return self._edge


class Policy(Protocol):
    name: str

    def decide(self, ctx: RouteContext) -> Verdict | None:
        """Return a Verdict, or None to have no opinion on this request."""

    # Optional: def record(self, ctx: RouteContext, result: "RouteResult") -> None, called for every
    # routed request once it is answered (detected with hasattr).


@dataclass
class RouteResult:
    """What the router answers: the text, who produced it and why."""

    text: str
    answered_by: str  # EDGE | CLOUD | DEGRADED
    reason: str
    redacted: bool = False  # the cloud saw placeholders instead of PII
    pii: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    edge: Any = None  # the edge GenerationResult, when the edge ran
    cloud: Any = None  # the CloudAnswer, when the cloud answered
    latency_ms: dict[str, float] = field(default_factory=dict)  # total, edge, cloud, overhead

    def headers(self) -> dict[str, str]:
        """HTTP headers for the server's responses (ASCII only)."""
        return {"X-Edgewise-Answered-By": self.answered_by,
                "X-Edgewise-Route-Reason": self.reason.encode("ascii", "replace").decode()[:200]}

    def route_info(self) -> dict:
        """The `route` field for the server's JSON responses."""
        return {"answered_by": self.answered_by, "reason": self.reason, "redacted": self.redacted,
                "pii": dict(self.pii), "scores": {k: round(v, 5) for k, v in self.scores.items()},
                "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()}}


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def request_text(request: Request) -> str:
    """All text in a request, as the cloud would see it."""
    if isinstance(request, str):
        return request
    return "\n".join(_content_text(m.get("content")) for m in request)


def last_user_text(request: Request) -> str:
    if isinstance(request, str):
        return request
    for m in reversed(request):
        if m.get("role") == "user":
            return _content_text(m.get("content"))
    return request_text(request)


def config_from_table(cls: type, table: dict, where: str):
    """Build a config dataclass from a TOML table; unknown keys are an error naming the valid ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise EdgewiseError(f"unknown key {unknown[0]!r} in [{where}]: valid keys are {', '.join(sorted(names))}")
    try:
        return cls(**table)
    except TypeError as e:  # e.g. a list where a number belongs, caught before __post_init__
        raise EdgewiseError(f"bad value in [{where}]: {e}") from None
