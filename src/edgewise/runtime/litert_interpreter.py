"""Opening a .tflite with LiteRT: shared by the generic graph backend and the causal-LM loader."""

from __future__ import annotations

import os
from pathlib import Path

from edgewise.errors import BackendUnavailableError, CorruptModelError, EdgewiseError, UnsupportedModelError
from edgewise.models.checks import check_tflite

INSTALL_HINT = "the litert backend needs LiteRT: run `pip install -e .[litert]` (PyPI ai-edge-litert)"


def import_interpreter():
    try:  # an optional extra: imported here, so the runtime loads without it and says how to install it
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise BackendUnavailableError(INSTALL_HINT) from None
    return Interpreter


def open_interpreter(path: Path, threads: int | None):
    """A LiteRT interpreter over a checked .tflite, tensors allocated; one-line errors for what cannot load."""
    Interpreter = import_interpreter()
    if not path.is_file():
        raise EdgewiseError(f"{path}: no such file")
    check_tflite(path)
    try:
        it = Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 1)
    except ValueError as e:  # LiteRT's flatbuffer verifier: truncated or corrupt file
        raise CorruptModelError(f"{path}: corrupt or truncated .tflite ({e}): re-download or re-export it") from None
    try:
        it.allocate_tensors()
    except RuntimeError as e:  # unresolved custom ops, unsupported op versions
        first = str(e).strip().splitlines()[0]
        raise UnsupportedModelError(f"{path}: LiteRT cannot prepare this model ({first}); it needs ops "
                                    "that plain LiteRT lacks (e.g. MediaPipe custom ops)") from None
    return it
