"""Building the keyboard's Kneser-Ney count model (ngram.py) from text: counting, discounts estimated before
pruning, continuation counts for the lower orders, optional external counts, and packing into flat arrays."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from edgewise.apps.keyboard.ngram import BOS, FORMAT, VERSION, NgramModel, history_key_dtype
from edgewise.apps.keyboard.text import SENTENCE_BREAK, WORDS
from edgewise.errors import EdgewiseError


@dataclass(frozen=True)
class NgramConfig:
    """How the count model is built and pruned.

    min_count[i] is the smallest count an n-gram of order i + 2 must have to be kept (unigrams are kept up to
    max_vocab): singletons are most of a trigram table and carry little, so pruning them is the cheapest size cut.
    """

    order: int = 3
    max_vocab: int = 65_535  # ids fit in uint16
    min_count: tuple[int, ...] = (2, 2)
    min_word_count: int = 2
    # External unigram and bigram counts (e.g. `wordsegment`'s web counts) are merged into the text's tables,
    # scaled so that at each level they weigh external_weight times the text's own total (0: not used).
    external_weight: float = 0.0

    def __post_init__(self):
        if self.order not in (2, 3, 4, 5):
            raise ValueError(f"ngram order must be 2 to 5, got {self.order!r}")
        if not 1_000 <= int(self.max_vocab) <= 65_535:
            raise ValueError(f"max_vocab must be in [1000, 65535] (ids are uint16), got {self.max_vocab!r}")
        if not 0.0 <= float(self.external_weight) <= 100.0:
            raise ValueError(f"external_weight must be in [0, 100], got {self.external_weight!r}")
        if len(self.min_count) != self.order - 1 or any(int(c) < 1 for c in self.min_count):
            raise ValueError(f"min_count needs {self.order - 1} positive counts (one per order above 1), "
                             f"got {self.min_count!r}")


def sentence_words(text: str) -> Iterable[list[str]]:
    """The words of each sentence of `text`, as typed (the count model lower-cases them)."""
    for sentence in SENTENCE_BREAK.split(text.replace("\u2019", "'")):
        words = WORDS.findall(sentence)
        if words:
            yield words


class NgramCounts:
    """Raw counts from text: n-grams of lower-case words with <s> before every sentence, and each word's
    most used spelling."""

    def __init__(self, order: int = 3):
        self.order = order
        self.grams: list[Counter] = [Counter() for _ in range(order)]  # grams[n-1]: n-gram tuple -> count
        self.spellings: dict[str, Counter] = defaultdict(Counter)
        self.words = 0
        self.external: tuple[dict, dict] = ({}, {})  # (word -> count, (word, word) -> count)

    def add_external_counts(self, unigrams: dict[str, float], bigrams: dict[tuple[str, str], float]) -> None:
        """Counts from elsewhere, lower case, "<s>" for a sentence start; merged by NgramConfig.external_weight."""
        uni, bi = self.external
        for w, c in unigrams.items():
            uni[w] = uni.get(w, 0) + c
        for g, c in bigrams.items():
            g = tuple(BOS if x == "<s>" else x for x in g)
            bi[g] = bi.get(g, 0) + c

    def add_text(self, text: str) -> None:
        n_max = self.order
        for words in sentence_words(text):
            low = [BOS] + [w.lower() for w in words]
            for w, lw in zip(words, low[1:]):
                self.spellings[lw][w] += 1
            self.words += len(words)
            for n in range(1, n_max + 1):
                grams = self.grams[n - 1]
                for i in range(max(1, n - 1), len(low)):  # every n-gram ending at a word (BOS never ends one)
                    grams[tuple(low[i - n + 1:i + 1])] += 1


def _discounts(counts: Iterable[float]) -> tuple[float, float, float]:
    """Modified KN's D1, D2, D3+ from the count-of-counts (Chen & Goodman 1998)."""
    n = Counter()
    for c in counts:
        ci = int(round(c))
        if 1 <= ci <= 4 and abs(c - ci) < 1e-9:
            n[ci] += 1
    if not all(n[i] for i in (1, 2, 3, 4)):
        return 0.5, 0.75, 0.9  # too little data for the estimate: the usual values
    y = n[1] / (n[1] + 2 * n[2])
    return (max(0.05, 1 - 2 * y * n[2] / n[1]), max(0.1, 2 - 3 * y * n[3] / n[2]),
            max(0.2, 3 - 4 * y * n[4] / n[3]))


def _discount(c: float, d: tuple[float, float, float]) -> float:
    return d[0] if c < 1.5 else d[1] if c < 2.5 else d[2]


def build(counts: NgramCounts, config: NgramConfig) -> NgramModel:
    """Estimate, prune and pack a model from counts."""
    order = config.order
    uni = counts.grams[0]
    # Vocabulary: the most frequent words (BOS is a history, never a prediction).
    ext_uni, ext_bi = counts.external if config.external_weight > 0 else ({}, {})
    score: dict[str, float] = {w[0]: c for w, c in uni.items() if w[0] != BOS}
    if ext_uni:
        s0 = config.external_weight * sum(score.values()) / sum(ext_uni.values())
        for w, c in ext_uni.items():
            score[w] = score.get(w, 0) + s0 * c
    ranked = sorted(((c, w) for w, c in score.items() if c >= config.min_word_count), reverse=True)
    vocab = sorted(w for _, w in ranked[:config.max_vocab - 1]) + [BOS]
    # BOS sorts last so prefix ranges over the real words never include it.
    index = {w: i for i, w in enumerate(vocab)}
    V = len(vocab)

    # Highest order: raw counts; lower orders: continuation counts N1+(. history w), except n-grams that start
    # with <s>, which nothing can precede: they keep their raw counts (as in Chen & Goodman).
    full: dict[int, dict[tuple, float]] = {order: {g: c for g, c in counts.grams[order - 1].items()
                                                   if all(w in index for w in g)}}
    for n in range(order - 1, 0, -1):
        cont: Counter = Counter()
        for g in counts.grams[n].keys():  # every (n+1)-gram seen
            if all(w in index for w in g[1:]):
                cont[g[1:]] += 1
        for g, c in counts.grams[n - 1].items():
            if g[0] == BOS and all(w in index for w in g):
                cont[g] = c
        if n == 1:
            # A word seen only where nothing precedes it (a sentence's first word) still counts once.
            for (w,), c in uni.items():
                if w in index and (w,) not in cont:
                    cont[(w,)] = 1
        full[n] = dict(cont)
    # Discounts come from the text's full tables: after pruning there are no singletons left to estimate them
    # from, and scaled external counts are not integers.
    discounts = {n: _discounts(full[n].values()) for n in range(2, order + 1)}
    for n, ext in ((1, ext_uni), (2, ext_bi)):
        _merge_external(full[n], ext, index, config.external_weight, n)
    tables = {1: full[1]}
    for n in range(2, order + 1):
        tables[n] = {g: c for g, c in full[n].items() if c >= config.min_count[n - 2]}

    # P1 over the vocabulary (BOS gets none).
    p1 = np.zeros(V, dtype=np.float64)
    for (w,), c in tables[1].items():
        if w != BOS:
            p1[index[w]] = c
    p1 /= p1.sum()

    levels = []
    for n in range(2, order + 1):
        table = tables[n]
        d = discounts[n]
        # A history's total counts all its n-grams, pruned or not, so pruning frees mass into gamma.
        totals: Counter = Counter()
        for g, c in full[n].items():
            totals[g[:-1]] += c
        rows: dict[tuple, list] = defaultdict(list)
        for g, c in table.items():
            if g[-1] == BOS:
                continue
            rows[g[:-1]].append((index[g[-1]], max(c - _discount(c, d), 0.0) / totals[g[:-1]]))
        levels.append((n, d, rows))
    return _pack(vocab, p1, levels, _display_table(counts, vocab), config, counts.words)


def _merge_external(table: dict, ext: dict, index: dict, weight: float, n: int) -> None:
    """Add external counts to one level's table, scaled to `weight` times the table's own total."""
    keys = [(g if n > 1 else (g,), c) for g, c in ext.items()]
    keys = [(g, c) for g, c in keys if all(w in index for w in g)]
    if not keys or weight <= 0:
        return
    scale = weight * sum(table.values()) / sum(c for _, c in keys)
    for g, c in keys:
        table[g] = table.get(g, 0) + scale * c


def _display_table(counts: NgramCounts, vocab: list[str]) -> dict[str, str]:
    """Words whose usual spelling is not lower case ("I", "London", "iPhone")."""
    out = {}
    for w in vocab:
        sp = counts.spellings.get(w)
        if sp:
            best = sp.most_common(1)[0][0]
            if best != w:
                out[w] = best
    return out


def _pack(vocab, p1, levels, display, config: NgramConfig, words: int) -> NgramModel:
    """The flat arrays NgramModel queries: per order, sorted history keys, CSR row pointers, follower ids
    sorted within each row, their discounted shares a, and each history's backoff weight g."""
    V = len(vocab)
    key_dtype = history_key_dtype(V, config.order)
    index = {w: i for i, w in enumerate(vocab)}
    arrays = {"p1": p1.astype(np.float32)}
    sizes = {}
    for n, d, rows in levels:
        hist_keys = []
        for h in rows:
            k = 0
            for w in h:
                k = k * V + index[w]
            hist_keys.append((k, h))
        hist_keys.sort()
        keys = np.array([k for k, _ in hist_keys], dtype=key_dtype)
        ptr = np.zeros(len(keys) + 1, dtype=np.int64)
        ids, a, g = [], [], np.ones(len(keys), dtype=np.float64)
        for j, (_, h) in enumerate(hist_keys):
            row = sorted(rows[h])
            ids.extend(i for i, _ in row)
            a.extend(x for _, x in row)
            g[j] = max(1.0 - sum(x for _, x in row), 1e-6)
            ptr[j + 1] = len(ids)
        arrays[f"keys{n}"] = keys
        arrays[f"ptr{n}"] = ptr.astype(np.uint32)
        arrays[f"ids{n}"] = np.asarray(ids, dtype=np.uint16)
        arrays[f"a{n}"] = np.asarray(a, dtype=np.float32)
        arrays[f"g{n}"] = g.astype(np.float32)
        sizes[n] = {"histories": len(keys), "ngrams": len(ids), "discounts": [round(x, 4) for x in d]}
    meta = {"format": FORMAT, "version": VERSION, "order": config.order, "vocab": vocab, "display": display,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
            "training_words": words, "sizes": sizes}
    return NgramModel(arrays, meta)


def build_from_files(paths: Iterable[str | Path], config: NgramConfig | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     external: tuple[dict, dict] | None = None) -> NgramModel:
    """Count every file (UTF-8 text, one paragraph per line is best), merge `external` (unigram, bigram) counts
    when config.external_weight > 0, and build the model."""
    config = config or NgramConfig()
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no training text given: pass --corpus NAME or --text FILE")
    counts = NgramCounts(config.order)
    for i, p in enumerate(paths):
        try:
            counts.add_text(p.read_text(encoding="utf-8", errors="replace"))
        except OSError as e:
            raise EdgewiseError(f"cannot read training text {p}: {e.strerror}") from None
        if progress:
            progress(i + 1, len(paths))
    if counts.words < 1_000:
        raise ValueError(f"{counts.words} words of training text is too little for an n-gram: give it at least "
                         "a few thousand words")
    if external is not None:
        counts.add_external_counts(*external)
    model = build(counts, config)
    model.meta["sources"] = sorted({p.parent.name + "/" + p.name for p in paths})
    return model
