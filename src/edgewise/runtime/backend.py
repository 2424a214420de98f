"""The contract between the generation API and an engine, and the backend registry.

A backend turns a ModelSource into a LoadedModel. For a causal LM it supplies a DecoderSession: a
stateful KV-cached forward pass, which LoadedModel wraps in a TrackedSession (session.py) that records the
token ids in the cache. All sampling, detokenisation, stop handling and timing live above it in `api.py`,
once, so every engine behaves the same.

A model holds weights; a conversation's KV cache is a session the caller owns: `model.session()` makes one (the
engine's `fork()`: an empty cache over the same weights), and the generation API takes it as `session=`.
`model.decoder` is the model's own session, behind `model.lock`, for calls that pass none.

Optional capabilities are methods a loaded model may have, found with `capability(model, name)`:
    bits_per_weight() -> float | None           stored bits per weight of the engine files
    weight_bytes_per_token() -> int | None      weight bytes one decode step reads (the bandwidth figure)
A backend adds them on its own LoadedModel subclass; a consumer never branches on `model.backend`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.models.source import ModelSource
from edgewise.registry import Registry
from edgewise.runtime.session import TrackedSession
from edgewise.runtime.tokenizer import Tokenizer

# "gguf": a GGUF computed with its own quantized blocks (export.gguf_transcode), int8 activations; "gguf-exact":
# the same blocks in fp32 compute, whose logits do not depend on how many tokens one pass appends (int8 activation
# rounding amplifies the last-bit differences between a k-row and a one-row pass, so under speculative decoding
# only gguf-exact keeps greedy output token for token; it is ~12x slower per step on SmolLM2); "auto": the
# backend's natural choice for the source (a GGUF runs as shipped: transcoded on ort, native on llamacpp; anything
# else fp32).
PRECISIONS = ("fp32", "int8", "int4", "gguf", "gguf-exact", "auto")


class DecoderSession(Protocol):
    context_length: int

    def start(self, max_length: int) -> None:
        """Begin a new sequence of at most max_length tokens (prompt + generated); drops the KV cache."""

    def append(self, ids: list[int]) -> np.ndarray:
        """Run the model over new tokens, extend the KV cache, return the last position's logits (V,)."""

    def append_all(self, ids: list[int]) -> np.ndarray:
        """Like append, but return the logits (k, V) of all k appended positions, in one pass (optional:
        TrackedSession falls back to k single appends). Speculative decoding verifies proposals with it."""

    def rewind(self, n_tokens: int) -> None:
        """Keep only the first n_tokens of the KV cache (for reusing a shared prefix)."""

    def n_tokens(self) -> int:
        """Tokens currently in the KV cache."""

    def fork(self) -> "DecoderSession":
        """Another session over the same weights with an empty KV cache of its own (optional: without it a
        model has only its own session). `parallel` (class attribute) says whether two of them may compute at
        the same time; False means their forward passes take turns on one engine lock."""


class EncoderSession(Protocol):
    def hidden_states(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                      token_type_ids: np.ndarray) -> np.ndarray:
        """Last hidden states (N, T, D) for a padded batch."""


class ModelFiles:
    """What every loaded model, text or graph, says about itself from its `source` and `files`."""

    @property
    def name(self) -> str:
        return self.source.name

    def size_bytes(self) -> int:
        return sum(os.path.getsize(f) for f in self.files if os.path.exists(f))


@dataclass
class LoadedModel(ModelFiles):
    source: ModelSource
    backend: str
    precision: str
    tokenizer: Tokenizer
    context_length: int
    decoder: DecoderSession | None = None
    encoder: EncoderSession | None = None
    files: list[str] = field(default_factory=list)  # engine files actually loaded (for size reports)
    load_seconds: float = 0.0
    # Guards the model's own session (`decoder`) and the encoder; a session from session() has a lock of its own.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        if self.decoder is not None and not isinstance(self.decoder, TrackedSession):
            self.decoder = TrackedSession(self.decoder, lock=self.lock, owner=self)

    @property
    def is_decoder(self) -> bool:
        return self.decoder is not None

    @property
    def parallel_sessions(self) -> bool:
        """Whether two sessions of this model compute at the same time (else their forward passes take turns)."""
        return self.decoder is not None and bool(getattr(self.decoder.engine, "parallel", False))

    def session(self) -> TrackedSession:
        """A new caller-owned session: an empty KV cache over this model's weights, for one conversation.

        Pass it as `session=` to generate_step / stream_generate / generate / forward_logits; it keeps the tokens
        it holds, so the next call with a prompt that extends them computes only the new tokens.
        """
        if self.decoder is None:
            raise EdgewiseError(f"{self.name} is an encoder: it has no KV cache to hold a session; load a causal LM")
        fork = getattr(self.decoder.engine, "fork", None)
        if fork is None:
            raise EdgewiseError(f"the {self.backend} backend holds one session per model: call without session=")
        return TrackedSession(fork(), owner=self)


# What a capability raises when the files it reads cannot say: gone or unreadable (OSError), or a header without
# the key it looks for (KeyError). Anything else, our own EdgewiseError included, is a bug to see, not a None.
CAPABILITY_MISSING = (OSError, KeyError)


def capability(model, name: str, default=None):
    """Call an optional capability method of a loaded model (`bits_per_weight`, ...); `default` when it has none
    or its files cannot say (missing, unreadable)."""
    fn = getattr(model, name, None)
    if not callable(fn):
        return default
    try:
        value = fn()
    except CAPABILITY_MISSING:
        return default
    return default if value is None else value


# A backend factory: (source, precision, threads) -> LoadedModel.
BackendFactory = Callable[[ModelSource, str, "int | None"], LoadedModel]
BACKENDS: Registry[BackendFactory] = Registry("backend")

__all__ = ["BACKENDS", "PRECISIONS", "CAPABILITY_MISSING", "DecoderSession", "EncoderSession", "LoadedModel",
           "ModelFiles", "Tokenizer", "capability"]
