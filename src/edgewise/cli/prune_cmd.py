"""`edgewise prune`: remove MLP neurons, query heads or blocks (structured), or zero single weights (unstructured)."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from edgewise.cli.app import app
from edgewise.cli.optimize_cmd import _quiet, _table_console
from edgewise.data import DEMO_TEXT, packaged_text
from edgewise.data.corpora import CORPORA
from edgewise.errors import EdgewiseError
from edgewise.outdir import check_out_dir
from edgewise.staging import staged_dir

err = Console(stderr=True)
# edgewise.compress is imported inside the functions: importing it imports every compression method (method
# discovery), and every command module loads when `edgewise` starts.
CALIB_WORD = "calib"  # --recover-data calib: recover on the calibration text (Recovery(data=None))


@app.command()
def prune(
    model: str = typer.Argument(..., help="Alias, path or hub id of a Llama-architecture causal LM."),
    method: str = typer.Option(..., "--method", "-m",
                               help="structured:mlp=0.25,heads=0.5,blocks=0.1,recover_steps=50 (recover_steps=0: no "
                                    "recovery), wanda:sparsity=0.5 or magnitude:sparsity=0.5."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Calibration text for the importance scores and "
                                                               "Wanda (default: a packaged Shakespeare scene)."),
    recover_data: list[str] = typer.Option([], "--recover-data",
                                           help="Recovery text: a file, corpus:NAME, or 'calib' for the calibration "
                                                "text (repeatable; structured only; default corpus:austen and "
                                                "corpus:fortunes)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Copy the pruned folder here (default: it stays "
                                                                 "in the Edgewise cache)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out folder."),
    threads: Optional[int] = typer.Option(None, "--threads"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON to stdout."),
) -> None:
    """Prune a model by importance (structured, then a short distillation) or by magnitude/Wanda (unstructured)."""
    from edgewise.compress import Calibration
    from edgewise.compress.prune import parse_prune
    from edgewise.compress.prune import prune as run_prune

    _quiet()
    config = parse_prune(method)
    if recover_data:
        config = with_recovery_data(config, recover_data)
    if threads is not None and threads < 1:
        raise EdgewiseError(f"--threads must be a positive integer, got {threads}")
    if out is not None:
        check_out_dir(out, force)  # before minutes of pruning and recovery, not after
    calibration = Calibration.from_file(calib) if calib else None
    result = run_prune(model, config, calibration=calibration, threads=threads, progress=err.is_terminal,
                       say=lambda m: err.print(m, style="dim", markup=False, soft_wrap=True))
    folder = copy_out(result.path, out, force) if out is not None else result.path
    console = _table_console(stderr=as_json)
    console.print(result_table(result, folder))
    console.print(f"measure it: {bench_hint(model, folder)}", markup=False, soft_wrap=True)
    if as_json:
        print(json.dumps({**result.as_dict(), "out": str(folder) if out is not None else None,
                          "cached": result.cached}, indent=2, default=str))


def with_recovery_data(config, entries: list[str]):
    """The config with its Recovery reading `entries` (files made absolute: the cache key must not depend on cwd)."""
    from edgewise.compress.prune import Structured

    if not isinstance(config, Structured):
        raise EdgewiseError("--recover-data applies to structured pruning only: Wanda and magnitude keep every "
                            "weight they do not zero and have no recovery step")
    if config.recovery is None:
        raise EdgewiseError("--recover-data conflicts with recover_steps=0 (no recovery): drop one of them")
    if CALIB_WORD in entries:
        if len(entries) > 1:
            raise EdgewiseError(f"--recover-data {CALIB_WORD} trains on the calibration text alone: pass it "
                                "without other files, or pass the calibration file itself among them")
        data = None
    else:
        data = []
        for e in entries:
            if e.startswith("corpus:"):
                CORPORA.get(e.split(":", 1)[1])  # unknown name -> a one-line error listing the known ones
                data.append(e)
            else:
                p = Path(e).expanduser().resolve()
                if not p.is_file():
                    raise EdgewiseError(f"--recover-data {e}: no such file (pass a text file, corpus:NAME or "
                                        f"{CALIB_WORD})")
                data.append(str(p))
        data = tuple(data)
    return dataclasses.replace(config, recovery=dataclasses.replace(config.recovery, data=data))


def copy_out(src: Path, out: Path, force: bool) -> Path:
    """Copy the cached folder to `out` through a staging folder beside it, so `out` is never half-written."""
    check_out_dir(out, force)
    out = out.expanduser().resolve()
    with staged_dir(out) as tmp:
        for f in Path(src).iterdir():
            if f.name.startswith("."):  # the cache's .complete marker
                continue
            # copyfile, not copy2: transformers writes safetensors 0600, the output folder is an ordinary one
            if f.is_dir():
                shutil.copytree(f, tmp / f.name, copy_function=shutil.copyfile)
            else:
                shutil.copyfile(f, tmp / f.name)
    return out


def _mb(n: int | None) -> str:
    return f"{n / 1e6:.2f} MB" if n is not None else "-"


def removed_text(result) -> str:
    r = result.removed
    parts = []
    if r.get("blocks"):
        parts.append(f"block{'s' if len(r['blocks']) > 1 else ''} {', '.join(map(str, r['blocks']))}")
    if r.get("mlp_width"):
        parts.append(f"MLP width {r['mlp_width'][0]} → {r['mlp_width'][1]} per block")
    if r.get("query_heads"):
        parts.append(f"query heads {r['query_heads'][0]} → {r['query_heads'][1]} per block")
    if result.sparsity:
        parts.append(f"{result.sparsity:.1%} of the block linears' weights zeroed (same shapes)")
    return "; ".join(parts) or "nothing"


def result_table(result, folder: Path):
    t = Table(title=f"{result.name}: {result.config.describe()}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("source", result.source)
    t.add_row("parameters", f"{result.params_before:,} → {result.params_after:,} ({result.param_ratio:.1%})")
    t.add_row("removed", removed_text(result))
    t.add_row("safetensors", _mb(result.size_bytes))
    if result.compressed_bytes is not None and result.dense_compressed_bytes:
        t.add_row("zlib-compressed", f"{_mb(result.compressed_bytes)} vs {_mb(result.dense_compressed_bytes)} dense "
                                     f"({result.compressed_bytes / result.dense_compressed_bytes:.0%}); dense "
                                     "runtimes gain no speed from zeros")
    rec = result.recovery
    if rec:
        loss = (f"loss {rec['first_loss']:.3f} → {rec['final_loss']:.3f}" if rec.get("final_loss") is not None
                else "no loss logged")
        t.add_row("recovery", f"{rec['steps']} distillation steps on {', '.join(map(str, rec['data']))}: {loss}, "
                              f"{rec['seconds']:.0f} s")
    elif hasattr(result.config, "recovery"):
        t.add_row("recovery", "none (recover_steps=0)")
    t.add_row("pruning time", f"{result.prune_seconds:.1f} s" + (" (cached)" if result.cached else ""))
    t.add_row("folder", str(folder))
    return t


def bench_hint(model: str, folder: Path) -> str:
    # The packaged Hamlet scene is neither the default calibration text nor the default recovery data.
    return (f"edgewise bench {shlex.quote(model + '@torch')} {shlex.quote(str(folder) + '@torch')} "
            f"--task perplexity:{shlex.quote(str(packaged_text(DEMO_TEXT)))}")
