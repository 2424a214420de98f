"""Model sources: `load(ref)` turns whatever the user names into a validated local ModelSource.

A reference is a packaged alias (`smollm2-135m`), a path (HF folder, .gguf, .onnx, .tflite, bundle),
or a Hugging Face hub id (`org/name`). Every failure is one EdgewiseError line naming the fix.
"""

from __future__ import annotations

from pathlib import Path

from edgewise.errors import ModelNotFoundError
from edgewise.models.files import resolve_path
from edgewise.models.kinds import ModelRole, ModelTask, SourceFormat
from edgewise.models.source import CAUSAL_LM, ENCODER, RESOLVE_ORDER, RESOLVERS, TFLITE, ModelSource, register_resolver

_PATHLIKE_SUFFIXES = (".gguf", ".onnx", ".tflite", ".safetensors", ".bin", ".json")


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or ref.lower().endswith(_PATHLIKE_SUFFIXES) or Path(ref).exists()


# Resolvers register in priority order: aliases, then paths, then hub ids.
from edgewise.models import packaged as _packaged  # noqa: E402


@register_resolver("path", claims=_looks_like_path)
def _resolve_local(ref: str) -> ModelSource:
    return resolve_path(Path(ref).expanduser(), ref)


from edgewise.models import hub as _hub  # noqa: E402,F401


def load(ref: str | Path) -> ModelSource:
    """Resolve a model reference to a validated ModelSource (no weights are loaded yet)."""
    ref = str(ref)
    for name in RESOLVE_ORDER:
        resolver = RESOLVERS.get(name)
        if resolver.claims(ref):
            return resolver.resolve(ref)
    raise ModelNotFoundError(
        f"unknown model {ref!r}: use a packaged alias ({', '.join(_packaged.PACKAGED)}), a local path, "
        "or a hub id like org/name"
    )


__all__ = ["load", "resolve_path", "ModelSource", "SourceFormat", "ModelTask", "ModelRole", "CAUSAL_LM", "ENCODER", "TFLITE"]
