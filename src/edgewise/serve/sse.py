"""Server-sent events from a worker thread: the one streaming helper the chat and completion endpoints share.

The worker runs on the pool and emits text deltas; the response relays them as `data:` events, ends with the
worker's final events and `data: [DONE]`, and turns a failure into one error event. However the response ends
(done, error, client gone, never started), the worker is cancelled and the admission slot released exactly once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Callable

from fastapi.responses import StreamingResponse

from edgewise.errors import EdgewiseError
from edgewise.serve.errors import ApiError, internal_error


def data(obj) -> str:
    return f"data: {json.dumps(obj)}\n\n"


class StreamJob:
    """Ties a streaming response to its worker: release the admission slot once the worker is done."""

    def __init__(self, release: Callable[[], None]):
        self.cancel = threading.Event()
        self.fut = None
        self._release = release
        self._done = threading.Lock()
        self._released = False

    def _release_once(self, *_):
        with self._done:
            if self._released:
                return
            self._released = True
        self._release()

    def close(self) -> None:
        self.cancel.set()
        if self.fut is not None and not self.fut.done():
            self.fut.add_done_callback(self._release_once)
        else:
            self._release_once()


class GuardedStream(StreamingResponse):
    def __init__(self, content, job: StreamJob, **kw):
        super().__init__(content, **kw)
        self.job = job

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.close()


def _error_event(e: BaseException, context: str) -> str:
    if isinstance(e, ApiError):
        return data(e.body())
    if isinstance(e, EdgewiseError):
        return data({"error": {"message": str(e), "type": "invalid_request_error", "param": None, "code": None}})
    return data(internal_error(e, context).body())


def sse_response(state, context: str,
                 work: Callable[[Callable[[str], None], threading.Event], list[str]],
                 chunk: Callable[[str], str], first: tuple[str, ...] = (),
                 headers: dict | None = None) -> GuardedStream:
    """Stream `work(emit, cancel)` (run on the pool) as events: `first`, then `chunk(delta)` per emitted delta,
    then the events `work` returns, then [DONE]. The caller has admitted the request; this releases it."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()
    job = StreamJob(state.gate.release)

    def put(kind: str, item) -> None:
        loop.call_soon_threadsafe(q.put_nowait, (kind, item))

    def worker() -> None:
        try:
            put("done", work(lambda text: put("delta", text), job.cancel))
        except Exception as e:  # noqa: BLE001 - reported in-stream, the server stays up
            put("error", _error_event(e, context))

    async def events():
        job.fut = loop.run_in_executor(state.pool, worker)
        try:
            for event in first:
                yield event
            while True:
                kind, item = await q.get()
                if kind == "delta":
                    if item:
                        yield chunk(item)
                elif kind == "error":
                    yield item
                    break
                else:
                    for event in item:
                        yield event
                    break
            yield "data: [DONE]\n\n"
        finally:
            # The client may have gone: stop generating at the next token and free the model.
            job.close()

    return GuardedStream(events(), job, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
