"""The server's sessions: an LRU of KV caches keyed by the token ids each holds, mlx-lm's prompt cache for a server.

A request takes the free session whose cache shares the longest prefix with its prompt, so a chat's follow-up turn
lands on the session that holds the conversation so far and computes only its new tokens. A prompt that shares
little with every free session (another conversation: often only the system prompt) gets a new session while the
pool has room, so it does not wipe a live conversation's cache; a full pool gives it the least recently used free
one. Two requests never hold one session; a session whose engine call failed is dropped (its cache is unknown).
"""

from __future__ import annotations

import threading

from edgewise.runtime import LoadedModel, TrackedSession
from edgewise.serve.errors import ApiError


class SessionPool:
    def __init__(self, model: LoadedModel, size: int):
        self.model = model
        self.size = size
        self._lock = threading.Lock()
        self._free: list[TrackedSession] = []  # least recently used first
        self._busy: set[int] = set()  # id() of sessions checked out
        self.created = 0  # sessions made so far (a dropped one is replaced by a new one)

    def __len__(self) -> int:
        with self._lock:
            return len(self._free) + len(self._busy)

    def checkout(self, ids: list[int]) -> TrackedSession:
        """The session to run `ids` on, held by the caller until checkin."""
        with self._lock:
            best, shared = None, 0
            for s in self._free:
                n = s.common_prefix(ids)
                if n >= shared:  # ties go to the most recently used, later in the list
                    best, shared = s, n
            held = len(best.ids or ()) if best is not None else 0
            # Its own conversation shares most of what a session holds (a follow-up re-tokenizes the last answer's
            # end, so a few tokens may differ); another conversation shares a system prompt at most.
            if best is None or 2 * shared < held:
                if len(self._free) + len(self._busy) < self.size:
                    best = None
                elif self._free:
                    best = self._free[0]  # sync still keeps whatever prefix it shares
                else:
                    raise ApiError(503, f"all {self.size} sessions are busy; retry shortly", type="server_error",
                                   code="sessions_busy")
            if best is None:
                best = self.model.session()
                self.created += 1
            else:
                self._free.remove(best)
            self._busy.add(id(best))
            return best

    def checkin(self, session: TrackedSession, ok: bool = True) -> None:
        """Give a session back as the most recently used; `ok=False` (an engine call failed) drops it."""
        with self._lock:
            self._busy.discard(id(session))
            if ok and session.ids is not None:
                self._free.append(session)
            elif hasattr(session.engine, "close"):
                session.engine.close()

    def holdings(self) -> list[int]:
        """Tokens each free session holds, least recently used first (for /metrics and tests)."""
        with self._lock:
            return [len(s.ids or ()) for s in self._free]
