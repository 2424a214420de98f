"""The keyboard engine: whole-word suggestions from any causal LM loaded by the runtime.

Per keystroke it
1. cuts the text where the current word starts (text.split_context),
2. brings the decoder's KV cache to the context by rewinding to the common prefix and appending only the new
   tokens (normally the one word just finished), so a keystroke inside a word runs no forward pass for context,
3. runs a small best-first beam over tokens constrained by the typed prefix: first tokens come from the context's
   cached logits, and a few hypotheses are expanded by one forward pass each (append the path, read the logits,
   rewind), which gives both the word-end probability and the next pieces of longer words,
4. mixes in the user's own n-gram model, and returns the k most likely whole words.

Expansions are cached per context, so each keystroke of a word reuses what the previous ones computed; a per-key
forward budget keeps the worst keystroke bounded. It uses only the DecoderSession contract (start, append,
rewind), so it runs the same on every backend.
"""

from __future__ import annotations

import bisect
import heapq
import math
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.runtime.backend import LoadedModel

from edgewise.apps.keyboard.personal import PersonalStore
from edgewise.apps.keyboard.text import Split, apply_case, split_context
from edgewise.apps.keyboard.vocab import TokenIndex


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


@dataclass
class Suggestions:
    """One keystroke's answer, with what it cost."""

    words: list[str]
    probs: list[float]
    prefix: str  # the part of the word already typed
    latency_ms: float  # wall clock
    cpu_ms: float  # this thread's CPU time (load-independent)
    forwards: int  # model forward passes run for this keystroke


@dataclass
class _Expansion:
    lp: np.ndarray  # (V,) log-probs of the token after the path
    lp_end: float  # log P(the word ends after the path)
    top: list  # [(token, log-prob)] of the most likely continuations of the word


@dataclass
class _ContextState:
    ids: tuple[int, ...]
    lp0: np.ndarray  # (V,) log-probs of the first token of the next word
    exp: dict = field(default_factory=dict)  # path (tuple of ids) -> _Expansion


# log of the discount on a word whose end was not checked by a forward pass: " Satur" may be a fragment,
# while a checked whole word keeps most of its mass (its end probability is typically 0.8-0.99).
_UNVERIFIED_P = 0.5
_UNVERIFIED = math.log(_UNVERIFIED_P)
# Suggestions this much less likely than the best one are noise ("don'm"), not worth a slot.
_RELATIVE_FLOOR = 1e-3


# Which engine last moved each decoder's KV cache (weak keys: a dropped model frees its entry).
_LAST_USER: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float32)
    m = float(x.max())
    return x - (m + math.log(float(np.exp(x - m).sum())))


class KeyboardEngine:
    def __init__(self, model: LoadedModel, config: KeyboardConfig | None = None,
                 personal: PersonalStore | None = None):
        if model.decoder is None:
            raise EdgewiseError(f"{model.name} is an encoder: the keyboard needs a causal language model")
        self.model = model
        self.config = config or KeyboardConfig()
        self.personal = personal
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
        self._dec_ids: list[int] | None = None
        self._token = object()  # this engine's mark in _LAST_USER (not the engine itself: no reference cycle)
        limit = max(16, min(self.config.max_context_tokens, model.context_length - self.config.max_word_tokens - 2))
        self._max_ctx = limit
        self._states: OrderedDict[tuple[int, ...], _ContextState] = OrderedDict()

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
            scored, forwards = self._search(state, split, k_search, forwards)
        scored = self._personalise(scored, split, k_search)
        words, probs, seen = [], [], set()
        ranked = sorted(scored.items(), key=lambda kv: -kv[1][0])
        floor = ranked[0][1][0] * _RELATIVE_FLOOR if ranked else 0.0
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
        return self.model.size_bytes()

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

    def _state_for(self, committed: str) -> tuple[_ContextState, int]:
        ids = self._window_ids(committed)
        if not ids:
            # No context start and an empty text: condition on a newline, the most neutral start we have.
            ids = self.tok.encode("\n")
        key = tuple(ids)
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state, 0
        logits = self._sync(ids, need_logits=True)
        state = _ContextState(key, log_softmax(logits))
        self._states[key] = state
        while len(self._states) > 4:
            self._states.popitem(last=False)
        return state, 1

    def _sync(self, target: list[int], need_logits: bool = False) -> np.ndarray | None:
        """Make the KV cache hold exactly `target`: rewind to the common prefix, append the rest."""
        dec = self.model.decoder
        # The decoder may be shared (another engine, or generate() on the same model): trust our record of
        # its contents only if we were its last user and its length still matches.
        stale = self._dec_ids is not None and dec.n_tokens() != len(self._dec_ids)
        if _LAST_USER.get(dec) is not self._token or stale:
            self._dec_ids = None
        _LAST_USER[dec] = self._token
        cur = self._dec_ids
        n = 0
        if cur is not None:
            m = min(len(cur), len(target))
            while n < m and cur[n] == target[n]:
                n += 1
        if cur is not None and n == len(cur) == len(target) and not need_logits:
            return None
        if n == len(target):
            n -= 1  # the logits of the last position are needed: re-run that token
        if cur is None or n == 0:
            dec.start(min(self._max_ctx + self.config.max_word_tokens + 4, self.model.context_length))
        elif n < len(cur):
            dec.rewind(n)
        self._dec_ids = None  # unknown until the append succeeds
        logits = dec.append(list(target[n:]))
        self._dec_ids = list(target)
        return logits

    def _expand(self, state: _ContextState, path: tuple[int, ...]) -> _Expansion:
        dec = self.model.decoder
        self._sync(list(state.ids))
        logits = dec.append(list(path))
        dec.rewind(len(state.ids))
        lp = log_softmax(logits)
        cont = self.index.cont.ids
        cont = cont[cont < len(lp)]
        lpc = lp[cont]
        p_cont = float(np.exp(lpc.astype(np.float64)).sum())
        n = min(self.config.children, len(cont))
        top = np.argpartition(-lpc, n - 1)[:n] if n else np.zeros(0, dtype=np.int64)
        exp = _Expansion(lp, math.log(max(1.0 - p_cont, 1e-9)),
                         list(zip(cont[top].tolist(), lpc[top].tolist())))
        state.exp[path] = exp
        return exp

    # --- the beam over tokens -------------------------------------------------------------------------
    def _search(self, state: _ContextState, split: Split, k: int, forwards: int) -> tuple[dict, int]:
        """Best-first search for whole words that start with the typed prefix.

        A hypothesis is a token path whose text is consistent with the prefix; its log-prob is an upper bound
        on every word below it, so the search stops once k words beat the best open hypothesis.
        """
        cfg = self.config
        p_low = split.prefix.lower()
        strings = self.index.strings
        start = self.index.start_index(split.sep)
        lp0 = state.lp0
        heap: list = []
        n_sep = len(split.sep)
        full = split.sep + p_low

        # First tokens: those that already cover the typed prefix ...
        ids = start.starting_with(full)
        if split.sep and not p_low:
            ids = ids[len(self.index.bare_space):]  # the bare " " keys sort first; they are not words
        ids = ids[ids < len(lp0)]
        if len(ids):
            lps = lp0[ids]
            if len(ids) > cfg.first_tokens:
                top = np.argpartition(-lps, cfg.first_tokens - 1)[:cfg.first_tokens]
                ids, lps = ids[top], lps[top]
            for t, lp in zip(ids.tolist(), lps.tolist()):
                heapq.heappush(heap, (-lp, (t,), strings[t][n_sep:], True))
        # ... and those that are a proper prefix of it (" " or " sa" for " sat"), which need more tokens.
        groups = start.proper_prefixes_of(full)
        if split.sep and not p_low and len(self.index.bare_space):
            groups.append(self.index.bare_space)
        for group in groups:
            for t in group.tolist():
                if t < len(lp0):
                    heapq.heappush(heap, (-float(lp0[t]), (t,), strings[t][n_sep:], False))

        # A prefix spanning several tokens is reached first through its own tokenisation (" don" for "don'"),
        # the path the model was trained on; expand that path before the budget goes to likelier dead ends.
        if split.prefix:
            canon = self.tok.encode(split.sep + split.prefix)
            for j in range(1, min(len(canon), cfg.max_word_tokens)):
                path = tuple(canon[:j])
                if path not in state.exp and forwards < cfg.forwards_per_key:
                    self._expand(state, path)
                    forwards += 1

        results: dict[str, list] = {}  # lower word -> [prob, best variant prob, variant]
        best_k: list[float] = []  # the k best word probabilities so far, ascending
        kth = 0.0  # the k-th best word probability so far
        best = 0.0
        while heap:
            neg, path, text, covers = heapq.heappop(heap)
            bound = math.exp(-neg)
            if len(results) >= k and bound <= kth or bound < best * _RELATIVE_FLOOR:
                break  # no open hypothesis can beat the k words we have, or be shown at all
            exp = state.exp.get(path)
            if exp is None and forwards < cfg.forwards_per_key and len(path) < cfg.max_word_tokens:
                exp = self._expand(state, path)
                forwards += 1
            whole = covers and not text.endswith("'")  # "don'" is never a word by itself
            if exp is None:
                if whole:  # out of budget: the path probability, discounted since the word may go on
                    kth = self._add(results, best_k, text, -neg + _UNVERIFIED, k)
                    best = max(best, bound * _UNVERIFIED_P)
                continue
            if covers:
                if whole:
                    kth = self._add(results, best_k, text, -neg + exp.lp_end, k)
                    best = max(best, bound * math.exp(exp.lp_end))
                for t, lp in exp.top:  # the word may go on: " sat" + "urday"
                    heapq.heappush(heap, (neg - lp, path + (t,), text + strings[t], True))
                continue
            rest = p_low[len(text):]
            # After a bare " " the word's first piece comes; it cannot open with an apostrophe.
            nxt = self.index.start_nosp if not text else self.index.cont
            cand = nxt.starting_with(rest)
            cand = cand[cand < len(exp.lp)]
            if len(cand):
                lps = exp.lp[cand]
                if len(cand) > cfg.children:
                    top = np.argpartition(-lps, cfg.children - 1)[:cfg.children]
                    cand, lps = cand[top], lps[top]
                for t, lp in zip(cand.tolist(), lps.tolist()):
                    heapq.heappush(heap, (neg - lp, path + (t,), text + strings[t], True))
            for group in nxt.proper_prefixes_of(rest):
                for t in group.tolist():
                    if t < len(exp.lp):
                        heapq.heappush(heap, (neg - float(exp.lp[t]), path + (t,), text + strings[t], False))
        return results, forwards

    @staticmethod
    def _add(results: dict, top: list, text: str, logp: float, k: int) -> float:
        """Record a word; returns the k-th best probability so far (0 while fewer than k words)."""
        p = math.exp(logp)
        low = text.lower()
        entry = results.get(low)
        if entry is None:
            results[low] = [p, p, text]
            if len(top) < k or p > top[0]:
                bisect.insort(top, p)
                if len(top) > k:
                    top.pop(0)
        else:
            entry[0] += p  # another spelling or tokenisation of the same word (rare): recount
            if p > entry[1]:
                entry[1], entry[2] = p, text
            top[:] = sorted(e[0] for e in results.values())[-k:]
        return top[0] if len(top) >= k else 0.0

    # --- personalisation ------------------------------------------------------------------------------
    def _personalise(self, scored: dict, split: Split, k: int) -> dict:
        if self.personal is None:
            return scored
        context = split.committed
        lam = self.config.personal_weight * self.personal.confidence(context)
        if lam <= 0.0:
            return scored
        user = self.personal.probabilities(context, split.prefix, limit=max(8, 2 * k))
        out = {w: [(1.0 - lam) * e[0], e[1], e[2]] for w, e in scored.items()}
        for w, pu in user.items():
            if w in out:
                out[w][0] += lam * pu
            else:
                out[w] = [lam * pu, 0.0, self.personal.display(w) or w]
        return out


def default_model_ref() -> str:
    """The distilled keyboard student when this checkout has it, else the packaged SmolLM2."""
    import os
    from pathlib import Path

    env = os.environ.get("EDGEWISE_KEYBOARD_MODEL")
    if env:
        return env
    here = Path(__file__).resolve()
    for root in here.parents:
        cand = root / "models" / "keyboard-student"
        if (cand / "config.json").is_file():
            return str(cand)
    return "smollm2-135m"


def load_keyboard(model: str | None = None, backend: str = "ort", precision: str = "fp32",
                  personal: PersonalStore | None = None, config: KeyboardConfig | None = None,
                  threads: int | None = 1) -> KeyboardEngine:
    """Load a causal LM on a backend (one thread by default: the keyboard's latency budget is per core)."""
    from edgewise.runtime import load_model

    lm = load_model(model or default_model_ref(), backend=backend, precision=precision, threads=threads)
    return KeyboardEngine(lm, config, personal)
