"""How a long job reports where it is: stages with a known number of steps, and one-line notes.

The library default prints nothing; the CLI passes a rich-backed implementation (cli/optimize_cmd.py). Optimize
and the benchmark comparison both report through it, so it sits below both."""

from __future__ import annotations


class Progress:
    def stage(self, name: str, total: int) -> None:
        """A new stage of `total` steps begins."""

    def step(self, label: str) -> None:
        """The next step of the current stage begins (the previous one is done)."""

    def info(self, message: str) -> None:
        """A note worth showing (bits per weight after quantizing, a skipped method)."""

    def done(self) -> None:
        """The job is over."""
