"""Language-model tasks: sliding-window perplexity (with KL divergence and same-top-token against the full model)
and next-word prediction. Both score every position of a window in one pass."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgewise.data.readers import read_text
from edgewise.errors import EdgewiseError
from edgewise.evaluate.base import TASKS
from edgewise.models.source import CAUSAL_LM
from edgewise.numerics import kl_divergence, log_softmax
from edgewise.runtime.api import forward_logits
from edgewise.runtime.backend import LoadedModel

# Reference log-probs are kept for every scored position; past this many values (~400 MB at fp16) we refuse.
MAX_REF_VALUES = 2e8


@dataclass(frozen=True)
class Window:
    start: int  # first token of the window
    end: int  # one past the last token
    first: int  # first scored row (earlier rows are context only); row r predicts token start + r + 1
    stop: int  # one past the last scored row (the last row predicts the token just after the window, if any)


def windows(n: int, window: int, stride: int) -> list[Window]:
    """Sliding windows: tokens 1..n-1 are each predicted once, every one (after the first window) with at least
    window - stride tokens of context."""
    out, start = [], 0
    while True:
        end = min(start + window, n)
        out.append(Window(start, end, 0 if start == 0 else window - stride, end - start if end < n else end - start - 1))
        if end >= n:
            return out
        start += stride


def _tokens(model: LoadedModel, text: str) -> list[int]:
    return model.tokenizer.encode(text, add_special_tokens=False)


@dataclass
class LMReference:
    ids: list[int]
    wins: list[Window]
    logprobs: list[np.ndarray] = field(default_factory=list)  # fp16 (n_scored, V) per window
    top: list[np.ndarray] = field(default_factory=list)  # the full model's argmax per scored position (fp32 exact)
    vocab: int = 0


def _window_len(task, model: LoadedModel) -> tuple[int, int]:
    w = min(task.window, model.context_length)
    return w, max(1, min(task.stride, w - 1)) if w > 1 else 1


class _LMTask:
    needs = CAUSAL_LM
    window = 512
    stride = 384
    min_tokens = 16

    def __init__(self, path: Path, window: int | None = None, stride: int | None = None):
        self.path = Path(path)
        self.text = read_text(self.path)
        if window:
            self.window = window
        if stride:
            self.stride = stride
        if self.stride > self.window:
            raise EdgewiseError(f"stride {self.stride} exceeds window {self.window}")

    def reference(self, model: LoadedModel) -> LMReference:
        ids = _tokens(model, self.text)
        if len(ids) < self.min_tokens:
            raise EdgewiseError(f"task file {self.path} has only {len(ids)} tokens: give at least {self.min_tokens}")
        w, s = _window_len(self, model)
        ref = LMReference(ids, windows(len(ids), w, s))
        total = 0
        for win in ref.wins:
            lp = log_softmax(forward_logits(model, ids[win.start:win.end]))[win.first:win.stop]
            total += lp.size
            if total > MAX_REF_VALUES:
                raise EdgewiseError(f"task file {self.path} is too long to keep the full model's distributions "
                                    f"({len(ids)} tokens x {lp.shape[1]} vocabulary): use a shorter sample")
            ref.logprobs.append(lp.astype(np.float16))
            ref.top.append(lp.argmax(-1))
            ref.vocab = lp.shape[1]
        return ref

    def _passes(self, model: LoadedModel, ref: LMReference):
        """(window, variant log-probs, reference log-probs, reference argmax, target ids) per window."""
        for win, rlp, rtop in zip(ref.wins, ref.logprobs, ref.top):
            lp = log_softmax(forward_logits(model, ref.ids[win.start:win.end]))[win.first:win.stop]
            if lp.shape[1] != ref.vocab:
                raise EdgewiseError(f"{model.name} has a vocabulary of {lp.shape[1]}, the reference {ref.vocab}: "
                                    "compare variants of the same model")
            tgt = np.asarray(ref.ids[win.start + win.first + 1:win.start + win.stop + 1])
            yield win, lp, rlp.astype(np.float32), rtop, tgt


@TASKS.register("perplexity")
class PerplexityTask(_LMTask):
    """Sliding-window perplexity of FILE; mean KL(full || variant) of next-token distributions; same top token."""

    kind = "perplexity"
    primary = "perplexity"
    higher_is_better = False

    def evaluate(self, model: LoadedModel, ref: LMReference) -> dict[str, float]:
        nll, kld, same = [], [], []
        for _, lp, rlp, rtop, tgt in self._passes(model, ref):
            nll.append(-lp[np.arange(len(tgt)), tgt])
            kld.append(kl_divergence(rlp, lp))
            same.append(lp.argmax(-1) == rtop)
        nll_a, kld_a = np.concatenate(nll), np.maximum(np.concatenate(kld), 0.0)
        return {
            "perplexity": float(np.exp(nll_a.mean())),
            "nll": float(nll_a.mean()),
            "kld": float(kld_a.mean()),
            "kld_p99": float(np.percentile(kld_a, 99)),
            "same_top_token": float(np.concatenate(same).mean()),
            "tokens": int(nll_a.size),
        }


_WORD_START = re.compile(r"^\s?[A-Za-z]")


@TASKS.register("nextword")
class NextWordTask(_LMTask):
    """Next-word prediction as a keyboard sees it: is the next whole word among the model's top 1 / top 3 guesses?

    A guess is the top-k first token completed greedily; with teacher forcing its completion equals the true word
    exactly when the true first token is in the top k, each following token of the word is the argmax, and the argmax
    after the word does not continue it (no trailing letters). Words are maximal runs of letters.
    """

    kind = "nextword"
    primary = "top1"
    higher_is_better = True

    def _word_spans(self, model: LoadedModel, ids: list[int]) -> list[tuple[int, int]]:
        """(first token, number of tokens) of each word that starts on a token boundary."""
        strs = [model.tokenizer.token_str(t) for t in ids]
        spans, i = [], 1
        while i < len(ids):
            if _WORD_START.match(strs[i]) and (strs[i][:1].isspace() or not strs[i - 1][-1:].isalpha()):
                j = i + 1
                while j < len(ids) and strs[j][:1].isalpha():
                    j += 1
                spans.append((i, j - i))
                i = j
            else:
                i += 1
        return spans

    def evaluate(self, model: LoadedModel, ref: LMReference) -> dict[str, float]:
        spans = self._word_spans(model, ref.ids)
        top1 = top3 = total = agree = 0
        letters = {t: s[:1].isalpha() for t, s in ((t, model.tokenizer.token_str(t)) for t in set(ref.ids))}
        for win, lp, _, rtop, _ in self._passes(model, ref):
            base = win.start + win.first  # ids index predicted by row 0 is base + 1
            am = lp.argmax(-1)
            ranks3 = np.argsort(-lp, axis=-1)[:, :3]
            for first, n in spans:
                row = first - 1 - base
                if row < 0 or row + n >= len(lp):
                    continue
                total += 1
                agree += int(am[row] == rtop[row])
                rest_ok = all(am[row + j] == ref.ids[first + j] for j in range(1, n))
                # the argmax after the word must not glue more letters on (a keyboard would show a longer word)
                nxt = int(am[row + n])
                ends = not letters.get(nxt, model.tokenizer.token_str(nxt)[:1].isalpha())
                if rest_ok and ends:
                    top1 += int(ranks3[row, 0] == ref.ids[first])
                    top3 += int(ref.ids[first] in ranks3[row])
        if total == 0:
            raise EdgewiseError(f"task file {self.path} has no words to predict: give some prose")
        return {"top1": top1 / total, "top3": top3 / total, "words": total, "same_top_token": agree / total}
