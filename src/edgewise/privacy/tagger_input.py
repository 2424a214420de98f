"""The tagger's input: text to word pieces, their case types and offsets, and the windows a long prompt is read in.

`encode` is shared by the tagger at run time and by `edgewise privacy train`, so both see the same pieces; a
`WordTable` lets plain ASCII skip most of the tokenizer's cost for the same output (tests/privacy/test_tagger.py).
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

import numpy as np


def case_type(piece: str, line_start: bool) -> int:
    """0 lower/none, 1 Capitalised, 2 UPPER (2+ letters); +3 when the piece starts a line."""
    letters = [c for c in piece if c.isalpha()]
    c = 0
    if letters and letters[0].isupper():
        c = 2 if len(letters) >= 2 and all(x.isupper() for x in letters) else 1
    return c + (3 if line_start else 0)


N_TYPES = 6


class Encoded(NamedTuple):
    """One text as model inputs: word-piece ids, case types and character offsets (no CLS/SEP)."""

    ids: np.ndarray
    types: np.ndarray
    offsets: list[tuple[int, int]]


# Plain ASCII (printable, tab, CR, LF) and its words as the BERT pre-tokenizer splits them: runs of anything but
# whitespace and punctuation, and each punctuation mark alone.
_PLAIN = re.compile(r"[\t\n\r -~]*")
_WORD = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


class WordTable(NamedTuple):
    """Each ASCII word's pieces seen so far (a new prompt is mostly words seen before), for one BERT tokenizer;
    `added` finds its added tokens ("[CLS]" typed in a prompt is one piece), which send a text to the tokenizer."""

    known: dict
    added: re.Pattern

    @classmethod
    def of(cls, tokenizer) -> "WordTable | None":
        spec = json.loads(tokenizer.to_str())
        norm, pre = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}
        if (norm.get("type"), norm.get("lowercase"), pre.get("type"), spec["model"].get("type")) != \
                ("BertNormalizer", True, "BertPreTokenizer", "WordPiece"):
            return None
        added = [re.escape(t.content) for t in tokenizer.get_added_tokens_decoder().values()]
        return cls({}, re.compile("|".join(added) or "(?!)"))


def encode(tokenizer, text: str, words: WordTable | None = None) -> Encoded:
    """Word pieces, their case types and character offsets. With a `WordTable` plain ASCII skips the tokenizer's
    normalizer and pre-tokenizer, most of its cost, for the same pieces, offsets and types (tests/privacy)."""
    if words is not None and _PLAIN.fullmatch(text) and not words.added.search(text):
        return _encode_words(tokenizer, text, words.known)
    enc = tokenizer.encode(text, add_special_tokens=False)
    offsets = enc.offsets
    types = np.empty(len(offsets), dtype=np.int64)
    prev_end = 0
    for i, (a, b) in enumerate(offsets):
        gap = text[prev_end:a] if i else text[:a]
        types[i] = case_type(text[a:b], i == 0 or "\n" in gap)
        prev_end = b
    return Encoded(np.asarray(enc.ids, dtype=np.int64), types, list(offsets))


def _encode_words(tokenizer, text: str, known: dict) -> Encoded:
    """`encode` of plain ASCII, which BERT's normalizer only lower-cases: each word's pieces from `known`."""
    ids, types, offsets, prev = [], [], [], 0
    for m in _WORD.finditer(text):
        w, a = m.group(), m.start()
        if (hit := known.get(w)) is None:
            if len(known) >= 1 << 14:  # a bound on memory; the common words come back at once
                known.clear()
            ps = tokenizer.model.tokenize(w.lower())
            hit = known[w] = (tuple(p.id for p in ps), tuple(p.offsets for p in ps),
                              tuple(case_type(w[slice(*p.offsets)], False) for p in ps))
        n = len(types)
        ids += hit[0]
        types += hit[2]
        if not n or "\n" in text[prev:a]:  # the first piece, or a newline since the last one
            types[n] += 3
        offsets += [(a + x, a + y) for x, y in hit[1]]
        prev = offsets[-1][1]
    return Encoded(np.asarray(ids, dtype=np.int64), np.asarray(types, dtype=np.int64), offsets)


def windows(n: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Cover n tokens with the fewest windows of at most `size`, all of one length; each token is read from the
    window where it sits furthest from an edge. Returns (start, end, keep_from, keep_to) in token indices.

    Equal windows because the windows of a prompt run as one batch, padded to the longest: windows of exactly `size`
    and a short last one computed up to a whole window of padding (161 tokens, 64/8: 4 x (64 + CLS/SEP) = 264
    positions; 4 x (53 + 2) = 220 here)."""
    if n <= size:
        return [(0, n, 0, n)]
    k = -(-(n - 2 * overlap) // (size - 2 * overlap))  # fewest windows: each keeps size - 2 * overlap, ends keep more
    stride = -(-(n - 2 * overlap) // k)
    out = []
    for i in range(k):
        start = i * stride
        end = min(start + stride + 2 * overlap, n)
        out.append((start, end, 0 if i == 0 else start + overlap, n if i == k - 1 else end - overlap))
    return out
