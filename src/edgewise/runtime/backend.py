"""The contract between the generation API and an engine, and the backend registry.

A backend turns a ModelSource into a LoadedModel. For a causal LM it supplies a DecoderSession: a
stateful KV-cached forward pass. All sampling, detokenisation, stop handling and timing live above
it in `api.py`, once, so every engine behaves the same.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from edgewise.models.source import ModelSource
from edgewise.registry import Registry

PRECISIONS = ("fp32", "int8", "int4")


class DecoderSession(Protocol):
    context_length: int

    def start(self, max_length: int) -> None:
        """Begin a new sequence of at most max_length tokens (prompt + generated); drops the KV cache."""

    def append(self, ids: list[int]) -> np.ndarray:
        """Run the model over new tokens, extend the KV cache, return the last position's logits (V,)."""

    def rewind(self, n_tokens: int) -> None:
        """Keep only the first n_tokens of the KV cache (for reusing a shared prefix)."""

    def n_tokens(self) -> int:
        """Tokens currently in the KV cache."""


class EncoderSession(Protocol):
    def hidden_states(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                      token_type_ids: np.ndarray) -> np.ndarray:
        """Last hidden states (N, T, D) for a padded batch."""


class Tokenizer:
    """A thin wrapper over a Hugging Face tokenizer: the one tokenizer every backend shares."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        eos = set()
        for tid in (getattr(hf_tokenizer, "eos_token_id", None),):
            if isinstance(tid, int):
                eos.add(tid)
        self.eos_ids: set[int] = eos

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.hf.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.hf, "chat_template", None))

    def chat_ids(self, messages: list[dict]) -> list[int]:
        text = self.hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.encode(text)

    def token_str(self, tid: int) -> str:
        return self.hf.decode([tid], skip_special_tokens=False)


@dataclass
class LoadedModel:
    source: ModelSource
    backend: str
    precision: str
    tokenizer: Tokenizer
    context_length: int
    decoder: DecoderSession | None = None
    encoder: EncoderSession | None = None
    files: list[str] = field(default_factory=list)  # engine files actually loaded (for size reports)
    load_seconds: float = 0.0
    # A session holds one KV cache: one generation at a time per loaded model.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def is_decoder(self) -> bool:
        return self.decoder is not None

    def size_bytes(self) -> int:
        import os

        return sum(os.path.getsize(f) for f in self.files if os.path.exists(f))


# A backend factory: (source, precision, threads) -> LoadedModel.
BackendFactory = Callable[[ModelSource, str, "int | None"], LoadedModel]
BACKENDS: Registry[BackendFactory] = Registry("backend")
