"""The local runtime: load a model on a backend, then generate_step -> stream_generate -> generate, or embed."""

from __future__ import annotations

from edgewise.runtime.api import embed, forward_logits, generate, generate_step, prompt_ids, stream_generate
# Backends register on import; BACKENDS imports them (edgewise.plugins) on its first lookup.
from edgewise.runtime.backend import BACKENDS, PRECISIONS, LoadedModel
from edgewise.runtime.batch import batch_pays, generate_many
from edgewise.runtime.drafts import DRAFTS, load_draft
from edgewise.runtime.loader import DEFAULT_BACKEND, default_precision, load_model
from edgewise.runtime.sampling import make_logits_processors, make_sampler
from edgewise.runtime.session import TrackedSession
from edgewise.runtime.tokenizer import Tokenizer
from edgewise.runtime.types import DraftStats, GenerationConfig, GenerationResponse, GenerationResult


__all__ = ["load_model", "generate", "stream_generate", "generate_step", "forward_logits", "embed", "prompt_ids",
           "make_sampler", "make_logits_processors", "GenerationConfig", "GenerationResponse", "GenerationResult",
           "LoadedModel", "TrackedSession", "Tokenizer", "BACKENDS", "PRECISIONS", "DEFAULT_BACKEND", "default_precision",
           "load_draft", "DRAFTS", "DraftStats", "generate_many", "batch_pays"]
