"""A bounded admission queue in front of the model's generation slots: full means 429 at once, never a hang."""

from __future__ import annotations

import threading

from edgewise.serve.errors import ApiError


class AdmissionGate:
    def __init__(self, max_queue: int, wait_timeout_s: float, metrics, slots: int = 1):
        self.max_queue = max_queue  # running + waiting
        self.wait_timeout_s = wait_timeout_s
        self.metrics = metrics
        self.slots = slots
        self._count = 0
        self._count_lock = threading.Lock()
        self._run = threading.BoundedSemaphore(slots)  # generations running at once, each on its own session

    def admit(self) -> None:
        with self._count_lock:
            if self._count >= self.max_queue:
                self.metrics.add("rejected_busy")
                raise ApiError(429, f"server busy: {self._count} requests running or queued (limit "
                                    f"{self.max_queue}); retry shortly", type="rate_limit_error", code="queue_full")
            self._count += 1
            self.metrics.queue_depth = self._count

    def release(self) -> None:
        with self._count_lock:
            self._count -= 1
            self.metrics.queue_depth = self._count

    def acquire_model(self) -> None:
        """Wait for a generation slot on the model; called from a worker thread after admit()."""
        if not self._run.acquire(timeout=self.wait_timeout_s):
            raise ApiError(503, f"timed out after {self.wait_timeout_s:.0f}s waiting for the model; retry shortly",
                           type="server_error", code="queue_timeout")

    def release_model(self) -> None:
        self._run.release()
