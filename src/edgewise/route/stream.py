"""A routed streaming answer. Who answers is decided before the first byte (it belongs in a header); then:

- the edge, when no policy read its answer to decide, streams token by token as it generates;
- the edge's answer, when a policy read it to decide (confidence on its log-probs), was held back until the decision
  and goes out at once: an escalation replaces it, so the client never sees two answers (docs/routing.md,
  "Streaming behind the router");
- the cloud's deltas flow as they come, restored from placeholders when the cloud saw a redacted prompt.

The request is recorded once, however the stream ends: read to the end, broken, or left by its client.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from typing import Any, Callable, Iterator, Protocol

from edgewise.privacy.pii import StreamRestorer
from edgewise.route.cloud import CloudAnswer
from edgewise.route.types import CLOUD, EDGE, Request, RouteContext, RouteResult

_END = object()


class Recorder(Protocol):
    """What a stream needs of its Router (typed here so that stream.py does not import router.py back)."""

    breaker: Any
    clock: Callable[[], float]

    def finish(self, ctx: RouteContext, t0: float, text: str, answered_by: str, reason: str, cloud_s: float,
               cloud_answer, request_id: str | None) -> RouteResult: ...

    def cloud_failed(self, e: BaseException) -> str: ...


class RouteStream:
    """Built by Router.open_stream. `edge_fn(request)` gives the edge's whole answer (what a deciding policy reads);
    `edge_stream_fn(request, on_step=, cancel=)` gives it too, calling on_step with each token's response (`.text`
    is the delta) and stopping once `cancel` is set, as runtime.generate does. Without one the edge answers in one
    chunk."""

    def __init__(self, router: Recorder, t0: float, request_id: str | None, edge_fn: Callable[[Request], Any],
                 edge_stream_fn: Callable[..., Any] | None = None):
        self.router, self.t0, self.request_id = router, t0, request_id
        self.ctx: RouteContext | None = None  # set by the router once the request is open
        self.answered_by, self.reason = EDGE, ""
        self.cloud_s = 0.0
        self.result: RouteResult | None = None
        self._edge_fn, self._edge_stream_fn = edge_fn, edge_stream_fn
        self._live: tuple[Callable, threading.Event] | None = None  # (on_step, cancel) while the edge streams
        self._it: Iterator[str] | None = None
        self._first: str | None = None
        self._reader: Iterator[str] | None = None
        self.edge_streams = False  # set once the edge is chosen: does it stream token by token?

    @property
    def redacted(self) -> bool:
        return bool(self.ctx.mapping) and self.ctx.escalated

    def headers(self) -> dict[str, str]:
        return RouteResult("", self.answered_by, self.reason).headers()

    def edge_answer(self, request: Request) -> Any:
        """The context's edge function: the whole answer while policies decide, streamed once the edge answers."""
        if self._live is None:
            return self._edge_fn(request)
        on_step, cancel = self._live
        return self._edge_stream_fn(request, on_step=on_step, cancel=cancel)

    def use_edge(self, answered_by: str, reason: str) -> None:
        """The router decided: the edge answers."""
        self.answered_by, self.reason = answered_by, reason
        # The edge's tokens go out as it makes them unless a policy has read its answer (then it was held back).
        self.edge_streams = self._edge_stream_fn is not None and not self.ctx.edge_done
        if self._edge_stream_fn is None:
            self.ctx.edge()  # the answer is ready when the stream opens, as the headers go out

    def use_cloud(self, it: Iterator[str], first: str | None, c0: float, reason: str) -> None:
        """The router decided and the cloud has begun: `first` is its first delta, c0 when it was asked."""
        self.answered_by, self.reason, self._it, self._first, self._c0 = CLOUD, reason, it, first, c0

    def _record(self, text: str, answered_by: str, cloud) -> None:
        if self.result is None:  # once, however many ways the stream ends
            self.result = self.router.finish(self.ctx, self.t0, text, answered_by, self.reason, self.cloud_s, cloud,
                                             self.request_id)

    def close(self) -> None:
        """Finish a stream that will not be read to the end (the client left): stop the edge or close the cloud
        stream, and record the request. Iterating to the end does this by itself."""
        if self._reader is not None:
            self._reader.close()  # a reader that had started records in its own `finally`
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
        self._record("", self.answered_by, cloud)

    def __iter__(self) -> Iterator[str]:
        if self._reader is not None or self.result is not None:
            raise RuntimeError("a RouteStream can be read once")
        self._reader = self._read_edge() if self._it is None else self._read_cloud()
        return self._reader

    def _read_edge(self) -> Iterator[str]:
        parts: list[str] = []
        src = self._live_edge() if self.edge_streams else self._held_edge()
        try:
            for piece in src:
                parts.append(piece)
                yield piece
        except GeneratorExit:
            self.reason = f"{self.reason}; client left after {sum(map(len, parts))} chars"
            raise
        except Exception as e:
            self.reason = f"{self.reason}; edge raised {type(e).__name__}"
            raise
        finally:
            src.close()  # stops a streaming edge first, so that the record holds its (cancelled) result
            self._record("".join(parts), self.answered_by, None)

    def _held_edge(self) -> Iterator[str]:
        # Held back until the decision (a policy read it), or an edge that cannot stream: one chunk.
        text = self.ctx.edge().text
        if text:
            yield text

    def _live_edge(self) -> Iterator[str]:
        """Run the edge on a thread of its own and yield its deltas as it makes them: the edge function pushes them
        through on_step, and a generator cannot yield from inside a callback."""
        # One delta of slack: the edge runs at most a token ahead of its reader, so a client that leaves stops it
        # at once (the reader's side drains what is left below) instead of after the whole answer.
        q: queue.Queue = queue.Queue(maxsize=1)
        cancel = threading.Event()
        self._live = (lambda r: q.put(r.text), cancel)

        def run() -> None:
            try:
                self.ctx.edge()
            except BaseException as e:  # noqa: BLE001 - raised again on the reading side
                q.put(e)
            finally:
                q.put(_END)

        t = threading.Thread(target=run, daemon=True, name="edgewise-edge-stream")
        t.start()
        try:
            while (item := q.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                if item:
                    yield item
        finally:
            cancel.set()  # a reader that stops early stops the edge before its next token
            while t.is_alive():  # unblock a put the edge is waiting in, until it has stopped
                with contextlib.suppress(queue.Empty):
                    q.get(timeout=0.05)
            t.join()

    def _read_cloud(self) -> Iterator[str]:
        r = self.router
        restorer, parts, ok, tail = StreamRestorer(self.ctx.mapping), [], True, ""
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
        except GeneratorExit:
            self.reason = f"{self.reason}; client left after {sum(map(len, parts))} chars"
            raise
        except Exception as e:  # noqa: BLE001 - the answer so far stands; say that it broke
            ok = False
            self.reason = f"{self.reason}; {r.cloud_failed(e)} after {sum(map(len, parts))} chars"
        finally:
            if hasattr(self._it, "close"):
                self._it.close()
            tail = restorer.flush()
            if tail:
                parts.append(tail)
            if ok and r.breaker is not None:
                r.breaker.record_success()
            self.cloud_s = r.clock() - self._c0
            text = "".join(parts)
            self._record(text, CLOUD, CloudAnswer(text=text, logprobs=logprobs or None))
        if tail:
            yield tail
