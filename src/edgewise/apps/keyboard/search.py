"""The keyboard's search for whole words: a best-first beam over tokens constrained by the typed prefix.

First tokens come from the context's cached log-probs; a hypothesis is expanded by one forward pass (the engine's
`expand`, which appends the path, reads the logits and rewinds), giving both the probability that the word ends
there and the likeliest next pieces. A per-keystroke forward budget bounds the work; expansions are cached per
context, so each keystroke of a word reuses what the previous ones computed.
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgewise.apps.keyboard.text import Split
from edgewise.apps.keyboard.vocab import TokenIndex
from edgewise.numerics import log_softmax

# log of the discount on a word whose end was not checked by a forward pass: " Satur" may be a fragment,
# while a checked whole word keeps most of its mass (its end probability is typically 0.8-0.99).
UNVERIFIED_P = 0.5
UNVERIFIED = math.log(UNVERIFIED_P)
# Suggestions this much less likely than the best one are noise ("don'm"), not worth a slot.
RELATIVE_FLOOR = 1e-3


@dataclass
class Expansion:
    lp: np.ndarray  # (V,) log-probs of the token after the path
    lp_end: float  # log P(the word ends after the path)
    top: list  # [(token, log-prob)] of the most likely continuations of the word


@dataclass
class ContextState:
    ids: tuple[int, ...]
    lp0: np.ndarray  # (V,) log-probs of the first token of the next word
    exp: dict = field(default_factory=dict)  # path (tuple of ids) -> Expansion


def expansion(logits: np.ndarray, index: TokenIndex, children: int) -> Expansion:
    """What one forward pass after a path says: end-of-word probability and the best continuations."""
    lp = log_softmax(logits)
    cont = index.cont.ids
    cont = cont[cont < len(lp)]
    lpc = lp[cont]
    p_cont = float(np.exp(lpc.astype(np.float64)).sum())
    n = min(children, len(cont))
    top = np.argpartition(-lpc, n - 1)[:n] if n else np.zeros(0, dtype=np.int64)
    return Expansion(lp, math.log(max(1.0 - p_cont, 1e-9)), list(zip(cont[top].tolist(), lpc[top].tolist())))


class WordSearch:
    """Runs the beam for one engine: `index` knows which tokens spell what, `encode` tokenizes text, and
    `expand(state, path)` runs one forward pass and caches its Expansion in state.exp."""

    def __init__(self, config, index: TokenIndex, encode: Callable[[str], list[int]],
                 expand: Callable[[ContextState, tuple[int, ...]], Expansion]):
        self.config, self.index, self.encode, self.expand = config, index, encode, expand

    def run(self, state: ContextState, split: Split, k: int, forwards: int) -> tuple[dict, int]:
        """Best-first search for whole words that start with the typed prefix: {lower word: [prob, best variant
        prob, variant]} and the forward passes spent so far.

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
            canon = self.encode(split.sep + split.prefix)
            for j in range(1, min(len(canon), cfg.max_word_tokens)):
                path = tuple(canon[:j])
                if path not in state.exp and forwards < cfg.forwards_per_key:
                    self.expand(state, path)
                    forwards += 1

        results: dict[str, list] = {}  # lower word -> [prob, best variant prob, variant]
        best_k: list[float] = []  # the k best word probabilities so far, ascending
        kth = 0.0  # the k-th best word probability so far
        best = 0.0
        while heap:
            neg, path, text, covers = heapq.heappop(heap)
            bound = math.exp(-neg)
            if len(results) >= k and bound <= kth or bound < best * RELATIVE_FLOOR:
                break  # no open hypothesis can beat the k words we have, or be shown at all
            exp = state.exp.get(path)
            if exp is None and forwards < cfg.forwards_per_key and len(path) < cfg.max_word_tokens:
                exp = self.expand(state, path)
                forwards += 1
            whole = covers and not text.endswith("'")  # "don'" is never a word by itself
            if exp is None:
                if whole:  # out of budget: the path probability, discounted since the word may go on
                    kth = self._add(results, best_k, text, -neg + UNVERIFIED, k)
                    best = max(best, bound * UNVERIFIED_P)
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
