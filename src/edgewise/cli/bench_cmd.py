"""`edgewise bench`: compare models, bundles or backends side by side, each measured in its own process."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console

from edgewise.cli.app import app
from edgewise.cli.optimize_cmd import _quiet, _table_console
from edgewise.cli.progress_view import RichProgress

err = Console(stderr=True)
# edgewise.bench.compare and edgewise.report are imported inside the command: every command module loads when
# `edgewise` starts, and those pull in numpy and the runtime.


def _parse_target(spec: str) -> tuple[str, str, str]:
    """`REF`, `REF@BACKEND` or `REF@BACKEND:PRECISION` -> (ref, backend, precision)."""
    ref, _, rest = spec.rpartition("@") if "@" in spec else (spec, "", "")
    backend, _, precision = rest.partition(":")
    return ref, backend or "ort", precision or "fp32"  # llama.cpp reads "fp32" as "the GGUF as shipped"


@app.command()
def bench(
    models: list[str] = typer.Argument(..., help="Models, bundles or backends: REF, REF@BACKEND or "
                                                 "REF@BACKEND:PRECISION, e.g. smollm2-135m@torch smollm2-135m@ort:int4."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="KIND:FILE; quality is relative to the first model."),
    device: str = typer.Option("host", "--device", "-d"),
    max_tokens: int = typer.Option(64, "--max-tokens"),
    passes: int = typer.Option(2, "--passes"),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Compare models, bundles or backends side by side: the same task, each measured in its own process."""
    _quiet()
    from edgewise.bench.compare import compare
    from edgewise.report import terminal_table

    targets = [_parse_target(m) for m in models]
    progress = RichProgress(err)
    try:
        report = compare(targets, task=task, device=device, max_tokens=max_tokens, passes=passes, progress=progress)
    finally:
        progress.done()
    if as_json:
        print(json.dumps(report["variants"], indent=2, default=str))
        return
    _table_console().print(terminal_table(report))
    for v in report["variants"]:
        if v.get("error") or v.get("bench_error"):
            err.print(f"[yellow]{v['name']}[/yellow]: {v.get('error') or v.get('bench_error')}")
    sys.stdout.flush()
