"""`edgewise optimize`: compress, measure, gate, recommend, bundle (`edgewise bench` is cli/bench_cmd.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from edgewise.cli.app import app
from edgewise.cli.run_cmd import _quiet_libraries
from edgewise.cli.progress_view import RichProgress

err = Console(stderr=True)
# edgewise.optimize and edgewise.report are imported inside the commands: every command
# module loads when `edgewise` starts, and those pull in numpy, the runtime and the compressors.


def _table_console(stderr: bool = False) -> Console:
    # Piped output has no terminal width; rich would squeeze the table to 80 columns and truncate every cell.
    stream = sys.stderr if stderr else sys.stdout
    # 240: two tasks' columns (accuracy and drop with intervals) beside the cost columns still fit on one line.
    return Console(stderr=stderr, width=None if stream.isatty() else 240)


def _quiet() -> None:
    _quiet_libraries()


@app.command()
def optimize(
    model: Optional[str] = typer.Argument(None, help="Alias, path or hub id (default: smollm2-135m)."),
    device: str = typer.Option("host", "--device", "-d", help="Target device profile (see `edgewise devices`)."),
    task: Optional[list[str]] = typer.Option(None, "--task", "-t",
                                             help="KIND:FILE: perplexity:, nextword: (text), retrieval:, classify:, "
                                                  "choice:, generate: (jsonl). Repeat for several tasks: every "
                                                  "variant must pass each; the first is the primary. Default: the "
                                                  "packaged demo text and quiz, or a docstring retrieval set for "
                                                  "encoders."),
    methods: Optional[str] = typer.Option(None, "--methods", "-m",
                                          help="Comma list, e.g. fp32,int8,int4,int4-gptq,mixed; options as "
                                               "int4:block_size=64 (separate several with ';' then)."),
    max_drop: str = typer.Option("5%", "--max-drop", help="Gate: relative drop of the primary metric (5%, 0.05) "
                                                          "and/or a KLD ceiling (kld=0.05). On accuracy tasks, "
                                                          "absolute points (5% = 5 points) that the paired 95% "
                                                          "interval of the drop must stay within."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default ./edgewise-out/MODEL)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out folder."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Calibration text (default: a packaged Shakespeare "
                                                               "scene different from the evaluation text)."),
    no_bench: bool = typer.Option(False, "--no-bench", help="Skip speed and memory measurements."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="Tokens generated per benchmark pass."),
    draft: str = typer.Option("lookup", "--draft", help="Speculative decoding timed beside plain decode on a "
                                                        "grounded prompt for every benched decoder: lookup[:ngram=3,"
                                                        "k=8] or model:REF[,k=4,...]; none turns it off."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json to stdout at the end."),
    search: bool = typer.Option(False, "--search", help="Search pruning x quantization x per-layer precision for "
                                                        "the cheapest recipe that passes the gate and fits."),
    search_prune: Optional[str] = typer.Option(None, "--search-prune",
                                               help="';'-separated structured pruning specs to try (none = unpruned), "
                                                    "default: none;structured:mlp=0.25;structured:mlp=0.25,blocks=0.1"),
    search_quant: Optional[str] = typer.Option(None, "--search-quant",
                                               help="Comma list of quantization methods to try "
                                                    "(default int8,int4-gptq,mixed,int4)."),
    budget_minutes: Optional[float] = typer.Option(None, "--budget-minutes",
                                                   help="Stop the search after this many minutes."),
) -> None:
    """Compress a model several ways, prove each variant on your task, and bundle the fastest one that passes."""
    _quiet()
    from edgewise.optimize import OptimizeOptions
    from edgewise.optimize import optimize as run_optimize
    from edgewise.report import items_notes, search_table, terminal_table

    opts = OptimizeOptions(model=model, device=device, task=list(task) if task else None, methods=_split(methods), max_drop=max_drop, out=out,
                           force=force, calib=calib, bench=not no_bench, max_tokens=max_tokens, search=search,
                           search_prune=_split(search_prune, ";"), search_quant=_split(search_quant),
                           budget_minutes=budget_minutes, draft=draft)
    progress = RichProgress(err)
    try:
        result = run_optimize(opts, progress)
    finally:
        progress.done()
    report = result.report
    console = _table_console(stderr=as_json)
    console.print(terminal_table(report))
    if report.get("skipped"):
        for s in report["skipped"]:
            console.print(f"[yellow]skipped {s['name']}[/yellow]: {s['reason']}")
    for note in items_notes(report):
        console.print(note, markup=False, emoji=False)
    rec = report["recommendation"]
    if rec["name"]:
        console.print(f"[bold green]recommended: {rec['name']}[/bold green] — {rec['reason']}")
    else:
        console.print(f"[bold red]no recommendation[/bold red] — {rec['reason']}")
    console.print(f"report: {result.out / 'report.html'}\nreport.json: {result.out / 'report.json'}")
    if rec["name"]:
        console.print(f"bundle: {result.out / 'bundle'}  (edgewise run {result.out / 'bundle'} \"...\")")
    if report.get("search"):
        console.print(search_table(report))
    if as_json:
        print(json.dumps(report, indent=2, default=str))


def _split(text: str | None, sep: str | None = None) -> list[str] | None:
    """A comma list, or a ';' list when items carry their own commas (int4:block_size=64,symmetric=false)."""
    if not text:
        return None
    sep = sep or (";" if ";" in text else ",")
    return [t.strip() for t in text.split(sep) if t.strip()]
