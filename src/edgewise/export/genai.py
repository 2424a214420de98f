"""Causal LMs to ONNX through onnxruntime-genai's model builder (fp32, int8, int4), cached by content hash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.export.hf_folder import hf_folder_for
from edgewise.models.source import ModelSource

# Builder extra options per precision. int4 keeps int8 compute (accuracy_level 4): level 1 was measured
# here at 59 vs 86 tokens/s for the same perplexity (SmolLM2-135M, 2 threads, 64 greedy tokens, 2026-11-27 Xeon). int4 also quantizes an untied token embedding
# (GatherBlockQuantized), as llama.cpp does: left alone, the builder keeps it in fp32, which for Qwen2.5 0.5B is
# 545 of the file's 834 MB (a tied embedding already reads the quantized head).
DEFAULT_EXTRA = {"fp32": {}, "int8": {}, "int4": {"accuracy_level": "4", "op_types_to_quantize": "MatMul/Gather"}}


def build_genai(source: ModelSource, precision: str, extra_options: dict | None = None) -> Path:
    if precision not in DEFAULT_EXTRA:
        raise EdgewiseError(f"unknown precision {precision!r}: choose fp32, int8 or int4")
    extra = {**DEFAULT_EXTRA[precision], **(extra_options or {})}
    hf = hf_folder_for(source)

    def build(out: Path) -> None:
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf), "-o", str(out),
               "-p", precision, "-e", "cpu", "-c", str(out / ".builder-cache")]
        if extra:
            cmd += ["--extra_options", *[f"{k}={v}" for k, v in extra.items()]]
        # The builder must never reach for the hub: it reads the local folder only.
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        (out / "builder.log").write_text(proc.stdout[-20000:] + "\n--- stderr ---\n" + proc.stderr[-20000:])
        if proc.returncode != 0 or not (out / "genai_config.json").is_file():
            tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or ["no output"]
            raise EdgewiseError(f"onnxruntime-genai builder failed for {source.ref} at {precision}: {tail[0][:200]} "
                                "(set EDGEWISE_DEBUG=1 and see builder.log)")
        shutil.rmtree(out / ".builder-cache", ignore_errors=True)

    return cached_build("genai", hf, {"precision": precision, "extra": extra}, build)
