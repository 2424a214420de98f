"""Server configuration, validated on construction."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from edgewise.errors import EdgewiseError


@dataclass
class ServeConfig:
    model: str
    backend: str = "ort"
    precision: str = "auto"
    threads: int | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    embed_model: str | None = None  # an encoder served beside a generator for /v1/embeddings
    max_queue: int = 8  # running + waiting requests; beyond it: 429
    parallel: int = 2  # generations running at once, each on its own session (docs/serving.md: measured)
    sessions: int = 4  # KV caches kept for follow-up turns (an LRU keyed by the tokens each holds)
    queue_timeout_s: float = 120.0
    default_max_tokens: int = 256
    api_key_env: str | None = None
    cloud_url: str | None = None
    cloud_model: str | None = None
    cloud_key_env: str | None = None
    policy: str | None = None
    request_log: str | None = None  # JSONL of every request body received (for audits and test doubles)
    log: str | None = None  # the server log (5xx tracebacks); None = stderr
    draft: str | None = None  # speculative decoding: lookup[:...] or model:REF[,...] (docs/speculative.md)

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise EdgewiseError(f"--port must be in 0..65535, got {self.port}")
        if self.max_queue < 1:
            raise EdgewiseError("--max-queue must be at least 1")
        if not isinstance(self.parallel, int) or self.parallel < 1:
            raise EdgewiseError(f"--parallel must be a positive integer, got {self.parallel!r}")
        if not isinstance(self.sessions, int) or self.sessions < self.parallel:
            raise EdgewiseError(f"--sessions ({self.sessions!r}) must be at least --parallel ({self.parallel}): "
                                "every running generation needs a session of its own")
        if self.default_max_tokens < 1:
            raise EdgewiseError("--max-tokens must be at least 1")
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise EdgewiseError(f"--api-key-env {self.api_key_env}: that environment variable is empty: export it first")
        if bool(self.cloud_url) != bool(self.cloud_model):
            raise EdgewiseError("--cloud and --cloud-model go together: give both or neither")
        if self.draft is not None:
            self._check_draft()

    def _check_draft(self) -> None:
        """The spec's source name, before any model loads; its options and a model draft's tokenizer are checked
        when ServerState builds it (still before the server listens)."""
        from edgewise.runtime.drafts import DRAFTS  # here: it loads the runtime, and a config without --draft need not

        name = self.draft.strip().partition(":")[0].strip()
        if name not in DRAFTS:
            raise EdgewiseError(f"--draft {self.draft!r}: unknown draft source {name!r}: choose one of "
                                f"{', '.join(DRAFTS.names())}, e.g. lookup or model:REF (docs/speculative.md)")

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
