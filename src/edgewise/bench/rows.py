"""How a benchmark script ends: a failed row is recorded and the run goes on, but the exit status says so.

A script collects {row: why} as rows fail, writes whatever it measured, then ends with
`sys.exit(exit_status(failed))`: 0 when every row ran, else 1 after one line naming each failed row.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO


def one_line(e: BaseException | str, limit: int = 300) -> str:
    """An error as one short line: `Type: first line of the message` (a log line, not a traceback)."""
    if isinstance(e, BaseException):
        msg = str(e).strip()
        e = f"{type(e).__name__}: {msg.splitlines()[0]}" if msg else type(e).__name__
    text = " ".join(e.strip().splitlines()[:1]) or "no message"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def exit_status(failed: Mapping[str, str], stream: TextIO | None = None) -> int:
    """0 when no row failed; else 1, after printing one line that names every failed row and why."""
    if not failed:
        return 0
    rows = "; ".join(f"{name} ({one_line(why)})" for name, why in failed.items())
    print(f"FAILED {len(failed)} row(s): {rows}", file=stream or sys.stderr, flush=True)
    return 1
