"""llama.cpp's own OpenAI-compatible server (`python -m llama_cpp.server`) on loopback, as a real third-party cloud.

The router evaluation (benchmarks/route_eval.py) and the end-to-end router test start one, talk to it over HTTP
like any user's cloud, and stop it. It runs in a child process of its own: a crash there is a failed request
here, never a dead caller.

    with LlamaServer("model.gguf", alias="qwen-1.5b", threads=2) as srv:
        srv.url      # "http://127.0.0.1:PORT/v1"
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from edgewise.errors import BackendUnavailableError, EdgewiseError

INSTALL_HINT = "pip install 'llama-cpp-python[server]==0.3.36' (make bench-setup does it)"


def server_available() -> str | None:
    """None when llama_cpp.server can start here, else why not (for a test's skip reason)."""
    for mod in ("llama_cpp", "sse_starlette", "starlette_context", "pydantic_settings", "uvicorn", "fastapi"):
        if importlib.util.find_spec(mod) is None:
            return f"llama.cpp's server needs the Python package {mod}: {INSTALL_HINT}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """One `llama_cpp.server` process serving `model` under the name `alias` on 127.0.0.1."""

    def __init__(self, model: str | Path, *, alias: str = "cloud", threads: int = 2, n_ctx: int = 4096,
                 start_timeout_s: float = 120.0, log: str | Path | None = None):
        self.model = Path(model)
        if not self.model.is_file():
            raise EdgewiseError(f"llama.cpp server: model file {self.model} not found")
        if threads < 1 or n_ctx < 64:
            raise EdgewiseError(f"llama.cpp server: threads must be >= 1 and n_ctx >= 64, got {threads}, {n_ctx}")
        self.alias, self.threads, self.n_ctx, self.start_timeout_s = alias, threads, n_ctx, start_timeout_s
        self.own_log = log is None  # a log of our own choosing is removed on a clean stop
        self.log_path = Path(log) if log else Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def start(self) -> "LlamaServer":
        if why := server_available():
            raise BackendUnavailableError(why)
        self.port = free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", self.alias,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", str(self.threads),
               "--n_ctx", str(self.n_ctx), "--verbose", "False"]
        # Its own process group, so stop() also reaches any worker it forks.
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.proc = None
                raise BackendUnavailableError(f"llama.cpp server exited at start: {tail}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise BackendUnavailableError(f"llama.cpp server did not answer within {self.start_timeout_s:.0f} s "
                                      f"(log: {self.log_path})")

    def log_tail(self, n: int = 400) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None
        if self.own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
