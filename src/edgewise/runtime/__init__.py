"""The local runtime: load a model on a backend, then generate_step -> stream_generate -> generate, or embed."""

from __future__ import annotations

from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.models import ModelSource
from edgewise.models import load as load_source
from edgewise.runtime.api import embed, forward_logits, generate, generate_step, prompt_ids, stream_generate
# Backends register on import; BACKENDS imports them (edgewise.plugins) on its first lookup.
from edgewise.runtime.backend import BACKENDS, PRECISIONS, LoadedModel
from edgewise.runtime.sampling import make_logits_processors, make_sampler
from edgewise.runtime.session import TrackedSession
from edgewise.runtime.tokenizer import Tokenizer
from edgewise.runtime.types import GenerationConfig, GenerationResponse, GenerationResult

DEFAULT_BACKEND = "ort"


def default_precision(source: ModelSource, backend: str) -> str:
    """What `precision="auto"` means: a GGUF keeps its own weights (transcoded on ort), everything else is fp32."""
    if source.kind == "gguf" and backend == "ort":
        return "gguf"
    return "fp32"


def load_model(ref: str | Path | ModelSource, backend: str = DEFAULT_BACKEND, precision: str = "fp32",
               threads: int | None = None) -> LoadedModel:
    """Resolve `ref` and load it on `backend` at `precision` (exporting/quantizing once, then cached)."""
    if precision not in PRECISIONS:
        raise EdgewiseError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise EdgewiseError(f"--threads must be a positive integer, got {threads!r}")
    source = ref if isinstance(ref, ModelSource) else load_source(ref)
    if precision == "auto":
        precision = default_precision(source, backend)
    return BACKENDS.get(backend)(source, precision, threads)


__all__ = ["load_model", "generate", "stream_generate", "generate_step", "forward_logits", "embed", "prompt_ids",
           "make_sampler", "make_logits_processors", "GenerationConfig", "GenerationResponse", "GenerationResult",
           "LoadedModel", "TrackedSession", "Tokenizer", "BACKENDS"]
