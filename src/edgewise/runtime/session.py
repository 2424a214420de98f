"""A session: one conversation's KV cache, owned by its caller. A backend's DecoderSession that also knows its ids.

Backends implement the bare contract (start, append, rewind, n_tokens, and fork for more sessions:
`backend.DecoderSession`); LoadedModel wraps theirs in a TrackedSession, so whoever moves the cache (generate, the
keyboard, the server, evaluation) moves the one record of what it holds, and `sync(ids)` can keep the common prefix
and run only the rest. `model.decoder` is the model's own session (its lock is `model.lock`); `model.session()` makes
more, each with a lock of its own. Engine specifics (a torch model, a llama.cpp handle) stay reachable through
attribute access.
"""

from __future__ import annotations

import threading

import numpy as np


class TrackedSession:
    """A DecoderSession plus the token ids its KV cache holds (None: unknown, so the next sync starts afresh).

    `lock` is held by whoever runs a generation on it: one conversation moves one cache at a time.
    """

    def __init__(self, engine, lock: threading.Lock | None = None, owner=None):
        self.engine = engine
        self.lock = lock if lock is not None else threading.Lock()
        self.owner = owner  # the LoadedModel whose weights it runs on (None for a bare engine in tests)
        self._ids: list[int] | None = None
        self.capacity = 0  # max_length of the last start(): appending past it needs a new start
        self.reused = 0  # tokens the last sync() kept from the cache

    def __getattr__(self, name):
        if name == "engine":  # not set yet (copy, unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.engine, name)

    def score(self, ids: list[int]) -> np.ndarray:
        """Logits (T, V) at every position of `ids` from an empty cache: one pass where the engine has a scorer,
        else token by token. Either way the cache no longer holds what the record said."""
        ids = [int(t) for t in ids]
        one_pass = getattr(self.engine, "score", None)
        if one_pass is not None:
            self._ids = None  # onnxruntime-genai scores through its generator, which it restarts
            return np.asarray(one_pass(ids), np.float32)
        self.start(len(ids) + 1)
        return np.stack([self.append([t]) for t in ids]).astype(np.float32)

    @property
    def ids(self) -> tuple[int, ...] | None:
        """The token ids in the KV cache, or None when unknown (an engine call failed half-way)."""
        return None if self._ids is None else tuple(self._ids)

    @property
    def context_length(self) -> int:
        return self.engine.context_length

    def start(self, max_length: int) -> None:
        self._ids = None
        self.engine.start(max_length)
        self._ids, self.capacity = [], max_length

    def append(self, ids: list[int]) -> np.ndarray:
        ids = [int(t) for t in ids]
        known, self._ids = self._ids, None  # unknown until the engine returns
        logits = self.engine.append(ids)
        if known is not None:
            self._ids = known + ids
        return logits

    def append_all(self, ids: list[int]) -> np.ndarray:
        """Like append, but the logits (k, V) of every appended position: speculative decoding verifies k
        proposed tokens with one pass. An engine without a one-pass `append_all` appends token by token."""
        ids = [int(t) for t in ids]
        known, self._ids = self._ids, None
        one_pass = getattr(self.engine, "append_all", None)
        if one_pass is not None:
            logits = np.asarray(one_pass(ids), np.float32)
        else:
            logits = np.stack([self.engine.append([t]) for t in ids]).astype(np.float32)
        if known is not None:
            self._ids = known + ids
        return logits

    def rewind(self, n_tokens: int) -> None:
        known, self._ids = self._ids, None
        self.engine.rewind(n_tokens)
        if known is not None and n_tokens <= len(known):
            self._ids = known[:n_tokens]

    def n_tokens(self) -> int:
        return self.engine.n_tokens()

    def common_prefix(self, ids: list[int]) -> int:
        """How many leading tokens of `ids` the cache already holds."""
        cur = self._ids
        if cur is None:
            return 0
        n, m = 0, min(len(cur), len(ids))
        while n < m and cur[n] == ids[n]:
            n += 1
        return n

    def sync(self, ids: list[int], max_length: int, logits: bool = True) -> np.ndarray | None:
        """Make the cache hold exactly `ids`: keep the common prefix, rewind the rest, append what is new.

        Returns the last position's logits (re-running that one token when the cache already held all of `ids`),
        or None when `logits` is False and nothing had to run. `max_length` is the room the caller will need
        (ids plus what it appends next); a cache started smaller is started again.
        """
        ids = [int(t) for t in ids]
        if not ids:
            raise ValueError("sync needs at least one token id")
        # Trust the record only while the engine agrees on its length (someone may have moved the raw engine).
        fits = self._ids is not None and max_length <= self.capacity and self.engine.n_tokens() == len(self._ids)
        n = self.common_prefix(ids) if fits else 0
        if n == len(ids) == len(self._ids or ()) and not logits:
            self.reused = n
            return None
        if n == len(ids):
            n -= 1  # the logits of the last position are needed: run that token again
        if n == 0:
            self.start(max_length)
        elif n < len(self._ids):
            self.rewind(n)
        self.reused = n
        return self.append(ids[n:])
