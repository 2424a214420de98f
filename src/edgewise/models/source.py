"""What a model reference resolves to: a local, validated description that every backend reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgewise.registry import Registry

# What a model does decides which runtime path serves it.
CAUSAL_LM = "causal-lm"
ENCODER = "encoder"
TFLITE = "tflite"


@dataclass(frozen=True)
class ModelSource:
    ref: str  # what the user typed
    kind: str  # packaged | hf | gguf | onnx | genai | bundle | tflite
    path: Path  # the file or folder holding the weights
    task: str  # CAUSAL_LM | ENCODER | TFLITE
    name: str
    arch: str | None = None
    # kind-specific details, e.g. {"gguf_file": ...} or a bundle's manifest
    extra: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Resolver:
    """One way to turn a reference into a ModelSource. `claims` must be cheap and side-effect free."""

    claims: Callable[[str], bool]
    resolve: Callable[[str], ModelSource]


# Order matters: the first resolver that claims a reference wins (aliases before paths before hub ids).
RESOLVERS: Registry[Resolver] = Registry("model source")
RESOLVE_ORDER: list[str] = []


def register_resolver(name: str, claims: Callable[[str], bool]):
    def deco(fn: Callable[[str], ModelSource]):
        RESOLVERS.register(name)(Resolver(claims, fn))
        RESOLVE_ORDER.append(name)
        return fn

    return deco
