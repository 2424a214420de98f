"""The `llamacpp` backend: runs a GGUF natively through llama-cpp-python (optional extra).

Only the KV-cached forward pass comes from llama.cpp. Token ids go in directly and the tokenizer is
the Hugging Face one rebuilt from the same GGUF, so prompts, chat templates and detokenisation match
the other backends byte for byte.

`precision` does not requantize: llama.cpp runs the GGUF's own type (Q4_1 for the packaged SmolLM2).
"native" and the CLI default "fp32" both mean "as shipped"; LoadedModel.precision then records the
real type, e.g. "Q4_1". Other llama.cpp types are made with `edgewise.compress.llamacpp_quant`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import time
from pathlib import Path

import numpy as np

from edgewise.errors import (
    BackendUnavailableError,
    EdgewiseError,
    ModelNotFoundError,
    PromptTooLongError,
    UnsupportedModelError,
)
from edgewise.formats import gguf_bits_per_weight, gguf_decode_weight_bytes
from edgewise.home import content_hash, edgewise_home
from edgewise.models.checks import check_gguf
from edgewise.models.source import CAUSAL_LM, TFLITE, ModelSource
from edgewise.runtime.backend import BACKENDS, LoadedModel
from edgewise.runtime.tokenizer import Tokenizer

# llama_cpp and transformers are imported inside the functions that use them: llama-cpp-python is an optional
# extra (the runtime loads without it, and says how to install it), and transformers costs seconds.

INSTALL_HINT = (
    "the llamacpp backend needs llama-cpp-python: run `make bench-setup` (an ~11-minute compile with this CPU's "
    "SIMD and without AMX, whose kernels die with \"Illegal instruction\" on some VMs)"
)
AS_SHIPPED = ("native", "fp32")
# llama.cpp allocates the whole KV cache up front, so cap the context instead of taking the
# model's trained length (8192 for SmolLM2: ~190 MB of f16 KV that a short chat never touches).
DEFAULT_N_CTX = 4096
N_BATCH = 512


# ggml's CPU threads meet at an OpenMP barrier after every graph node, hundreds of times per token, and libgomp's
# wait policy there decides the multi-thread decode speed. Measured on a 2-vCPU KVM guest, SmolLM2 Q4_1,
# llama-bench tg64 (benchmarks/llama_bench.py):
#   - quiet machine, 2 threads: PASSIVE (sleep at once) 25-29 tok/s, half of 1 thread's 55-67: each barrier
#     wakes a sleeping vCPU, which costs tens of microseconds. Spinning first: 79-86 with 300 spins, 81-100
#     with libgomp's default (300,000 spins, ~3 ms).
#   - busy machine (other processes on both cores): a long spin starves the thread being waited for; libgomp's
#     default fell to 6-9 tok/s (0.2-0.4 in an earlier test run) where PASSIVE kept 22-43.
# So spin briefly, then sleep. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. When torch was imported first,
# ggml binds to torch's libgomp (same soname), which read these variables at torch's import: so edgewise/__init__
# sets the same policy before anything can import torch, and this import only covers a process that set none.
SPIN_COUNT = "300"
_POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def import_llama_cpp():
    # libgomp reads these once, when llama_cpp loads it; restore the environment after, so torch or child
    # processes keep their own.
    ours = not any(v in os.environ for v in _POLICY_VARS)
    if ours:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        import llama_cpp
    except ImportError:
        raise BackendUnavailableError(INSTALL_HINT) from None
    finally:
        if ours:
            os.environ.pop("GOMP_SPINCOUNT", None)
    return llama_cpp


def gguf_path(source: ModelSource) -> Path:
    """The .gguf file behind a source: the path itself, extra["gguf_file"], or a folder's only GGUF."""
    p = Path(source.path)
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise ModelNotFoundError(f"{p}: no such GGUF file: check the path")
        return p
    if name := source.extra.get("gguf_file"):
        q = p / name if p.is_dir() else p.parent / name
        if q.is_file():
            return q
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
    raise UnsupportedModelError(
        f"{source.ref}: the llamacpp backend runs a single .gguf file; pass a GGUF, use "
        "--backend ort|torch, or make a GGUF with edgewise.compress.llamacpp_quant"
    )


def load_tokenizer(gguf: Path) -> Tokenizer:
    """The HF tokenizer for a GGUF. A tokenizer.json beside it wins; else it is rebuilt from the GGUF's
    metadata (10+ s through transformers) once, and cached under $EDGEWISE_HOME by content hash."""
    from transformers import AutoTokenizer

    if (gguf.parent / "tokenizer.json").is_file():
        return Tokenizer(AutoTokenizer.from_pretrained(str(gguf.parent)))
    cache = edgewise_home() / "tokenizers" / content_hash(gguf)[:20]
    if (cache / "tokenizer.json").is_file():
        return Tokenizer(AutoTokenizer.from_pretrained(str(cache)))
    try:
        hf = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:  # transformers raises many types for odd vocabularies
        raise UnsupportedModelError(
            f"{gguf}: cannot build a tokenizer from this GGUF ({type(e).__name__}: {e}); put the model's "
            "tokenizer.json beside it"
        ) from None
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    hf.save_pretrained(str(tmp))
    try:
        tmp.rename(cache)  # atomic: a concurrent loader either sees the whole folder or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return Tokenizer(hf)


class LlamaCppSession:
    """DecoderSession over one llama.cpp context (sequence 0)."""

    # Each session is a llama.cpp context of its own (its own KV cache and thread pool), so they decode at once.
    parallel = True

    def __init__(self, llm, llama_cpp, reopen=None):
        self.llm = llm
        self._lib = llama_cpp
        self._reopen = reopen  # () -> a new Llama over the same file and settings
        self.context_length: int = llm.n_ctx()
        self.n_vocab: int = llm.n_vocab()

    def fork(self) -> "LlamaCppSession":
        """A new context over the same GGUF. The file is memory-mapped, so the weights' pages are shared; the KV
        cache (n_ctx positions, allocated up front) is the session's own."""
        if self._reopen is None:
            raise EdgewiseError("this llama.cpp session was opened without a way to open another: load the model "
                                "with edgewise.runtime.load_model")
        return LlamaCppSession(self._reopen(), self._lib, self._reopen)

    def start(self, max_length: int) -> None:
        if max_length > self.context_length:
            raise PromptTooLongError(max_length, self.context_length)
        self.llm.reset()
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self.llm.ctx), True)

    def _check(self, ids: list[int]) -> list[int]:
        if not ids:
            raise EdgewiseError("append needs at least one token id")
        n = self.llm.n_tokens + len(ids)
        if n > self.context_length:
            raise PromptTooLongError(n, self.context_length)
        bad = [i for i in ids if not 0 <= int(i) < self.n_vocab]
        if bad:
            raise EdgewiseError(f"token id {bad[0]} is outside this model's vocabulary of {self.n_vocab}")
        return [int(i) for i in ids]

    def _logits_row(self, i: int) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(self.llm.ctx, i)
        if not ptr:
            raise RuntimeError(f"llama.cpp returned no logits for output row {i}")
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)).copy()

    def append(self, ids: list[int]) -> np.ndarray:
        # eval() drops KV entries past n_tokens, decodes in n_batch chunks and asks for logits of
        # each chunk's last token only.
        self.llm.eval(self._check(ids))
        # Llama.scores stays zero unless logits_all=True (which computes V logits per prompt
        # token); read the last output row from the context instead.
        return self._logits_row(-1)

    def append_all(self, ids: list[int]) -> np.ndarray:
        """append, with the logits (k, V) of every position: the batch asks llama.cpp for each row's logits, which
        Llama.eval() only does for a model opened with logits_all (V floats per prompt token, so not ours).
        Llama-cpp-python has no public call for it; its batch and context objects are private, so a version
        without them falls back to one append per token."""
        ids = self._check(ids)
        llm = self.llm
        if not (hasattr(llm, "_batch") and hasattr(llm, "_ctx") and len(ids) <= llm.n_batch):
            return np.stack([self.append([t]) for t in ids])
        self._lib.llama_memory_seq_rm(self._lib.llama_get_memory(llm.ctx), -1, llm.n_tokens, -1)
        n_past = llm.n_tokens
        llm._batch.set_batch(batch=ids, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past:n_past + len(ids)] = ids
        llm.n_tokens = n_past + len(ids)
        return np.stack([self._logits_row(i) for i in range(len(ids))])

    def rewind(self, n_tokens: int) -> None:
        if not 0 <= n_tokens <= self.llm.n_tokens:
            raise EdgewiseError(f"cannot rewind to {n_tokens} tokens: the cache holds {self.llm.n_tokens}")
        self._lib.llama_memory_seq_rm(self._lib.llama_get_memory(self.llm.ctx), -1, n_tokens, -1)
        self.llm.n_tokens = n_tokens

    def n_tokens(self) -> int:
        return int(self.llm.n_tokens)

    def close(self) -> None:
        self.llm.close()


def _file_type(llm, llama_cpp) -> str:
    ftype = llm.metadata.get("general.file_type")
    if ftype is None:
        return "native"
    name = llama_cpp.llama_ftype_name(int(ftype))
    return name.decode() if name else f"ftype{ftype}"


def _quiet():
    """Silence llama.cpp's C-level stderr logging (a failed load prints several lines)."""
    try:
        from llama_cpp._utils import suppress_stdout_stderr

        return suppress_stdout_stderr(disable=False)
    except ImportError:
        return contextlib.nullcontext()


def _open(llama_cpp, path: Path, n_ctx: int, n_threads: int):
    try:
        with _quiet():
            return llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_batch=N_BATCH, n_ubatch=N_BATCH,
                n_threads=n_threads, n_threads_batch=n_threads, logits_all=False, verbose=False,
            )
    except ValueError:  # "Failed to load model from file"; llama.cpp checks every tensor against the size
        check_gguf(path)  # raises CorruptModelError with the precise reason when the file is damaged
        raise UnsupportedModelError(f"{path}: llama.cpp cannot load this GGUF (an architecture or type this "
                                    "build lacks?): use --backend torch or ort") from None


class LlamaCppModel(LoadedModel):
    """A GGUF run as shipped by llama.cpp: the file itself says what it stores and what a decode step reads."""

    def _gguf(self) -> Path | None:
        files = [Path(f) for f in self.files]
        return files[0] if len(files) == 1 and files[0].suffix.lower() == ".gguf" else None

    def bits_per_weight(self) -> float | None:
        gguf = self._gguf()
        return gguf_bits_per_weight(gguf) if gguf is not None else None

    def weight_bytes_per_token(self) -> int | None:
        gguf = self._gguf()
        return gguf_decode_weight_bytes(gguf) if gguf is not None and self.decoder is not None else None


@BACKENDS.register("llamacpp")
def load_llamacpp(source: ModelSource, precision: str, threads: int | None) -> LoadedModel:
    if source.task != CAUSAL_LM:
        other = "litert" if source.task == TFLITE else "ort"
        raise UnsupportedModelError(f"{source.ref}: the llamacpp backend runs causal LMs only; use --backend {other}")
    if precision not in AS_SHIPPED:
        raise EdgewiseError(
            f"--precision {precision} with --backend llamacpp: llama.cpp runs the GGUF's own type; drop "
            "--precision (the default runs it as shipped), or quantize to a llama.cpp type first "
            "(edgewise.compress.llamacpp_quant)"
        )
    if threads is not None and threads < 1:
        raise EdgewiseError(f"threads must be at least 1, got {threads}")
    llama_cpp = import_llama_cpp()
    path = gguf_path(source)
    t0 = time.perf_counter()
    n_threads = threads or os.cpu_count() or 1
    n_ctx = int(source.extra.get("n_ctx", DEFAULT_N_CTX))
    llm = _open(llama_cpp, path, n_ctx, n_threads)
    n_train = int(llama_cpp.llama_model_n_ctx_train(llm.model))
    if 0 < n_train < llm.n_ctx():  # never offer more positions than the model was trained on
        llm.close()
        n_ctx = n_train
        llm = _open(llama_cpp, path, n_ctx, n_threads)
    session = LlamaCppSession(llm, llama_cpp, reopen=lambda: _open(llama_cpp, path, n_ctx, n_threads))
    tokenizer = load_tokenizer(path)
    if llm.n_vocab() < len(tokenizer.hf):
        raise UnsupportedModelError(
            f"{path}: tokenizer has {len(tokenizer.hf)} tokens but the model only {llm.n_vocab()}")
    return LlamaCppModel(
        source=source, backend="llamacpp", precision=_file_type(llm, llama_cpp), tokenizer=tokenizer,
        context_length=session.context_length, decoder=session, files=[str(path)],
        load_seconds=time.perf_counter() - t0,
    )
