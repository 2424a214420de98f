"""Causal LMs on LiteRT: a .tflite from `edgewise export-litert`, with `litert_lm.json` and the tokenizer beside it.

The graph has one signature per chunk length T (`decode_1`, `decode_4`, ...), each mapping
(tokens (1, T), input_pos (T,), k_cache, v_cache (n_layers, max_len, n_kv, head_dim)) to
(logits (1, T, V), k_new, v_new (n_layers, T, n_kv, head_dim)); see edgewise/export/litert_convert_script.py.
The KV cache is two numpy arrays this module owns: each call writes the new rows at their positions, and the graph
attends to cache slot j only when j < input_pos[0], so a rewind is moving the position back.

The litert backend (litert_backend.py) sends a .tflite here when the json beside it names it; every other .tflite
stays a generic LiteRTModel graph.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgewise.errors import (CorruptModelError, EdgewiseError, ModelNotFoundError, PromptTooLongError,
                             UnsupportedModelError)
from edgewise.models.source import ModelSource
from edgewise.export.litert_lm import META, n_params
from edgewise.runtime.backend import LoadedModel
from edgewise.runtime.tokenizer import Tokenizer
from edgewise.runtime.litert_interpreter import open_interpreter

FORMAT = "edgewise-litert-lm"
VERSION = 1
INPUTS = ("input_pos", "k_cache", "tokens", "v_cache")
OUTPUTS = ("k_new", "logits", "v_new")
REEXPORT = "re-export it with `edgewise export-litert`"


@dataclass(frozen=True)
class LMMeta:
    """What litert_lm.json says about the graph beside it."""

    model_file: str
    weights: str  # fp32 | fp16 | int8
    max_len: int
    vocab_size: int
    n_layers: int
    n_kv_heads: int
    head_dim: int
    signatures: dict[str, int]  # signature name -> tokens per call
    n_params: int = 0

    @classmethod
    def read(cls, tflite: Path) -> "LMMeta | None":
        """The meta for this .tflite, or None when no edgewise json describes it (a plain graph)."""
        path = tflite.parent / META
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorruptModelError(f"{path}: not valid JSON ({e}): {REEXPORT}") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            return None
        if d.get("model_file") != tflite.name:
            return None  # it describes another file in this folder
        if int(d.get("version", 0)) > VERSION:
            raise UnsupportedModelError(f"{path}: format version {d.get('version')} is newer than this edgewise "
                                        f"reads ({VERSION}): upgrade edgewise or {REEXPORT}")
        try:
            spec = d.get("spec") or {}
            meta = cls(model_file=d["model_file"], weights=str(d["weights"]), max_len=int(d["max_len"]),
                       vocab_size=int(d["vocab_size"]), n_layers=int(d["n_layers"]), n_kv_heads=int(d["n_kv_heads"]),
                       head_dim=int(d["head_dim"]), signatures={str(k): int(v) for k, v in d["signatures"].items()},
                       n_params=n_params(spec))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptModelError(f"{path}: missing or malformed field ({e}): {REEXPORT}") from None
        if 1 not in meta.signatures.values():
            raise CorruptModelError(f"{path}: no one-token signature among {sorted(meta.signatures)}: {REEXPORT}")
        return meta


def check_precision(meta: LMMeta, precision: str, where: Path) -> None:
    """fp32 means "as shipped" (as for any .tflite); the weights' own precision is accepted too."""
    if precision not in ("fp32", "native", meta.weights):
        fix = (f"re-export with `edgewise export-litert SRC --quantize {precision}`" if precision == "int8"
               else "the litert export offers fp32, fp16 or int8 weights")
        raise EdgewiseError(f"{where} holds {meta.weights} weights and runs as shipped: drop --precision ({fix})")


class LiteRTDecoder:
    """DecoderSession over the exported graph: fixed-length signatures, a cache of our own."""

    # One interpreter holds one set of tensors: sessions keep their own KV arrays and take turns on it, call by call.
    parallel = False

    def __init__(self, interpreter, meta: LMMeta):
        self.context_length = meta.max_len
        self.vocab_size = meta.vocab_size
        self.runners = {T: interpreter.get_signature_runner(name) for name, T in meta.signatures.items()}
        self.chunks = sorted(self.runners)
        shape = (meta.n_layers, meta.max_len, meta.n_kv_heads, meta.head_dim)
        self.k = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self._n = 0
        self._turn = threading.Lock()  # shared by every fork: the interpreter runs one call at a time

    def fork(self) -> "LiteRTDecoder":
        twin = copy.copy(self)  # the same interpreter, runners and turn lock
        twin.k, twin.v, twin._n = np.zeros_like(self.k), np.zeros_like(self.v), 0
        return twin

    def start(self, max_length: int) -> None:
        if max_length > self.context_length:
            raise PromptTooLongError(max_length, self.context_length)
        self._n = 0  # stale rows stay: the graph never reads a slot at or past input_pos[0]

    def _plan(self, pos: int, n: int) -> int:
        """Signature length for the next call: the shortest that holds all n tokens and fits the cache (padded),
        else the longest that n fills."""
        fit = [T for T in self.chunks if T >= n and pos + T <= self.context_length]
        return min(fit) if fit else max(T for T in self.chunks if T <= n)

    def _forward(self, ids: list[int], every: bool) -> np.ndarray:
        if not ids:
            raise EdgewiseError("append needs at least one token id")
        if self._n + len(ids) > self.context_length:
            raise PromptTooLongError(self._n + len(ids), self.context_length)
        arr = np.asarray(ids, dtype=np.int64)
        if arr.min() < 0 or arr.max() >= self.vocab_size:
            bad = int(arr[(arr < 0) | (arr >= self.vocab_size)][0])
            raise EdgewiseError(f"token id {bad} is outside this model's vocabulary of {self.vocab_size}")
        rows, i = [], 0
        while i < len(ids):
            pos, n = self._n, len(ids) - i
            T = self._plan(pos, n)
            take = min(n, T)
            tokens = np.zeros((1, T), np.int32)
            tokens[0, :take] = arr[i:i + take]
            with self._turn:  # read the outputs before another session's call can overwrite them
                out = self.runners[T](tokens=tokens, input_pos=np.arange(pos, pos + T, dtype=np.int32),
                                      k_cache=self.k, v_cache=self.v)
                self.k[:, pos:pos + take] = out["k_new"][:, :take]
                self.v[:, pos:pos + take] = out["v_new"][:, :take]
                rows.append(np.array(out["logits"][0, :take] if every else out["logits"][0, take - 1:take]))
            self._n += take
            i += take
        return np.concatenate(rows) if every else rows[-1]

    def append(self, ids: list[int]) -> np.ndarray:
        return self._forward([int(t) for t in ids], every=False)[0].astype(np.float32, copy=False)

    def score(self, ids: list[int]) -> np.ndarray:
        """Logits at every position (T, V) from an empty cache."""
        self.start(len(ids))
        return self._forward([int(t) for t in ids], every=True).astype(np.float32, copy=False)

    def rewind(self, n_tokens: int) -> None:
        if not 0 <= n_tokens <= self._n:
            raise EdgewiseError(f"cannot rewind to {n_tokens} tokens: the cache holds {self._n}")
        self._n = n_tokens

    def n_tokens(self) -> int:
        return self._n


class LiteRTLM(LoadedModel):
    """A causal LM in a .tflite: bits per weight from the file against the parameter count in the json."""

    n_params: int = 0

    def bits_per_weight(self) -> float | None:
        return 8.0 * self.size_bytes() / self.n_params if self.n_params else None


def check_signatures(interpreter, meta: LMMeta, path: Path) -> None:
    sigs = interpreter.get_signature_list()
    for name in meta.signatures:
        got = sigs.get(name)
        if got is None or tuple(sorted(got["inputs"])) != INPUTS or tuple(sorted(got["outputs"])) != OUTPUTS:
            raise UnsupportedModelError(f"{path}: signature {name!r} does not match {META} "
                                        f"(found {sorted(sigs)}): {REEXPORT}")


def lm_tokenizer(folder: Path) -> Tokenizer:
    if not (folder / "tokenizer.json").is_file():
        raise ModelNotFoundError(f"{folder}: no tokenizer.json beside the .tflite: copy the source model's "
                                 f"tokenizer files in, or {REEXPORT}")
    return Tokenizer.from_folder(folder)


def load_litert_lm(source: ModelSource, path: Path, meta: LMMeta, precision: str, threads: int | None) -> LiteRTLM:

    check_precision(meta, precision, path)
    tok = lm_tokenizer(path.parent)
    if source.name == path.stem and path.name == meta.model_file:
        source = replace(source, name=path.parent.name)  # the export folder is the model, not "model"
    t0 = time.perf_counter()
    interpreter = open_interpreter(path, threads)
    check_signatures(interpreter, meta, path)
    lm = LiteRTLM(source, "litert", meta.weights, tok, meta.max_len, decoder=LiteRTDecoder(interpreter, meta),
                  files=[str(path)])
    lm.n_params = meta.n_params
    lm.load_seconds = time.perf_counter() - t0
    return lm
