"""Evaluation of a student: perplexity per word, comparable across tokenizers (teacher 49k vs a reduced student
vocabulary), and a cheap next-word proxy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

def word_perplexity(model, tok, text: str, window: int = 256) -> dict[str, float]:
    """Total NLL of `text` in non-overlapping windows, per word (exp) and per character (bits).

    Also the top-1/top-3 accuracy on the first token of each next word (a byte-level token starting with a
    space): a cheap proxy for next-word prediction that needs no beam search.
    """
    ids = []
    for line in tok(text.splitlines(keepends=True), add_special_tokens=False)["input_ids"]:
        ids.extend(line)
    starts = torch.tensor([t.startswith("\u0120") for t in tok.convert_ids_to_tokens(list(range(len(tok))))])
    ids_t = torch.tensor(ids)
    nll, n, hit1, hit3, n_words = 0.0, 0, 0, 0, 0
    with torch.inference_mode():
        for s in range(0, len(ids) - 1, window):
            x = ids_t[s:s + window + 1]
            if len(x) < 2:
                break
            logits = model(input_ids=x[None, :-1]).logits[0].float()
            nll += float(F.cross_entropy(logits, x[1:], reduction="sum"))
            n += len(x) - 1
            at = starts[x[1:]]  # positions whose next token begins a word
            top3 = logits[at].topk(3, dim=-1).indices
            y = x[1:][at]
            hit1 += int((top3[:, 0] == y).sum())
            hit3 += int((top3 == y[:, None]).any(-1).sum())
            n_words += int(at.sum())
    words, chars = len(text.split()), len(text)
    return {"tokens": n, "words": words, "ppl_token": math.exp(nll / n), "ppl_word": math.exp(nll / words),
            "bits_per_char": nll / chars / math.log(2), "word_start_top1": hit1 / max(n_words, 1),
            "word_start_top3": hit3 / max(n_words, 1)}
