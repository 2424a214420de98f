"""Export a Llama causal LM to a KV-cached .tflite for the litert backend (`edgewise export-litert`).

The conversion runs in the converter's own venv (litert-torch pulls jax and pins older pydantic/anyio, so it never
enters the main one): this module runs `litert_convert_script.py` there as a subprocess and stages its output.

    folder = export_litert_lm("models/keyboard-student", "out/ks", LiteRTExport(quantize="int8"))
    load_model(folder, backend="litert")   # a LoadedModel with a decoder (edgewise.runtime.litert_lm)
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgewise.errors import BackendUnavailableError, EdgewiseError, UnsupportedModelError
from edgewise.outdir import check_out_dir
from edgewise.staging import staged_dir

META = "litert_lm.json"  # written beside the .tflite; the litert backend reads it

SCRIPT = Path(__file__).with_name("litert_convert_script.py")
# `make litert-converter` builds it in the checkout; EDGEWISE_LITERT_PYTHON points anywhere else.
CONVERTER_VENV = Path(__file__).resolve().parents[3] / ".bench" / "litert-venv"
QUANTIZE = ("none", "fp16", "int8")


@dataclass(frozen=True)
class LiteRTExport:
    """quantize: none (fp32), fp16 (weights only) or int8 (dynamic range: int8 weights per channel);
    max_len: KV cache length (None: the model's context); chunks: token counts that get their own signature."""

    quantize: str = "none"
    max_len: int | None = None
    chunks: tuple[int, ...] = (1, 4, 16)

    def __post_init__(self):
        if self.quantize not in QUANTIZE:
            raise EdgewiseError(f"--quantize {self.quantize!r}: choose one of {', '.join(QUANTIZE)}")
        if self.max_len is not None and self.max_len < 1:
            raise EdgewiseError(f"--max-len must be a positive integer, got {self.max_len}")
        if 1 not in self.chunks or any(c < 1 for c in self.chunks):
            raise EdgewiseError(f"chunks must be positive and include 1, got {list(self.chunks)}")


def converter_python() -> Path:
    """The converter venv's python, or a one-line error that says how to build it."""
    env = os.environ.get("EDGEWISE_LITERT_PYTHON")
    py = Path(env) if env else CONVERTER_VENV / "bin" / "python"
    if not py.is_file():
        where = f"EDGEWISE_LITERT_PYTHON={env}" if env else str(CONVERTER_VENV)
        raise BackendUnavailableError(f"the .tflite converter is not installed ({where}): run `make litert-converter`")
    return py


def export_litert_lm(src, out: str | Path, config: LiteRTExport | None = None, force: bool = False,
                     timeout: float | None = None) -> Path:
    """Convert the causal LM at `src` (an alias, path or ModelSource of a Llama) into the folder `out`:
    model.tflite, litert_lm.json and the tokenizer files. Returns `out`."""
    from edgewise.export.hf_folder import hf_folder_for
    from edgewise.models import ModelSource, load
    from edgewise.models.source import CAUSAL_LM

    config = config or LiteRTExport()
    out = Path(out)
    check_out_dir(out, force)
    py = converter_python()
    source = src if isinstance(src, ModelSource) else load(str(src))
    if source.task != CAUSAL_LM or source.arch != "llama":
        raise UnsupportedModelError(f"{source.ref}: export-litert converts Llama causal LMs only "
                                    f"(this is a {source.arch or source.kind} {source.task})")
    folder = hf_folder_for(source)
    with staged_dir(out) as tmp:
        cmd = [str(py), str(SCRIPT), "--src", str(folder), "--out", str(tmp), "--quantize", config.quantize,
               "--chunks", ",".join(str(c) for c in sorted(set(config.chunks)))]
        if config.max_len:
            cmd += ["--max-len", str(config.max_len)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgewiseError(f"the .tflite conversion of {source.ref} took over {timeout:.0f} s") from None
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit code {done.returncode}"
            raise EdgewiseError(f"the .tflite conversion of {source.ref} failed: {why}")
    return out


def export_report(out: Path) -> dict:
    """What an export wrote: size, weights and the logit checks the script measured."""
    meta = json.loads((Path(out) / META).read_text())
    size = (Path(out) / meta["model_file"]).stat().st_size
    params = n_params(meta.get("spec") or {})
    return {"out": str(out), "bytes": size, "bits_per_weight": round(8 * size / params, 2) if params else None,
            "weights": meta["weights"], "max_len": meta["max_len"], "signatures": meta["signatures"],
            **meta.get("check", {})}


def n_params(s: dict) -> int:
    """Parameters of the exported Llama, from the json's `spec` (0 when it has none)."""
    if not s:
        return 0
    attn = s["dim"] * s["head_dim"] * (2 * s["n_heads"] + 2 * s["n_kv"])
    block = attn + 3 * s["dim"] * s["ffn"] + 2 * s["dim"]
    return s["vocab"] * s["dim"] * (1 if s["tied"] else 2) + s["n_layers"] * block + s["dim"]
