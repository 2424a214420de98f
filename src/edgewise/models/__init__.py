"""Model sources: `load(ref)` turns whatever the user names into a validated local ModelSource.

A reference is a packaged alias (`smollm2-135m`), a path (HF folder, .gguf, .onnx, .tflite, bundle),
or a Hugging Face hub id (`org/name`). Every failure is one EdgewiseError line naming the fix.
"""

from __future__ import annotations

from pathlib import Path

from edgewise.errors import ModelNotFoundError
from edgewise.models import files
from edgewise.models.source import CAUSAL_LM, ENCODER, RESOLVE_ORDER, RESOLVERS, TFLITE, ModelSource, register_resolver

_FILE_RESOLVERS = {".gguf": "resolve_gguf", ".onnx": "resolve_onnx", ".tflite": "resolve_tflite"}
_PATHLIKE_SUFFIXES = (".gguf", ".onnx", ".tflite", ".safetensors", ".bin", ".json")


def resolve_path(path: Path, ref: str) -> ModelSource:
    path = Path(path)
    if path.is_dir():
        return files.resolve_folder(path, ref)
    if path.is_file():
        fn = _FILE_RESOLVERS.get(path.suffix.lower())
        if fn:
            return getattr(files, fn)(path, ref)
        if path.name == "config.json":
            return files.resolve_hf_folder(path.parent, ref)
        if path.suffix == ".safetensors":
            return files.resolve_hf_folder(path.parent, ref)
        raise ModelNotFoundError(f"{path}: not a model file (expected .gguf, .onnx, .tflite or a model folder)")
    raise ModelNotFoundError(f"{path}: no such file or folder: check the path")


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


__all__ = ["load", "resolve_path", "ModelSource", "CAUSAL_LM", "ENCODER", "TFLITE"]
