"""What a model reference resolves to: a local, validated description that every backend reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgewise.models.kinds import ModelTask, SourceFormat, parse_enum
from edgewise.registry import Registry

# What a model does decides which runtime path serves it (short names for the ModelTask members).
CAUSAL_LM = ModelTask.CAUSAL_LM
ENCODER = ModelTask.ENCODER
TFLITE = ModelTask.TFLITE


@dataclass(frozen=True)
class ModelSource:
    ref: str  # what the user typed
    kind: SourceFormat  # the weights' file format (a packaged model or a bundle reports its inner file's)
    path: Path  # the file or folder holding the weights
    task: ModelTask
    name: str
    arch: str | None = None
    # kind-specific details, e.g. {"gguf_file": ...} or a bundle's manifest
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        # Resolvers (a plugin's too) may pass the bare strings; store the enum members.
        object.__setattr__(self, "kind", parse_enum(SourceFormat, self.kind, "model format"))
        object.__setattr__(self, "task", parse_enum(ModelTask, self.task, "model task"))


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
