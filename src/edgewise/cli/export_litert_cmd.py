"""`edgewise export-litert`: a Llama causal LM to a KV-cached .tflite that `edgewise run --backend litert` and the
keyboard load like any other model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from edgewise.cli.app import app

err = Console(stderr=True)
# edgewise.export.litert_lm is imported inside the command: every command module loads when `edgewise` starts.


@app.command("export-litert")
def export_litert(
    model: str = typer.Argument(..., help="Alias or path of a Llama causal LM (HF folder or GGUF)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write: model.tflite, litert_lm.json, tokenizer."),
    quantize: str = typer.Option("none", "--quantize", help="none (fp32) | fp16 (weights) | int8 (dynamic range)"),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="KV cache length (default: the model's context)."),
    chunks: str = typer.Option("1,4,16", "--chunks", help="Token counts that get their own signature (with 1)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON to stdout."),
) -> None:
    """Convert to .tflite in the converter venv (`make litert-converter`), checking the logits against torch."""
    from edgewise.errors import EdgewiseError
    from edgewise.export.litert_lm import LiteRTExport, converter_python, export_litert_lm, export_report

    try:
        sizes = tuple(int(c) for c in chunks.split(","))
    except ValueError:
        raise EdgewiseError(f"--chunks must be comma-separated integers, got {chunks!r}") from None
    config = LiteRTExport(quantize=quantize, max_len=max_len, chunks=sizes)
    converter_python()  # its one-line error before anything else
    if not as_json:
        err.print(f"[dim]converting {model} to .tflite ({quantize})…[/dim]")
    report = export_report(export_litert_lm(model, out, config, force=force))
    if as_json:
        print(json.dumps(report))
        return
    nan = float("nan")
    err.print(f"{report['out']}: {report['bytes'] / 1e6:.2f} MB, {report['weights']} weights "
              f"({report['bits_per_weight']:.2f} bits per weight), cache {report['max_len']} tokens; "
              f"max |logit diff| vs torch {report.get('max_abs_logit_diff', nan):.2g}, "
              f"top-1 agreement {report.get('top1_agreement', nan):.3f}", soft_wrap=True)
