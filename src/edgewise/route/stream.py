"""A routed streaming answer: who answers is decided before the first byte, then the deltas flow (restored from
placeholders when the cloud saw a redacted prompt) and the request is recorded once, however the stream ends."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterator, Protocol

from edgewise.route.cloud import CloudAnswer
from edgewise.route.pii import StreamRestorer
from edgewise.route.types import CLOUD, EDGE, RouteContext, RouteResult


class Recorder(Protocol):
    """What a stream needs of its Router (typed here so that stream.py does not import router.py back)."""

    breaker: Any
    clock: Callable[[], float]

    def _finish(self, ctx: RouteContext, t0: float, text: str, answered_by: str, reason: str, cloud_s: float,
                cloud_answer, request_id: str | None) -> RouteResult: ...

    def _cloud_failed(self, e: BaseException) -> str: ...


class RouteStream:
    def __init__(self, router: Recorder, ctx: RouteContext, t0: float, request_id: str | None):
        self.router, self.ctx, self.t0, self.request_id = router, ctx, t0, request_id
        self.answered_by, self.reason = EDGE, ""
        self.cloud_s = 0.0
        self.result: RouteResult | None = None
        self._it: Iterator[str] | None = None
        self._first: str | None = None

    @property
    def redacted(self) -> bool:
        return bool(self.ctx.mapping) and self.ctx.escalated

    def headers(self) -> dict[str, str]:
        return RouteResult("", self.answered_by, self.reason).headers()

    def _edge(self, answered_by: str, reason: str) -> None:
        self.answered_by, self.reason = answered_by, reason
        self.ctx.edge()

    def _cloud(self, it: Iterator[str], first: str | None, c0: float, reason: str) -> None:
        self.answered_by, self.reason, self._it, self._first, self._c0 = CLOUD, reason, it, first, c0

    def close(self) -> None:
        """Finish a stream that will not be read to the end (the client left): close the cloud
        stream and record the request. Iterating to the end does this by itself."""
        if self.result is not None:
            return
        cloud = None
        if self._it is not None:
            if hasattr(self._it, "close"):
                self._it.close()
            if self.router.breaker is not None:
                self.router.breaker.record_success()  # it had started answering
            cloud = CloudAnswer(text="")
        self.reason = f"{self.reason}; client left before reading"
        self.result = self.router._finish(self.ctx, self.t0, "", self.answered_by, self.reason, self.cloud_s, cloud,
                                          self.request_id)

    def __iter__(self) -> Iterator[str]:
        r = self.router
        if self.result is not None:
            raise RuntimeError("a RouteStream can be read once")
        if self._it is None:
            text = self.ctx.edge().text
            if text:
                yield text
            self.result = r._finish(self.ctx, self.t0, text, self.answered_by, self.reason, self.cloud_s, None,
                                    self.request_id)
            return
        restorer, parts, ok = StreamRestorer(self.ctx.mapping), [], True
        # Deltas pass through as they are (CloudDelta keeps its log-probs) unless the prompt was redacted: then
        # the restorer yields plain text, as the cloud's tokens (placeholders) are not the text the client gets.
        logprobs: list[dict] = []
        deltas = self._it if self._first is None else itertools.chain([self._first], self._it)
        try:
            for delta in deltas:
                out = restorer.feed(delta)
                if out:
                    parts.append(out)
                    logprobs += getattr(out, "logprobs", None) or []
                    yield out
        except Exception as e:  # noqa: BLE001 - the answer so far stands; say that it broke
            ok = False
            self.reason = f"{self.reason}; {r._cloud_failed(e)} after {sum(map(len, parts))} chars"
        finally:
            # Also runs when the consumer stops early (client gone): close the cloud stream too.
            if hasattr(self._it, "close"):
                self._it.close()
            tail = restorer.flush()
            if tail:
                parts.append(tail)
            if ok and r.breaker is not None:
                r.breaker.record_success()
            self.cloud_s = r.clock() - self._c0
            self.result = r._finish(self.ctx, self.t0, "".join(parts), CLOUD, self.reason, self.cloud_s,
                                    CloudAnswer(text="".join(parts), logprobs=logprobs or None), self.request_id)
        if tail:
            yield tail
