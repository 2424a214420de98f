"""The keyboard engine: whole-word suggestions from any causal LM loaded by the runtime.

Per keystroke it
1. cuts the text where the current word starts (text.split_context),
2. syncs the decoder session to the context (`TrackedSession.sync`: keep the common prefix, append only the new
   tokens, normally the one word just finished), so a keystroke inside a word runs no forward pass for context,
3. runs the word search (search.py): a small best-first beam over tokens constrained by the typed prefix,
4. mixes in the count model (a Kneser-Ney word n-gram, ngram.py) and the user's own n-gram model, and returns the
   k most likely whole words.

It uses only the session contract (sync, append, rewind), so it runs the same on every backend, and shares the
session's record of its cache with generate() and any other engine on the same model.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from edgewise.apps.keyboard.count_model import CountModel
from edgewise.apps.keyboard.ngram import NgramModel
from edgewise.apps.keyboard.personal import PersonalStore, history_words
from edgewise.apps.keyboard.search import RELATIVE_FLOOR, ContextState, Expansion, WordSearch, expansion
from edgewise.apps.keyboard.text import Split, apply_case, split_context
from edgewise.apps.keyboard.vocab import TokenIndex
from edgewise.errors import EdgewiseError
from edgewise.numerics import log_softmax
from edgewise.runtime import load_model
from edgewise.runtime.api import text_model
from edgewise.runtime.backend import LoadedModel

log = logging.getLogger("edgewise.keyboard")
# Its own level, so a library that turns the root logger down to errors (onnxruntime's quantizers do) cannot
# silence a line saying what a fallback lost.
log.setLevel(logging.WARNING)


@dataclass(frozen=True)
class KeyboardConfig:
    """How hard the engine searches per keystroke.

    forwards_per_key bounds the model forward passes one keystroke may run, the context update included; it is
    the knob between keystroke savings and worst-case latency.
    """

    suggestions: int = 3
    first_tokens: int = 32  # best first tokens kept as hypotheses for a keystroke
    children: int = 4  # continuations kept per expanded hypothesis
    forwards_per_key: int = 2
    max_word_tokens: int = 4
    max_context_tokens: int = 128
    personal_weight: float = 0.5  # the user model's share once it has seen enough of the user's text
    # The count model's share, by how much of the history it has counts for: (unigram only, bigram history
    # seen, trigram history seen[, 4-gram history seen, ...]); a longer known history than the tuple names
    # takes its last share. An n-gram that has seen the exact phrase knows it better than a small LM; one that
    # has not is a unigram list. Tuned on held-out text (benchmarks/keyboard_mixture.py) for the
    # committed student: the better the LM, the less the counts get (0.2, 0.4, 0.6 for its first version).
    ngram_weights: tuple[float, ...] = (0.1, 0.3, 0.3)
    lm_candidates: int = 8  # words the LM search returns for the mixture, at least
    # Text put before every context window: a newline reads as "a paragraph starts here" to a model trained
    # on running text, which is what the window's start is (the start of the text, or of a sentence in it).
    context_start: str = "\n"

    def __post_init__(self):
        for name in ("suggestions", "first_tokens", "children", "max_word_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise EdgewiseError(f"keyboard {name} must be a positive integer, got {v!r}")
        if not isinstance(self.forwards_per_key, int) or self.forwards_per_key < 1:
            raise EdgewiseError("forwards_per_key must be at least 1 (the context update), "
                                f"got {self.forwards_per_key!r}")
        if not isinstance(self.max_context_tokens, int) or self.max_context_tokens < 8:
            raise EdgewiseError(f"max_context_tokens must be an integer >= 8, got {self.max_context_tokens!r}")
        if not 0.0 <= float(self.personal_weight) <= 1.0:
            raise EdgewiseError(f"personal_weight must be in [0, 1], got {self.personal_weight!r}")
        if not 2 <= len(self.ngram_weights) <= 5 or not all(0.0 <= float(w) <= 1.0 for w in self.ngram_weights):
            raise EdgewiseError("ngram_weights must be 2 to 5 shares in [0, 1] (unigram-only, bigram, trigram, ... "
                                f"history), got {self.ngram_weights!r}")
        if not isinstance(self.lm_candidates, int) or self.lm_candidates < 1:
            raise EdgewiseError(f"lm_candidates must be a positive integer, got {self.lm_candidates!r}")


@dataclass
class Suggestions:
    """One keystroke's answer, with what it cost."""

    words: list[str]
    probs: list[float]
    prefix: str  # the part of the word already typed
    latency_ms: float  # wall clock
    cpu_ms: float  # this thread's CPU time (load-independent)
    forwards: int  # model forward passes run for this keystroke


class KeyboardEngine:
    def __init__(self, model: LoadedModel, config: KeyboardConfig | None = None,
                 personal: PersonalStore | None = None, ngram: CountModel | None = None):
        if text_model(model, "any").decoder is None:
            raise EdgewiseError(f"{model.name} is an encoder: the keyboard needs a causal language model")
        self.model = model
        self.config = config or KeyboardConfig()
        self.personal = personal
        self.ngram = ngram
        self.tok = model.tokenizer
        self.index = TokenIndex(self.tok)
        self._start_ids = self.tok.encode(self.config.context_start) if self.config.context_start else []
        # A window of the text feeds the model; it starts at a word boundary and slides in jumps, so between
        # jumps the token sequence only grows and the KV cache is reused.
        self._stream = ""
        self._win_start = 0
        self._win_text = ""
        self._win_ids: list[int] = []
        self._incremental = "ByteLevel" in repr(getattr(getattr(self.tok.hf, "backend_tokenizer", None), "decoder", ""))
        limit = max(16, min(self.config.max_context_tokens, model.context_length - self.config.max_word_tokens - 2))
        self._max_ctx = limit
        # KV room a context plus the longest expanded path needs.
        self._room = min(limit + self.config.max_word_tokens + 4, model.context_length)
        self._states: OrderedDict[tuple[int, ...], ContextState] = OrderedDict()
        self._search = WordSearch(self.config, self.index, self.tok.encode, self._expand)

    # --- public API -----------------------------------------------------------------------------------
    def suggest(self, context: str, partial_word: str = "", k: int | None = None) -> list[str]:
        """The k most likely whole words: next words when partial_word is empty, else its completions."""
        return self.suggest_detailed(context, partial_word, k).words

    def suggest_detailed(self, context: str, partial_word: str = "", k: int | None = None,
                         exclude: frozenset[str] | set[str] = frozenset()) -> Suggestions:
        """suggest() with probabilities and costs. `exclude` (lower-case words) are never offered: a keyboard
        need not re-offer, within one word, a suggestion the user already passed over."""
        k = self.config.suggestions if k is None else k
        if not isinstance(k, int) or k < 1:
            raise EdgewiseError(f"k must be a positive integer, got {k!r}")
        t0, c0 = time.perf_counter(), time.thread_time()
        split = split_context(context, partial_word)
        k_search = k + len(exclude)
        with self.model.lock:
            state, forwards = self._state_for(split.committed)
            k_lm = max(k_search, self.config.lm_candidates) if self.ngram is not None else k_search
            scored, forwards = self._search.run(state, split, k_lm, forwards)
        scored = self._mix_counts(scored, split, k_search)
        scored = self._personalise(scored, split, k_search)
        words, probs, seen = [], [], set()
        ranked = sorted(scored.items(), key=lambda kv: -kv[1][0])
        floor = ranked[0][1][0] * RELATIVE_FLOOR if ranked else 0.0
        for low, (p, _best, variant) in ranked:
            if p < floor:
                break
            if split.prefix and low == split.prefix.lower():
                continue  # what is already typed: taking it costs what a space costs, so it wastes a slot
            shown = apply_case(variant, split.prefix, split.sentence_start)
            if shown in seen or shown.lower() in exclude:
                continue
            seen.add(shown)
            words.append(shown)
            probs.append(p)
            if len(words) == k:
                break
        return Suggestions(words, probs, split.prefix, (time.perf_counter() - t0) * 1000.0,
                           (time.thread_time() - c0) * 1000.0, forwards)

    def learn(self, context: str, word: str) -> None:
        """Teach the user model that `word` followed `context` (no-op without a personal store)."""
        if self.personal is not None and word:
            self.personal.learn(context, word)

    def size_bytes(self) -> int:
        """The LM and the count model on disk (the user's store is data, not model)."""
        return self.model.size_bytes() + (self.ngram.size_bytes() if self.ngram is not None else 0)

    # --- context and KV cache -------------------------------------------------------------------------
    def _window_ids(self, committed: str) -> list[int]:
        """Token ids of the window of `committed` the model reads, after the context-start ids."""
        s = self._win_start
        if len(committed) < s or committed[:s] != self._stream[:s] or len(committed) - s > 8 * self._max_ctx:
            s = self._boundary(committed, max(0, len(committed) - 4 * self._max_ctx))
            self._win_start, self._win_text, self._win_ids = s, "", []
        tail = committed[s:]
        if tail != self._win_text:
            old = self._win_text
            delta = tail[len(old):]
            if (self._incremental and old and tail.startswith(old) and not old[-1].isspace()
                    and len(delta) > 1 and delta[0] == " " and delta[1].isalpha()):
                # " word" after a non-space starts a new pre-token in byte-level BPE: earlier tokens cannot change.
                ids = self._win_ids + self.tok.encode(delta)
            else:
                ids = self.tok.encode(tail)
            budget = self._max_ctx - len(self._start_ids)
            while len(ids) > budget:
                # Slide the window: drop about half of it, cutting at a word boundary (one re-prefill).
                cut = self._boundary(tail, len(tail) - int(len(tail) * (budget / 2) / len(ids)))
                if cut <= 0 or cut >= len(tail):
                    ids = ids[-budget:]
                    break
                s += cut
                tail = committed[s:]
                ids = self.tok.encode(tail)
            self._win_start, self._win_text, self._win_ids = s, tail, ids
        self._stream = committed
        return self._start_ids + self._win_ids

    @staticmethod
    def _boundary(text: str, pos: int, look: int = 200) -> int:
        """A window start at or after pos: the first sentence start within `look` characters, else the first
        word start (0 stays 0)."""
        if pos <= 0:
            return 0
        word = None
        for i in range(pos, len(text)):
            if text[i - 1].isspace() and not text[i].isspace():
                if text[i - 1] == "\n" or i >= 2 and text[i - 2] in ".!?":
                    return i
                if word is None:
                    word = i
                if i - pos > look:
                    break
        return word if word is not None else len(text)

    def _state_for(self, committed: str) -> tuple[ContextState, int]:
        ids = self._window_ids(committed)
        if not ids:
            # No context start and an empty text: condition on a newline, the most neutral start we have.
            ids = self.tok.encode("\n")
        key = tuple(ids)
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state, 0
        state = ContextState(key, log_softmax(self.model.decoder.sync(ids, self._room)))
        self._states[key] = state
        while len(self._states) > 4:
            self._states.popitem(last=False)
        return state, 1

    def _expand(self, state: ContextState, path: tuple[int, ...]) -> Expansion:
        """One forward pass after `path` in this context (the cache is left holding the context only)."""
        dec = self.model.decoder
        dec.sync(list(state.ids), self._room, logits=False)
        logits = dec.append(list(path))
        dec.rewind(len(state.ids))
        exp = state.exp[path] = expansion(logits, self.index, self.config.children)
        return exp

    # --- the mixture ----------------------------------------------------------------------------------
    def _mix_counts(self, scored: dict, split: Split, k: int) -> dict:
        """(1 - w) P_lm + w P_ngram, w chosen by the longest history the n-gram has counts for. A word the LM
        search did not reach counts as 0 for the LM: it is below the search's k-th word, so small."""
        if self.ngram is None:
            return scored
        hist = history_words(split.committed, self.ngram.order - 1)
        w = float(self.config.ngram_weights[min(self.ngram.known_order(hist), len(self.config.ngram_weights) - 1)])
        if w <= 0.0:
            return scored
        counts = self.ngram.probabilities(hist, split.prefix, limit=max(8, 2 * k))
        return _mix(scored, counts, w, lambda word: self.ngram.display.get(word, word))

    # --- personalisation ------------------------------------------------------------------------------
    def _personalise(self, scored: dict, split: Split, k: int) -> dict:
        if self.personal is None:
            return scored
        context = split.committed
        lam = self.config.personal_weight * self.personal.confidence(context)
        if lam <= 0.0:
            return scored
        user = self.personal.probabilities(context, split.prefix, limit=max(8, 2 * k))
        return _mix(scored, user, lam, lambda w: self.personal.display(w) or w)


def _mix(scored: dict, other: dict[str, float], w: float, display) -> dict:
    """(1 - w) * scored + w * other over the union of their words; a word new to `scored` is shown as
    display(word)."""
    out = {word: [(1.0 - w) * e[0], e[1], e[2]] for word, e in scored.items()}
    for word, p in other.items():
        if word in out:
            out[word][0] += w * p
        else:
            out[word] = [w * p, 0.0, display(word)]
    return out


STUDENT = "keyboard-student"  # the shipped LM's folder, under models/
NGRAM = "keyboard-ngram"  # the shipped count model's folder, beside the LM's
FALLBACK_MODEL = "smollm2-135m"  # packaged with Edgewise, so the keyboard runs even without models/
# What the n-gram adds to the committed student: KSR of the mixture minus the student alone, on BENCHMARKS §5's six
# texts (benchmarks/keyboard_mixture.py, docs/keyboard-mixture-student3.json).
NGRAM_GAIN = "2.9-4.4 points"


def find_student() -> Path | None:
    """models/keyboard-student in the nearest folder above this package that has one (a source checkout)."""
    for root in Path(__file__).resolve().parents:
        cand = root / "models" / STUDENT
        if (cand / "config.json").is_file():
            return cand
    return None


def default_model_ref() -> str:
    """The distilled keyboard student when this checkout has it, else the packaged SmolLM2."""
    env = os.environ.get("EDGEWISE_KEYBOARD_MODEL")
    if env:
        return env
    student = find_student()
    return str(student) if student is not None else FALLBACK_MODEL


def default_ngram_ref(model_ref: str) -> str | None:
    """The count model that ships with a keyboard model: `keyboard-ngram/` beside its folder, if there is one."""
    env = os.environ.get("EDGEWISE_KEYBOARD_NGRAM")
    if env:
        return None if env.lower() == "none" else env
    folder = Path(model_ref)
    cand = folder.parent / NGRAM
    # A folder that is there but broken is loaded, so its error says so, instead of the LM quietly running alone.
    if folder.is_dir() and cand.is_dir():
        return str(cand)
    return None


def resolve_keyboard(model: str | None = None, ngram: str | None = "auto") -> tuple[str, str | None]:
    """(LM reference, count-model folder or None) for load_keyboard's arguments.

    Two fallbacks exist, and each logs one warning line saying what it lost: no student in this checkout
    (SmolLM2 runs instead), and no n-gram beside the LM with ngram="auto" (the LM runs alone). An explicit choice
    (a model, "none", an n-gram folder, the EDGEWISE_KEYBOARD_* variables) is not a fallback."""
    ref = model or default_model_ref()
    auto = ngram == "auto" and not os.environ.get("EDGEWISE_KEYBOARD_NGRAM")
    counts = default_ngram_ref(ref) if ngram == "auto" else (ngram if ngram and ngram != "none" else None)
    if model is None and ref == FALLBACK_MODEL and not os.environ.get("EDGEWISE_KEYBOARD_MODEL"):
        here = Path(__file__).resolve().parent
        mixed = "without the n-gram" if counts is None else f"mixed with {counts}"
        log.warning(f"keyboard: no distilled student (models/{STUDENT}/) in any folder above {here}; suggestions "
                    f"come from {FALLBACK_MODEL} {mixed}, and take far longer per keystroke "
                    "(choose a model with --model or EDGEWISE_KEYBOARD_MODEL)")
    elif auto and counts is None:
        folder = Path(ref)
        where = folder.parent / NGRAM if folder.is_dir() else f"{NGRAM}/ beside {ref} (only a model folder has one)"
        cost = f" (KSR {NGRAM_GAIN} lower, BENCHMARKS §5)" if folder.is_dir() and folder.name == STUDENT else ""
        log.warning(f"keyboard: n-gram model not found at {where}; suggestions come from the LM alone{cost}; "
                    "pass --ngram DIR (ngram=DIR) to mix one in, or --ngram none to choose the LM alone")
    return ref, counts


def load_keyboard(model: str | None = None, backend: str = "ort", precision: str = "fp32",
                  personal: PersonalStore | None = None, config: KeyboardConfig | None = None,
                  threads: int | None = 1, ngram: str | None = "auto") -> KeyboardEngine:
    """Load a causal LM on a backend (one thread by default: the keyboard's latency budget is per core) and its
    count model: ngram="auto" takes the one shipped beside the model, "none" (or None) runs the LM alone, and a
    path loads that one. precision="auto" is what `edgewise keyboard` runs: int4 on ort, fp32 elsewhere.
    A fallback (no student, no n-gram beside the model) logs one warning line saying what it lost."""
    ref, counts_ref = resolve_keyboard(model, ngram)
    if precision == "auto":
        # Measured on the student: int4 keeps fp32's keystroke savings at a sixth of the size and half the time.
        precision = "int4" if backend == "ort" else "fp32"
    lm = load_model(ref, backend=backend, precision=precision, threads=threads)
    counts = load_count_model(counts_ref) if counts_ref else None
    return KeyboardEngine(lm, config, personal, counts)


def load_count_model(path: str | Path) -> CountModel:
    """The mixture's second model from a folder: the n-gram (`ngram.json`) or the word-level LM (`word_lm.json`,
    benchmarks/keyboard_word_lm.py's comparison), which answer the same queries."""
    if (Path(path) / "word_lm.json").is_file():
        from edgewise.apps.keyboard.word_lm import WordLM

        return WordLM.load(path)
    return NgramModel.load(path)
