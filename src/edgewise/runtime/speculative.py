"""Speculative decoding: a draft proposes up to k tokens, the model checks them all in one pass, and the output
keeps the model's own distribution: token for token the same under greedy decoding.

The loop keeps one invariant: the KV cache holds every chosen token but the last. A step appends the last token
and the proposal d_1..d_k with one `append_all`, whose row j holds the model's logits after the j-th of those,
so the token after d_j is chosen from row j exactly as plain decoding would choose it from that prefix:
- a point-mass proposal (lookup, or any draft under greedy) is checked by drawing the model's token with the
  generation's own sampler and comparing: d_j is kept while they agree, and the first disagreement is the model's
  token. One sampler call per chosen token, on the same logits, so with the same seed the draws are those of
  plain decoding.
- a model draft under sampling uses the rule of Leviathan et al. (2023) and Chen et al. (2023): keep d_j with
  probability min(1, p(d_j) / q(d_j)); on a rejection draw from norm(max(0, p - q)); after k kept, draw from p.
Then the cache is rewound past the first rejection (the draft's own cache follows on its next sync).

k is chosen from measured speed (`MeasuredK`): for every k in 0..k_max, a running mean of the tokens a step chose
per second it took (the draft's proposing plus the model's pass; k = 0 is a plain step). A verify pass of k rows
is not free on a small CPU (it turns compute-bound after a few rows), and a model draft costs k of its own steps,
so the k that pays depends on the machine, the pair and the text: measuring it beats a formula. A draft that does
not pay is thereby turned off (k = 0), apart from a probe now and then. The choice never changes the output.
"""

from __future__ import annotations

import time
from typing import Iterator, Sequence

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.numerics import token_logprob
from edgewise.runtime.drafts import Proposal
from edgewise.runtime.sampling import LogitsProcessor, Sampler
from edgewise.runtime.session import TrackedSession
from edgewise.runtime.types import DraftStats, GenerationConfig

# MeasuredK: the weight of the last step in each k's running speed, and how often the best k's neighbour is probed.
SPEED_WEIGHT = 0.3
PROBE_EVERY = 8


def probs_for(logits: np.ndarray, cfg: GenerationConfig) -> np.ndarray:
    """The distribution cfg's sampler draws from (float64, sums to 1): softmax(logits / temperature) cut to top_k
    and to the smallest top-probability set reaching top_p, as runtime.sampling draws it."""
    z = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        z = (z - z.max()) / cfg.temperature
    if cfg.top_k and cfg.top_k < z.size:
        z[z < np.partition(z, -cfg.top_k)[-cfg.top_k]] = -np.inf
    p = np.exp(z)
    p /= p.sum()
    if cfg.top_p < 1.0:
        rank = np.argsort(-p)
        n_keep = int(np.searchsorted(np.cumsum(p[rank]), cfg.top_p)) + 1
        mask = np.zeros(p.size, dtype=bool)
        mask[rank[:n_keep]] = True
        p[~mask] = 0.0
        p /= p.sum()
    return p


class MeasuredK:
    """k in 0..k_max from measured speed: each k's running mean of tokens chosen per second of step time.

    Every k is tried once first (k_max down to 0), then the fastest is used, and every PROBE_EVERY-th step tries
    one of its neighbours instead, so a k whose speed has changed (another text, a busier machine) is found again.
    The state can outlive one generation (speculate keeps it on the draft), so a server learns its k once."""

    def __init__(self, k_max: int, fixed: bool = False):
        self.k_max, self.fixed = k_max, fixed  # fixed: always k_max (a draft with adapt=no), speeds still kept
        self.speed: list[float | None] = [None] * (k_max + 1)
        self.steps = 0

    @property
    def best(self) -> int | None:
        tried = [k for k in range(self.k_max + 1) if self.speed[k] is not None]
        return max(tried, key=lambda k: self.speed[k]) if tried else None

    @property
    def k(self) -> int:
        if self.fixed:
            return self.k_max
        untried = [k for k in range(self.k_max, -1, -1) if self.speed[k] is None]
        if untried:
            return untried[0]
        best = self.best
        if self.steps % PROBE_EVERY == PROBE_EVERY - 1:
            near = [k for k in (best + 1, best - 1) if 0 <= k <= self.k_max]
            return near[(self.steps // PROBE_EVERY) % len(near)]
        return best

    def update(self, k: int, tokens: int, seconds: float) -> None:
        self.steps += 1
        rate = tokens / max(seconds, 1e-9)
        old = self.speed[k]
        self.speed[k] = rate if old is None else old + SPEED_WEIGHT * (rate - old)


def k_policy(draft) -> MeasuredK:
    """The draft's MeasuredK, made on first use and kept on it (a draft that cannot hold one gets a fresh one)."""
    ks, fixed = getattr(draft, "k_policy", None), not getattr(draft, "adapt", True)
    if not isinstance(ks, MeasuredK) or ks.k_max != draft.k or ks.fixed != fixed:
        ks = MeasuredK(draft.k, fixed)
        try:
            draft.k_policy = ks
        except AttributeError:  # a plugin's draft with __slots__ or a frozen dataclass
            pass
    return ks


def _draw(rng: np.random.Generator, p: np.ndarray) -> int:
    return int(rng.choice(p.size, p=p))


def _same_size(q: np.ndarray, size: int) -> np.ndarray:
    """A draft whose logits row is longer or shorter (padded embedding tables) over the same tokenizer."""
    if q.size == size:
        return q
    out = np.zeros(size)
    out[:min(size, q.size)] = q[:size]
    return out


def speculate(dec: TrackedSession, ids: list[int], logits: np.ndarray, cfg: GenerationConfig, sampler: Sampler,
              procs: list[LogitsProcessor], draft, stats: DraftStats, capacity: int,
              custom_sampler: bool = False) -> Iterator[tuple[int, float]]:
    """generate_step's loop with a draft: yield (token, logprob) forever from the prompt's last logits, several
    tokens per forward pass when the draft guesses well. `capacity` is the room the caller sized the cache for."""
    sampling = not cfg.greedy
    if sampling and custom_sampler and getattr(draft, "model", None) is not None:
        raise EdgewiseError("a model draft under sampling verifies with the config's temperature/top_k/top_p: "
                            "drop sampler=, or use --draft lookup")
    rng = np.random.default_rng(cfg.seed)  # the rejection rule's coins (the sampler keeps its own generator)
    draft_rng = np.random.default_rng(None if cfg.seed is None else [cfg.seed, 1])
    tokens = list(ids)  # the prompt and every chosen token: what processors and the draft see

    def processed(history: Sequence[int], row: np.ndarray) -> np.ndarray:
        for process in procs:
            row = process(history, row)
        return row

    def pick(history: list[int], row: np.ndarray) -> tuple[int, np.ndarray | None]:
        row = processed(history, row)
        if not sampling:
            return int(np.argmax(row)), None
        q = probs_for(row, cfg)
        return _draw(draft_rng, q), q

    def verify(rows: np.ndarray, prop: Proposal) -> list[int]:
        """The tokens this step chooses: the kept prefix of the proposal, then the model's own token."""
        d, chosen = prop.tokens, []
        for j, row in enumerate(rows):
            row = processed(tokens + chosen, row)
            if not sampling or prop.probs is None:  # point masses: draw the model's token and compare
                tok = int(sampler(row))
                chosen.append(tok)
                if j == len(d) or tok != d[j]:
                    return chosen
                continue
            p = probs_for(row, cfg)
            if j == len(d):
                return chosen + [_draw(rng, p)]
            q = _same_size(prop.probs[j], p.size)
            if rng.random() < min(1.0, p[d[j]] / q[d[j]]):
                chosen.append(d[j])
                continue
            rest = np.maximum(p - q, 0.0)
            return chosen + [_draw(rng, rest / rest.sum() if rest.sum() > 0 else p)]
        return chosen

    ks = k_policy(draft)
    pending = [(int(sampler(processed(tokens, logits))), logits)]  # chosen tokens with the logits they came from
    with draft.open(capacity) as proposer:
        while True:
            for tok, row in pending:
                yield tok, token_logprob(row, tok)
                tokens.append(tok)
            # The cache holds tokens[:-1]; a step appends 1 + k and chooses at most k + 1 tokens, so k stays within
            # the tokens still wanted, and the cache within the room it was sized for (prompt + max_tokens).
            asked = ks.k
            k = min(asked, cfg.max_tokens - (len(tokens) - len(ids)) - 1, capacity - len(tokens))
            t0 = time.perf_counter()
            prop = proposer.propose(tokens, k, pick) if k > 0 else Proposal([])
            prop.tokens = [int(t) for t in prop.tokens[:max(k, 0)]]
            stats.steps += 1  # every forward pass after the prompt's, so tokens per pass reads from it
            if not prop.tokens:
                row = dec.append([tokens[-1]])
                pending = [(int(sampler(processed(tokens, row))), row)]
            else:
                rows = dec.append_all([tokens[-1]] + prop.tokens)  # (1 + k, V)
                chosen = verify(rows, prop)
                kept = len(chosen) - 1
                stats.proposed += len(prop.tokens)
                stats.accepted += kept
                if kept < len(prop.tokens):
                    dec.rewind(len(tokens) + kept)  # drop the rejected proposals' KV entries
                pending = list(zip(chosen, rows))
            if k == asked:  # a k cut short by max_tokens or the cache is not the k that was asked for
                ks.update(asked, len(pending), time.perf_counter() - t0)
