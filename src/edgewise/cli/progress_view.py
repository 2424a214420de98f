"""How the CLI renders edgewise.progress.Progress, the one progress protocol every long job reports through
(optimize, bench, route eval): live bars on a terminal, one plain line per step when piped (CI logs)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars

from edgewise.progress import Progress


class RichProgress(Progress):
    """One progress bar per stage on stderr; notes print above the bars."""

    def __init__(self, console: Console):
        self.bars = Bars(TextColumn("[bold]{task.fields[stage]:<9}[/bold]"), BarColumn(bar_width=24),
                         MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                         console=console, transient=False)
        self.task = None
        self.stage_name = ""
        # Piped output (CI logs) gets one plain line per step; a terminal gets live bars.
        self.plain = not console.is_terminal
        self.console = console
        if not self.plain:
            self.bars.start()

    def stage(self, name: str, total: int) -> None:
        self._finish_task()
        self.task = self.bars.add_task("", total=max(total, 1), stage=name)
        self.stage_name = name
        self.started = False

    def step(self, label: str) -> None:
        if self.task is None:
            return
        if self.started:
            self.bars.advance(self.task)
        self.started = True
        self.bars.update(self.task, description=label)
        if self.plain:
            t = self.bars.tasks[self.task]
            self.console.print(f"[{self.stage_name} {int(t.completed) + 1}/{int(t.total)}] {label}", markup=False,
                               emoji=False)

    def _finish_task(self) -> None:
        if self.task is not None:
            t = self.bars.tasks[self.task]
            self.bars.update(self.task, completed=t.total, description="done")

    def info(self, message: str) -> None:
        # emoji=False: a task label such as perplexity:notes: must not turn into a musical note
        self.console.print(message, style="dim", markup=False, emoji=False)

    def done(self) -> None:
        self._finish_task()
        if not self.plain:
            self.bars.stop()
