"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}} with the right HTTP status.

A 4xx names the field at fault (`param`). A 5xx is logged with its traceback on the `edgewise.serve` logger (stderr,
or `edgewise serve --log FILE`), and its message names where it happened and the request id to find in that log.
"""

from __future__ import annotations

import logging
import sys
import traceback
import uuid
from pathlib import Path

from fastapi.responses import JSONResponse

log = logging.getLogger("edgewise.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(status_code=self.status, headers=headers, content=self.body())

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def where(e: BaseException) -> str:
    """The innermost frame of an exception, as `file.py:line in function`."""
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return "unknown location"
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


def internal_error(e: BaseException, context: str) -> ApiError:
    """Log an unexpected exception with its traceback and turn it into a 500 that says where and which request."""
    rid = uuid.uuid4().hex[:12]
    log.error("request %s: %s failed: %s: %s", rid, context, type(e).__name__, e, exc_info=e)
    return ApiError(500, f"internal error in {context}: {type(e).__name__} at {where(e)}; the server log has the "
                         f"traceback under request {rid}", type="server_error", code="internal_error")


def log_server_error(e: ApiError, context: str) -> None:
    """A deliberate 5xx (503 while the model is busy) is logged too, so the log explains every 5xx a client saw."""
    log.error("%s answered %d: %s", context, e.status, e.message, exc_info=e)


def configure_logging(path: str | None = None) -> logging.Handler:
    """Send the server's log to `path` (appended) or to stderr; returns the handler (tests remove it)."""
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler
