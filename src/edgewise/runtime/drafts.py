"""Draft sources for speculative decoding (runtime/speculative.py), in one registry: DRAFTS.

A spec string names one, with options after a colon:
    lookup                      n-gram matching over the prompt and what was generated; no model
    lookup:ngram=3,k=8          the longest suffix tried (then shorter ones) and the most tokens proposed
    model:REF                   any Edgewise model ref or alias sharing the target's tokenizer
    model:REF,k=4,backend=ort,precision=int4,threads=2
    ...,adapt=no                always propose k (by default k is chosen in 0..k from measured speed)

`load_draft(spec, target)` parses and builds one (a model draft loads its model then: build it once and pass the
object for repeated generations). A draft proposes tokens through `open(capacity)`, a context manager that holds
what one generation needs (a model draft's own session, so the two KV caches move independently), and whose
`propose(history, k, pick)` returns a Proposal.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.registry import Registry
from edgewise.runtime.backend import PRECISIONS, LoadedModel
from edgewise.runtime.loader import load_model
from edgewise.runtime.session import TrackedSession

# (history so far, the draft's logits there) -> (token, the distribution it was drawn from or None for a point mass).
# The verify loop supplies it, so a draft proposes under the generation's own temperature, top-k, top-p.
Pick = Callable[[list[int], np.ndarray], tuple[int, "np.ndarray | None"]]
# Strings whose ids two tokenizers must agree on (with the vocabulary size) before one drafts for the other:
# prose, code, accents and symbols, CJK, and a chat-template marker that many families share.
PROBES = ("Hello, world! How are you today?", "def main():\n    return [x ** 2 for x in range(10)]",
          "The café costs 3.50 € (not $4).", "日本の首都は東京です。", "<|im_start|>user\n")


@dataclass
class Proposal:
    tokens: list[int]
    probs: list[np.ndarray] | None = None  # the draft's distribution at each token; None: point masses (q = 1)


def _options(text: str, allowed: dict[str, type], spec: str) -> dict:
    """`key=value,...` parsed against the allowed keys and their types; a one-line error otherwise."""
    out: dict = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or key not in allowed:
            raise EdgewiseError(f"draft {spec!r}: unknown option {part!r}: use {', '.join(k + '=' for k in allowed)}")
        try:
            out[key] = allowed[key](value)
        except ValueError:
            raise EdgewiseError(f"draft {spec!r}: {key} must be {allowed[key].__name__}, got {value!r}") from None
    return out


def boolean(value: str) -> bool:
    """yes/no, true/false, on/off, 1/0 (a spec option's flag)."""
    v = value.strip().lower()
    if v in ("yes", "true", "on", "1"):
        return True
    if v in ("no", "false", "off", "0"):
        return False
    raise ValueError(value)


def _positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise EdgewiseError(f"draft option {name} must be a positive integer, got {value!r}")


@dataclass
class LookupDraft:
    """Prompt lookup: find the latest earlier occurrence of the history's last `ngram` tokens (then shorter
    suffixes, down to one) and propose the up to `k` tokens that followed it. Pays where the output copies its
    input: summaries, rewrites, extraction, code edits."""

    ngram: int = 3
    k: int = 8
    adapt: bool = True  # k chosen in 0..k from measured speed (runtime.speculative.MeasuredK); False: always k

    def __post_init__(self):
        _positive("ngram", self.ngram)
        _positive("k", self.k)

    @contextlib.contextmanager
    def open(self, capacity: int) -> Iterator["LookupDraft"]:
        yield self  # no state beyond the history the verify loop passes

    def check(self, target: LoadedModel) -> None:
        pass  # any tokenizer: it proposes the target's own tokens

    def propose(self, history: list[int], k: int, pick: Pick | None = None) -> Proposal:
        h = np.asarray(history, dtype=np.int64)
        size = h.size
        for n in range(min(self.ngram, size - 1), 0, -1):
            tail, m = h[size - n:], size - n  # windows h[j:j+n] for j < m: each has a token after it
            hit = np.ones(m, dtype=bool)
            for i in range(n):
                hit &= h[i:i + m] == tail[i]
            found = np.flatnonzero(hit)
            if found.size:
                j = int(found[-1]) + n  # the latest match: nearest the text being written now
                return Proposal(h[j:j + k].tolist())
        return Proposal([])


@dataclass
class ModelDraft:
    """A smaller model of the same tokenizer proposes greedily (or by sampling, under sampling) from a session of
    its own. That session lives as long as the draft, so its cache keeps the common prefix between generations;
    two generations sharing one draft take turns on it."""

    model: LoadedModel
    k: int = 4
    adapt: bool = True  # as LookupDraft's
    _session: TrackedSession | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        _positive("k", self.k)
        if not isinstance(self.model, LoadedModel) or self.model.decoder is None:
            raise EdgewiseError("a model draft must be a causal LM loaded with edgewise.runtime.load_model")

    def check(self, target: LoadedModel) -> None:
        """Refuse a draft that tokenizes differently: its proposals would be other tokens than they seem."""
        a, b = self.model.tokenizer, target.tokenizer
        if a.vocab_size != b.vocab_size or any(a.encode(p) != b.encode(p) for p in PROBES):
            raise EdgewiseError(f"draft {self.model.name} does not share {target.name}'s tokenizer (vocabulary "
                                f"{a.vocab_size} vs {b.vocab_size}, or other ids for the same text): pick a draft "
                                "of the same family, or use --draft lookup")

    @contextlib.contextmanager
    def open(self, capacity: int) -> Iterator["_ModelProposer"]:
        if self._session is None:
            has_fork = getattr(self.model.decoder.engine, "fork", None) is not None
            self._session = self.model.session() if has_fork else self.model.decoder
        with self._session.lock:
            yield _ModelProposer(self._session, min(capacity, self.model.context_length))


class _ModelProposer:
    def __init__(self, session: TrackedSession, capacity: int):
        self.session, self.capacity = session, capacity

    def propose(self, history: list[int], k: int, pick: Pick) -> Proposal:
        k = min(k, self.capacity - len(history))
        if k < 1:
            return Proposal([])
        # sync keeps what the cache shares with the history (what this draft proposed and the model accepted) and
        # drops the rest: the draft's rewind past the first rejection.
        logits = self.session.sync(history, self.capacity)
        tokens, qs = [], []
        for i in range(k):
            tok, q = pick(history + tokens, logits)
            tokens.append(tok)
            qs.append(q)
            if i < k - 1:
                logits = self.session.append([tok])
        return Proposal(tokens, None if qs[0] is None else qs)


# A draft factory: (the spec's text after the colon, the target model, threads) -> a draft.
DraftFactory = Callable[[str, LoadedModel, "int | None"], object]
DRAFTS: Registry[DraftFactory] = Registry("draft source")


@DRAFTS.register("lookup")
def _lookup(text: str, target: LoadedModel, threads: int | None) -> LookupDraft:
    return LookupDraft(**_options(text, {"ngram": int, "k": int, "adapt": boolean}, f"lookup:{text}"))


@DRAFTS.register("model")
def _model(text: str, target: LoadedModel, threads: int | None) -> ModelDraft:
    ref, _, rest = text.partition(",")
    if not ref.strip():
        raise EdgewiseError("draft 'model:' names no model: use model:REF, e.g. model:qwen2.5-coder-0.5b")
    opts = _options(rest, {"k": int, "backend": str, "precision": str, "threads": int, "adapt": boolean},
                    f"model:{text}")
    return ModelDraft(_load(ref.strip(), opts.get("backend", target.backend), opts.get("precision", "auto"),
                            opts.get("threads", threads)), k=opts.get("k", 4), adapt=opts.get("adapt", True))


def _load(ref: str, backend: str, precision: str, threads: int | None) -> LoadedModel:
    if precision not in PRECISIONS:
        raise EdgewiseError(f"draft precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if threads is not None and threads < 1:
        raise EdgewiseError(f"draft threads must be a positive integer, got {threads!r}")
    return load_model(ref, backend, precision, threads)


def load_draft(draft, target: LoadedModel, threads: int | None = None):
    """A draft from a spec string (built now: a model draft loads its model) or a draft object, checked against
    the target's tokenizer; None stays None."""
    if draft is None:
        return None
    if isinstance(draft, str):
        name, _, text = draft.strip().partition(":")
        draft = DRAFTS.get(name.strip())(text, target, threads)
    if not (callable(getattr(draft, "open", None)) and isinstance(getattr(draft, "k", None), int)):
        raise EdgewiseError(f"draft must be a spec string ({', '.join(DRAFTS.names())}) or a draft object from "
                            "edgewise.runtime.drafts")
    draft.check(target)
    return draft
