"""A word-level neural LM for the keyboard: the other side of issue 11's subword-vs-word comparison.

Gboard's next-word model is word-level (a ~10k-word vocabulary, a CIFG LSTM of 1.4M parameters): one step per
committed word gives a distribution over whole words, with no beam over sub-word pieces. This is that design at
the same scale: a one-layer LSTM over lower-case words within the sentence (like the n-gram, it starts at `<s>`),
its output projected back onto the tied input embedding.

It answers the keyboard's count-model questions (`probabilities(history, prefix)`, `known_order`), so it can take
the n-gram's place in the engine's mixture (`load_keyboard(..., ngram=DIR)` picks it by its files) and be compared
with the subword student on the same keystrokes (benchmarks/keyboard_word_lm.py). Inference is numpy: per new
word one LSTM step (cached by history), per keystroke one (V x d) product and a slice by prefix.

Training (torch, train_word_lm) reads the same corpora as the student and the n-gram.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from edgewise.apps.keyboard.ngram_build import sentence_words
from edgewise.errors import EdgewiseError
from edgewise.staging import staged_dir

FORMAT = "edgewise-keyboard-word-lm"
BOS, UNK = "<s>", "<unk>"


@dataclass(frozen=True)
class WordLMConfig:
    vocab: int = 10_000  # most frequent lower-case words; the rest train as <unk> and are never suggested
    embed: int = 128
    hidden: int = 256
    seq_len: int = 32  # words per training window (a window never crosses a sentence start without <s>)
    batch: int = 64
    steps: int = 2000
    lr: float = 3e-3
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        for name in ("vocab", "embed", "hidden", "seq_len", "batch", "steps", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"word LM {name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.lr < 1:
            raise ValueError(f"word LM lr must be in (0, 1), got {self.lr!r}")


class WordLM:
    """The trained model: query with probabilities(history, prefix), like the n-gram."""

    def __init__(self, arrays: dict, meta: dict):
        self.meta = meta
        self.words: list[str] = meta["words"]  # id order: BOS, UNK, then the vocabulary sorted (prefix = id range)
        self.display: dict[str, str] = meta.get("display", {})
        self.order = int(meta.get("history", 16)) + 1  # the engine passes order - 1 words of history
        self.index = {w: i for i, w in enumerate(self.words)}
        self.E = arrays["embed"].astype(np.float32)  # (V, d), tied with the output
        self.W = arrays["w"].astype(np.float32)  # (d + h, 4h): gates i, f, g, o
        self.b = arrays["b"].astype(np.float32)
        self.P = arrays["proj"].astype(np.float32)  # (h, d)
        self.out_b = arrays["out_b"].astype(np.float32)
        self.h = self.P.shape[0]
        self._states: OrderedDict = OrderedDict()
        self._last: tuple | None = None  # (history, distribution): every keystroke of a word asks the same one

    # --- files ------------------------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        out = Path(out)
        arrays = {"embed": self.E.astype(np.float16), "w": self.W.astype(np.float16), "b": self.b,
                  "proj": self.P.astype(np.float16), "out_b": self.out_b}
        with staged_dir(out) as tmp:
            np.savez_compressed(tmp / "word_lm.npz", **arrays)
            (tmp / "word_lm.json").write_text(json.dumps({"format": FORMAT, **self.meta}, indent=1))
        return out

    @classmethod
    def load(cls, path: str | Path) -> "WordLM":
        p = Path(path)
        try:
            meta = json.loads((p / "word_lm.json").read_text())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            with np.load(p / "word_lm.npz") as z:
                arrays = {k: z[k] for k in z.files}
            return cls(arrays, meta)
        except (OSError, ValueError, KeyError) as e:
            raise EdgewiseError(f"{p}: not a readable keyboard word LM ({str(e)[:100]}): rebuild it with "
                                "benchmarks/keyboard_word_lm.py --train") from None

    def size_bytes(self) -> int:
        """Bytes of the stored arrays (fp16 matrices, fp32 biases), before the npz's compression."""
        return 2 * (self.E.size + self.W.size + self.P.size) + 4 * (self.b.size + self.out_b.size)

    # --- queries ----------------------------------------------------------------------------------------
    def _step(self, state: tuple[np.ndarray, np.ndarray], word_id: int) -> tuple[np.ndarray, np.ndarray]:
        h, c = state
        z = np.concatenate([self.E[word_id], h]) @ self.W + self.b
        n = self.h
        i, f, g, o = (1 / (1 + np.exp(-z[:n])), 1 / (1 + np.exp(-z[n:2 * n])), np.tanh(z[2 * n:3 * n]),
                      1 / (1 + np.exp(-z[3 * n:])))
        c = f * c + i * g
        return o * np.tanh(c), c

    def _state(self, history: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The LSTM state after <s> and the history (cached: typing a word adds one step, not a rerun)."""
        if history in self._states:
            self._states.move_to_end(history)
            return self._states[history]
        if history:
            prev = self._state(history[:-1])
            state = self._step(prev, self.index.get(history[-1], 1))
        else:
            zero = np.zeros(self.h, np.float32)
            state = self._step((zero, zero), 0)
        self._states[history] = state
        if len(self._states) > 4096:
            self._states.popitem(last=False)
        return state

    def known_order(self, history: tuple[str, ...]) -> int:
        """Always 2: the engine then uses its last (trigram-history) weight for the whole word LM."""
        return 2

    def prefix_range(self, prefix: str) -> tuple[int, int]:
        p = prefix.lower()
        lo = bisect.bisect_left(self.words, p, 2)
        hi = bisect.bisect_left(self.words, p + "\U0010ffff", lo) if p else len(self.words)
        return lo, hi

    def distribution(self, history: tuple[str, ...]) -> np.ndarray:
        """P(next word | <s> history) over the whole vocabulary (BOS excluded, UNK kept as a word no one types).
        The array is shared with the next call for the same history: read it, do not write to it."""
        history = tuple(history)
        if self._last is not None and self._last[0] == history:
            return self._last[1]
        h, _ = self._state(history)
        logits = self.E @ (h @ self.P) + self.out_b
        logits[0] = -np.inf
        logits -= logits.max()
        p = np.exp(logits)
        p /= p.sum()
        self._last = (history, p)
        return p

    def probabilities(self, history: tuple[str, ...], prefix: str = "", limit: int = 16) -> dict[str, float]:
        lo, hi = self.prefix_range(prefix)
        if hi <= lo:
            return {}
        p = self.distribution(history)[lo:hi]
        n = min(limit, hi - lo)
        top = np.argpartition(-p, n - 1)[:n]
        top = top[np.argsort(-p[top])]
        return {self.words[lo + int(i)]: float(p[i]) for i in top}

    def logprob(self, history: tuple[str, ...], word: str) -> float:
        return float(np.log(self.distribution(history)[self.index.get(word.lower(), 1)]))


# --- training ---------------------------------------------------------------------------------------------

def _sentences(paths: Iterable[Path]) -> tuple[list[list[str]], dict[str, str]]:
    sents, spell = [], Counter()
    for p in paths:
        for words in sentence_words(Path(p).read_text(encoding="utf-8", errors="replace")):
            spell.update(words)
            sents.append([w.lower() for w in words])
    display: dict[str, str] = {}
    for w, _ in spell.most_common():
        display.setdefault(w.lower(), w)
    return sents, display


def train_word_lm(paths: Iterable[str | Path], config: WordLMConfig | None = None,
                  progress: Callable[[int, int, float], None] | None = None) -> WordLM:
    """Train on every sentence of `paths`: the word stream with <s> before each sentence, cut into windows."""
    import torch

    config = config or WordLMConfig()
    paths = [Path(p) for p in paths]
    sents, display = _sentences(paths)
    counts = Counter(w for s in sents for w in s)
    if sum(counts.values()) < 1_000:
        raise ValueError(f"{sum(counts.values())} words of training text is too little for a word LM")
    vocab = sorted(w for w, _ in counts.most_common(config.vocab))
    words = [BOS, UNK] + vocab
    index = {w: i for i, w in enumerate(words)}
    stream = np.fromiter((index.get(w, 1) for s in sents for w in [BOS, *s]), np.int64)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    V, d, h = len(words), config.embed, config.hidden
    emb = torch.nn.Embedding(V, d)
    lstm = torch.nn.LSTM(d, h, batch_first=True)
    proj = torch.nn.Linear(h, d, bias=False)
    out_b = torch.nn.Parameter(torch.zeros(V))
    params = [*emb.parameters(), *lstm.parameters(), *proj.parameters(), out_b]
    opt = torch.optim.Adam(params, lr=config.lr)
    warm = max(1, min(100, config.steps // 10))  # linear warm-up, then cosine decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + np.cos(np.pi * min(1.0, s / config.steps))))
    rng = np.random.default_rng(config.seed)
    T = config.seq_len
    t0 = time.perf_counter()
    for step in range(config.steps):
        starts = rng.integers(0, len(stream) - T - 1, config.batch)
        x = torch.from_numpy(np.stack([stream[s:s + T] for s in starts]))
        y = torch.from_numpy(np.stack([stream[s + 1:s + T + 1] for s in starts]))
        # A window starts mid-sentence; the state it starts from is zero, as at inference after <s>.
        out, _ = lstm(emb(x))
        logits = proj(out) @ emb.weight.T + out_b
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1),
                                                 ignore_index=index[BOS])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if progress and (step + 1) % 50 == 0:
            progress(step + 1, config.steps, loss.item())
    # torch's LSTM packs gates as (i, f, g, o) in weight_ih (4h, d) and weight_hh (4h, h); ours is one (d + h, 4h).
    w = torch.cat([lstm.weight_ih_l0, lstm.weight_hh_l0], dim=1).T.detach().numpy()
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    meta = {"words": words, "display": {w: display.get(w, w) for w in vocab}, "history": 15,
            "config": config.__dict__, "train_words": int(len(stream)), "train_seconds":
            round(time.perf_counter() - t0, 1), "params": int(sum(p.numel() for p in params)),
            "sources": sorted({Path(p).parent.name + "/" + Path(p).name for p in paths})}
    return WordLM({"embed": emb.weight.detach().numpy(), "w": w, "b": b,
                   "proj": proj.weight.T.detach().numpy(), "out_b": out_b.detach().numpy()}, meta)
