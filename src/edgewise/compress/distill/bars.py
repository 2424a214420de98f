"""Progress of the long distillation stages: a rich bar on a terminal, a line per ~10% elsewhere (nohup, CI)."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

class StageBar:
    """A rich progress bar with loss and tokens/s columns; off a terminal (nohup, CI) a line per ~10% instead."""

    def __init__(self, console, enabled: bool, label: str, total: int):
        self.console, self.enabled, self.label, self.total = console, enabled, label, total

    def __enter__(self):
        if not (self.enabled and self.console.is_terminal):
            self.p = LineProgress(self.console, self.label, self.total, quiet=not self.enabled)
            return self.p, 0
        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("{task.fields[tps]:.0f} tok/s"),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=self.console)
        self.p.__enter__()
        task = self.p.add_task(self.label, total=self.total, loss=float("nan"), tps=0.0)
        return self.p, task

    def __exit__(self, *exc):
        return self.p.__exit__(*exc)


class LineProgress:
    def __init__(self, console, label: str, total: int, quiet: bool):
        self.console, self.label, self.total, self.quiet = console, label, total, quiet
        self.n, self.next_pct, self.t0 = 0, 10, time.perf_counter()

    def update(self, task, completed: int | None = None, advance: int = 0, **fields) -> None:
        self.n = completed if completed is not None else self.n + advance
        pct = 100 * self.n / max(self.total, 1)
        if not self.quiet and pct >= self.next_pct and self.label != "distilling":  # training logs its own lines
            self.console.print(f"{self.label}: {self.n}/{self.total} ({time.perf_counter() - self.t0:.0f} s)",
                               highlight=False)
            self.next_pct = (int(pct) // 10 + 1) * 10

    def __exit__(self, *exc):
        return False
