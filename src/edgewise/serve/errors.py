"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}} with the right HTTP status."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(status_code=self.status, headers=headers, content={
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}})


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)
