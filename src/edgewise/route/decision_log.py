"""Append-only JSONL log of routing decisions: who answered, why, scores and timings.

It never holds message text or PII values: only counts of PII kinds, and reasons the router builds
itself from fixed phrases and numbers (a failing cloud_fn is named by its exception type only, so
an error message that echoes the input never reaches the log).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path



def _clean(x):
    # JSON has no inf/nan; a -inf confidence (empty answer) is logged as null.
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


class DecisionLog:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # O_APPEND: each record is one write() call, so lines from several processes never interleave.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, record: dict) -> None:
        t = time.time()
        rec = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"}
        rec.update(record)
        try:
            text = json.dumps(rec, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError:  # an inf/nan somewhere: the slow path
            text = json.dumps(_clean(rec), separators=(",", ":"), ensure_ascii=False)
        line = (text + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
