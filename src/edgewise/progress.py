"""How a long job reports where it is: stages with a known number of steps, and one-line notes.

The library default prints nothing; the CLI passes a rich-backed implementation (cli/progress_view.py), and a
benchmark script or a log passes LineProgress. Optimize, the benchmark comparison, route eval and the accuracy tasks
all report through it, so it sits below them all."""

from __future__ import annotations

import sys
import time


class Progress:
    def stage(self, name: str, total: int) -> None:
        """A new stage of `total` steps begins."""

    def step(self, label: str) -> None:
        """The next step of the current stage begins (the previous one is done)."""

    def info(self, message: str) -> None:
        """A note worth showing (bits per weight after quantizing, a skipped method)."""

    def done(self) -> None:
        """The job is over."""


class LineProgress(Progress):
    """Plain lines for a log file (a benchmark under nohup): each stage, every `every`-th step with the time since
    the stage began, and every note."""

    def __init__(self, every: int = 50, out=None):
        self.every, self.out = every, out
        self.name, self.total, self.i, self.t0 = "", 0, 0, time.monotonic()

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)

    def stage(self, name: str, total: int) -> None:
        self.name, self.total, self.i, self.t0 = name, total, 0, time.monotonic()
        self._print(f"{name}: {total} steps")

    def step(self, label: str) -> None:
        self.i += 1
        if self.i % self.every == 0:
            self._print(f"  {self.name} {self.i}/{self.total} {time.monotonic() - self.t0:.0f} s")

    def info(self, message: str) -> None:
        self._print(message)
