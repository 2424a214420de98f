"""A small client for any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, OpenAI).

Built for a router that must answer within a latency budget:
- a short connect timeout, and every other timeout capped by the time left to the deadline;
- bounded retries with full jitter, only where retrying can help: connection errors (refused,
  reset, dropped), HTTP 5xx and 429. A read timeout is not retried: the deadline is spent;
- SSE streaming passed through as text deltas;
- token log-probs (`logprobs.content`) passed through when the request asks for them and the cloud sends them.
Every failure is a CloudError, which the router catches and answers from the edge instead.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import httpx

from edgewise.errors import EdgewiseError


class CloudError(Exception):
    """The cloud did not answer usably. kind: connect | timeout | http | bad_response."""

    def __init__(self, message: str, kind: str, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.kind, self.status, self.attempts = kind, status, attempts

    @property
    def health_failure(self) -> bool:
        """Does this say the cloud is unhealthy (counts toward the breaker)? A 400/413/422 is about
        this one request, not the link."""
        return not (self.kind == "http" and self.status in (400, 413, 422))


@dataclass(frozen=True)
class CloudConfig:
    """Where the cloud model lives and how hard to try. url may be the server root, `.../v1`,
    or the full `.../v1/chat/completions`."""

    url: str
    model: str
    key_env: str | None = None  # name of the env var holding a bearer key (never the key itself)
    connect_timeout_s: float = 1.0
    max_retries: int = 2  # extra attempts after the first
    backoff_s: float = 0.1  # base of the exponential backoff; the actual sleep is uniform in [0, base*2^n]
    backoff_max_s: float = 2.0
    deadline_s: float = 30.0  # used when the caller gives none

    def __post_init__(self):
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise EdgewiseError(f"cloud url must start with http:// or https://, got {self.url!r}")
        if not isinstance(self.model, str) or not self.model:
            raise EdgewiseError("cloud model name is empty: pass --cloud-model NAME")
        for name in ("connect_timeout_s", "deadline_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise EdgewiseError(f"cloud {name} must be > 0 seconds, got {v!r}")
        for name in ("backoff_s", "backoff_max_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise EdgewiseError(f"cloud {name} must be >= 0 seconds, got {v!r}")
        if not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 10:
            raise EdgewiseError(f"cloud max_retries must be an integer in [0, 10], got {self.max_retries!r}")
        if self.key_env is not None and not os.environ.get(self.key_env):
            raise EdgewiseError(f"environment variable {self.key_env} is empty: export the cloud key there "
                                "or drop --cloud-key-env")

    @property
    def endpoint(self) -> str:
        u = self.url.rstrip("/")
        if u.endswith("/chat/completions"):
            return u
        return u + ("/chat/completions" if u.endswith("/v1") else "/v1/chat/completions")


@dataclass
class CloudAnswer:
    text: str
    model: str = ""
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)
    attempts: int = 1
    latency_s: float = 0.0
    logprobs: list[dict] | None = None  # the cloud's choices[0].logprobs.content, when it sent one


class CloudDelta(str):
    """A streamed text delta, with the log-probs of the tokens it holds (None when the cloud sent none).
    A str, so a caller that wants only the text need not know."""

    logprobs: list[dict] | None

    def __new__(cls, text: str, logprobs: list[dict] | None = None):
        self = super().__new__(cls, text)
        self.logprobs = logprobs
        return self


def logprobs_content(choice: dict) -> list[dict] | None:
    """A choice's `logprobs.content` list, or None where the cloud sent none (or something else)."""
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    return content if isinstance(content, list) else None


def as_messages(request: str | list[dict]) -> list[dict]:
    return [{"role": "user", "content": request}] if isinstance(request, str) else request


class CloudClient:
    # Every timeout is capped by the time left, so the router may call it inline instead of in a
    # watchdog thread. (A server trickling bytes slower than one read timeout could still overrun
    # by up to that timeout; a hanging or failing one cannot.)
    honours_deadline = True

    def __init__(self, config: CloudConfig, *, transport: httpx.BaseTransport | None = None,
                 rng: random.Random | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.rng = rng or random.Random()
        self.sleep, self.clock = sleep, clock
        # Plain-http endpoints (a LAN vLLM, a local llama.cpp) skip loading the CA bundle, which
        # costs ~0.1 s per client; redirects are off, so such a client can never reach https.
        tls = config.endpoint.startswith("https://")
        self._http = httpx.Client(transport=transport, follow_redirects=False, verify=True if tls else False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _headers(self) -> dict:
        h = {"Accept": "application/json"}
        if self.config.key_env:
            h["Authorization"] = f"Bearer {os.environ.get(self.config.key_env, '')}"
        return h

    def _body(self, messages: list[dict], stream: bool, params: dict) -> dict:
        body = {"model": self.config.model, "messages": messages, "stream": stream}
        body.update({k: v for k, v in params.items() if v is not None})
        return body

    def _deadline(self, deadline_s: float | None) -> float:
        return self.clock() + (self.config.deadline_s if deadline_s is None else deadline_s)

    def _with_retries(self, attempt_fn: Callable[[httpx.Timeout], object], deadline: float):
        """Run attempt_fn until it returns, a non-retryable error, the retry cap or the deadline."""
        cfg = self.config
        last: CloudError | None = None
        for n in range(cfg.max_retries + 1):
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            timeout = httpx.Timeout(connect=min(cfg.connect_timeout_s, remaining), read=remaining,
                                    write=remaining, pool=remaining)
            retry_after = 0.0
            try:
                return attempt_fn(timeout), n + 1
            except httpx.ConnectTimeout:
                last = CloudError("cloud connect timed out", "connect", attempts=n + 1)
            except httpx.TimeoutException:
                raise CloudError(f"cloud timed out within the {remaining:.2f} s left", "timeout",
                                 attempts=n + 1) from None
            except (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as e:
                last = CloudError(f"cloud connection failed ({type(e).__name__})", "connect", attempts=n + 1)
            except _HTTPStatus as e:
                last = CloudError(e.message, "http", status=e.status, attempts=n + 1)
                if not (e.status == 429 or e.status >= 500):
                    raise last from None
                retry_after = e.retry_after
            except httpx.HTTPError as e:
                raise CloudError(f"cloud request failed ({type(e).__name__})", "connect", attempts=n + 1) from None
            if n == cfg.max_retries:
                break
            delay = max(retry_after, self.rng.uniform(0.0, min(cfg.backoff_max_s, cfg.backoff_s * 2 ** n)))
            if self.clock() + delay >= deadline:
                break  # sleeping would eat the whole budget: give up now, the edge answers
            self.sleep(delay)
        if last is None:
            last = CloudError("no time left to call the cloud", "timeout", attempts=0)
        raise last

    def _send(self, body: dict, timeout: httpx.Timeout) -> httpx.Response:
        req = self._http.build_request("POST", self.config.endpoint, json=body, headers=self._headers(),
                                       timeout=timeout)
        resp = self._http.send(req, stream=True)
        if resp.status_code != 200:
            resp.close()
            raise _HTTPStatus(resp.status_code, resp.headers.get("retry-after"), self.config)
        return resp

    def chat(self, messages: list[dict], *, deadline_s: float | None = None, **params) -> CloudAnswer:
        """One non-streaming chat completion, all retries included, within deadline_s."""
        t0 = self.clock()
        deadline = self._deadline(deadline_s)
        body = self._body(messages, False, params)

        def attempt(timeout: httpx.Timeout) -> bytes:
            resp = self._send(body, timeout)
            try:
                chunks = []
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    if self.clock() > deadline:  # a server trickling bytes must not outlast the budget
                        raise httpx.ReadTimeout("deadline passed while reading")
                return b"".join(chunks)
            finally:
                resp.close()

        raw, attempts = self._with_retries(attempt, deadline)
        try:
            obj = json.loads(raw)
            choice = obj["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise CloudError("cloud sent a response that is not an OpenAI chat completion", "bad_response",
                             attempts=attempts) from None
        return CloudAnswer(text=text, model=obj.get("model", ""), finish_reason=choice.get("finish_reason"),
                           usage=obj.get("usage") or {}, attempts=attempts, latency_s=self.clock() - t0,
                           logprobs=logprobs_content(choice))

    def stream(self, messages: list[dict], *, deadline_s: float | None = None, **params) -> Iterator[CloudDelta]:
        """Text deltas of a streamed chat completion. Retries happen only before the first byte;
        a stream that breaks later raises CloudError (the caller decides what to do with the part)."""
        deadline = self._deadline(deadline_s)
        body = self._body(messages, True, params)
        resp, _ = self._with_retries(lambda timeout: self._send(body, timeout), deadline)
        done = False
        # A token that ends mid-character comes with empty text: its log-probs ride on the next delta.
        pending: list[dict] = []
        try:
            for line in resp.iter_lines():
                if self.clock() > deadline:
                    raise CloudError("cloud stream passed the deadline", "timeout")
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    obj = json.loads(data)
                    if "error" in obj:
                        raise CloudError("cloud reported an error mid-stream", "bad_response")
                    choice = obj["choices"][0] if obj.get("choices") else {}
                    delta = (choice.get("delta") or {}).get("content")
                    pending += logprobs_content(choice) or []
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    raise CloudError("cloud sent a malformed stream event", "bad_response") from None
                if delta:
                    yield CloudDelta(delta, pending or None)
                    pending = []
        except httpx.TimeoutException:
            raise CloudError("cloud stream stalled past the deadline", "timeout") from None
        except httpx.HTTPError as e:
            raise CloudError(f"cloud stream broke ({type(e).__name__})", "connect") from None
        finally:
            resp.close()
        if not done:
            raise CloudError("cloud stream ended without [DONE]", "connect")

    # The router's cloud_fn / cloud_stream_fn signatures: (request, deadline_s, **params) -> ...
    def __call__(self, request: str | list[dict], deadline_s: float | None = None, **params) -> CloudAnswer:
        return self.chat(as_messages(request), deadline_s=deadline_s, **params)

    def stream_fn(self, request: str | list[dict], deadline_s: float | None = None, **params) -> Iterator[CloudDelta]:
        return self.stream(as_messages(request), deadline_s=deadline_s, **params)


class _HTTPStatus(Exception):
    def __init__(self, status: int, retry_after: str | None, cfg: CloudConfig):
        self.status = status
        try:
            self.retry_after = min(float(retry_after), 30.0) if retry_after else 0.0
        except ValueError:  # an HTTP-date; not worth parsing for a sub-minute budget
            self.retry_after = 0.0
        hint = {401: f"check the key in ${cfg.key_env}" if cfg.key_env
                else "the endpoint wants a key: pass --cloud-key-env",
                403: "the key is not allowed to use this model",
                404: f"check the URL ({cfg.endpoint}) and the model name ({cfg.model})",
                429: "the endpoint is rate limiting"}.get(status, "")
        self.message = f"cloud returned HTTP {status}" + (f": {hint}" if hint else "")
        super().__init__(self.message)
