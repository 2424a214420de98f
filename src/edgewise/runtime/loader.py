"""Loading a model on a backend: `load_model` and what `precision="auto"` means. Its own module, below api.py and
drafts.py, so that a model draft loads its model the way every other caller does (the package's __init__ imports
api, which imports drafts: drafts cannot import the package back)."""

from __future__ import annotations

from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.models import ModelSource
from edgewise.models import load as load_source
from edgewise.models.kinds import SourceFormat
from edgewise.runtime.backend import BACKENDS, PRECISIONS, LoadedModel

DEFAULT_BACKEND = "ort"


def default_precision(source: ModelSource, backend: str) -> str:
    """What `precision="auto"` means: a GGUF keeps its own weights (transcoded on ort), everything else is fp32."""
    if source.kind == SourceFormat.GGUF and backend == "ort":
        return "gguf"
    return "fp32"


def load_model(ref: str | Path | ModelSource, backend: str = DEFAULT_BACKEND, precision: str = "fp32",
               threads: int | None = None) -> LoadedModel:
    """Resolve `ref` and load it on `backend` at `precision` (exporting/quantizing once, then cached)."""
    if precision not in PRECISIONS:
        raise EdgewiseError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise EdgewiseError(f"--threads must be a positive integer, got {threads!r}")
    source = ref if isinstance(ref, ModelSource) else load_source(ref)
    if precision == "auto":
        precision = default_precision(source, backend)
    return BACKENDS.get(backend)(source, precision, threads)
