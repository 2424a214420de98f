"""The keyboard's count model: an interpolated, modified Kneser-Ney word n-gram, pruned to a size budget.

A small LM generalises; a count model remembers exact phrases ("in the course of", "I am sure"). Presage is
nothing but the second, and on text like its training text it beats an undertrained LM, so the keyboard mixes
both (engine.py). ngram_build.py builds the n-gram from text; this module stores it as a few flat arrays and answers "the likeliest words after
this history that start with this prefix" in well under a millisecond.

Model (Chen & Goodman's interpolated modified Kneser-Ney):
    P(w | u v) = a3(u v w) + g3(u v) * P2(w | v)
    P2(w | v) = a2(v w) + g2(v) * P1(w)
    P1(w)     = N1+(. w) / N1+(. .)          (continuation counts: in how many contexts w appears)
where a_n = max(c - D_n(c), 0) / c(history) over the kept n-grams and g_n(history) = 1 - sum(a_n) is whatever
mass the discounts and the pruning freed, so every distribution sums to one after pruning too. A 4- or 5-gram
adds levels the same way (P4(w | t u v) = a4 + g4 * P(w | u v), ...).

Storage: word ids follow the sorted vocabulary, so the words with a typed prefix are one id range, and each
history's followers are sorted by id: a prefix query is two binary searches per order, vectorised in numpy.
"""

from __future__ import annotations

import bisect
import json
import math
from pathlib import Path

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.staging import staged_dir

BOS = "<s>"  # the history of a sentence's first word
FORMAT = "edgewise-keyboard-ngram"
VERSION = 1


def history_key_dtype(vocab_size: int, order: int) -> type:
    """A history of order - 1 word ids is one integer in base V. Up to a 4-gram it fits int64; a 5-gram's
    four-word history (up to 65,535**4 - 1) needs all 64 bits, so it is stored unsigned."""
    return np.int64 if vocab_size ** (order - 1) <= np.iinfo(np.int64).max else np.uint64


class NgramModel:
    """The packed model: query with probabilities(history, prefix)."""

    def __init__(self, arrays: dict, meta: dict):
        self.meta = meta
        self.vocab: list[str] = meta["vocab"]
        self.display: dict[str, str] = meta["display"]
        self.order = int(meta["order"])
        self.V = len(self.vocab)
        self.bos = self.V - 1
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.p1 = arrays["p1"].astype(np.float64)
        self.levels = []
        for n in range(2, self.order + 1):
            keys = arrays[f"keys{n}"]
            self.levels.append((keys, arrays[f"ptr{n}"], arrays[f"ids{n}"], arrays[f"a{n}"].astype(np.float64),
                                arrays[f"g{n}"].astype(np.float64)))
        self._top_all = None

    # --- files ------------------------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write `ngram.npz` (arrays, vocabulary and spellings, compressed) and `ngram.json` (how it was built)
        into a folder."""
        out = Path(out)
        arrays = {"p1": self.p1.astype(np.float32),
                  "vocab": np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8),
                  "display": np.frombuffer(json.dumps(self.display, ensure_ascii=False).encode("utf-8"),
                                           dtype=np.uint8)}
        for n, (keys, ptr, ids, a, g) in zip(range(2, self.order + 1), self.levels):
            arrays.update({f"keys{n}": keys, f"ptr{n}": ptr, f"ids{n}": ids, f"a{n}": a.astype(np.float32),
                           f"g{n}": g.astype(np.float32)})
        meta = {k: v for k, v in self.meta.items() if k not in ("vocab", "display", "file_bytes")}
        with staged_dir(out) as tmp:
            np.savez_compressed(tmp / "ngram.npz", **arrays)
            (tmp / "ngram.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> "NgramModel":
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        try:
            meta = json.loads((folder / "ngram.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise ValueError(f"format is {meta.get('format')!r} v{meta.get('version')}, "
                                 f"not {FORMAT!r} v{VERSION}")
            with np.load(folder / "ngram.npz") as z:
                arrays = {k: z[k] for k in z.files}
            meta["vocab"] = arrays.pop("vocab").tobytes().decode("utf-8").split("\n")
            meta["display"] = json.loads(arrays.pop("display").tobytes().decode("utf-8"))
            meta["file_bytes"] = sum(f.stat().st_size for f in (folder / "ngram.npz", folder / "ngram.json"))
            model = cls(arrays, meta)
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
            raise EdgewiseError(f"cannot read the keyboard n-gram in {folder}: {e} (rebuild it: edgewise keyboard "
                                "build-ngram --out DIR; or --ngram none for the LM alone)") from None
        return model

    def size_bytes(self) -> int:
        """Bytes on disk when loaded from files, else the arrays' size in memory."""
        return int(self.meta.get("file_bytes") or self.p1.nbytes + sum(x.nbytes for lv in self.levels for x in lv))

    # --- queries ----------------------------------------------------------------------------------------
    def _history_ids(self, history: tuple[str, ...]) -> list[int]:
        """The last order-1 words as ids, <s> where the sentence starts; -1 for an unknown word."""
        h = [self.bos] * max(0, self.order - 1 - len(history))
        h += [self.index.get(w, -1) for w in history[-(self.order - 1):]] if self.order > 1 else []
        return h

    def _row(self, level: int, hist: list[int]) -> tuple[int, int, int] | None:
        """(start, end, history index) of a history's followers at one level, None when it has none."""
        if any(i < 0 for i in hist):
            return None
        keys, ptr = self.levels[level][0], self.levels[level][1]
        k = self._key(hist)
        j = int(np.searchsorted(keys, k))
        if j >= len(keys) or keys[j] != k:
            return None
        return int(ptr[j]), int(ptr[j + 1]), j

    def _key(self, hist: list[int]) -> int:
        k = 0
        for i in hist:
            k = k * self.V + i
        return k

    def _rows(self, history: tuple[str, ...]) -> list:
        """Each level's row for this history (bigram first), None where the model has no counts for it."""
        h = self._history_ids(history)
        return [self._row(lv, h[len(h) - lv - 1:]) for lv in range(len(self.levels))]

    def known_order(self, history: tuple[str, ...]) -> int:
        """The longest history order the model has counts for (0: unigram only)."""
        rows = self._rows(history)
        return max((lv + 1 for lv, row in enumerate(rows) if row is not None), default=0)

    def prefix_range(self, prefix: str) -> tuple[int, int]:
        """The id range of the words starting with `prefix` (BOS, the last id, is never in it)."""
        p = prefix.lower()
        last = self.V - 1
        lo = bisect.bisect_left(self.vocab, p, 0, last)
        hi = bisect.bisect_left(self.vocab, p + "\U0010ffff", lo, last) if p else last
        return lo, hi

    def probabilities(self, history: tuple[str, ...], prefix: str = "", limit: int = 16,
                      top_unigrams: int = 32) -> dict[str, float]:
        """P(word | history) for the likeliest words that start with `prefix` (lower-case keys)."""
        lo, hi = self.prefix_range(prefix)
        if hi <= lo:
            return {}
        rows = self._rows(history)
        cands = [self._top_unigrams(lo, hi, top_unigrams)]
        for lv, row in enumerate(rows):
            if row is None:
                continue
            ids = self.levels[lv][2][row[0]:row[1]]
            a, b = np.searchsorted(ids, lo), np.searchsorted(ids, hi)
            cands.append(ids[a:b].astype(np.int64))
        c = np.unique(np.concatenate(cands))
        p = self._interpolate(c, rows)
        n = min(limit, len(c))
        top = np.argpartition(-p, n - 1)[:n]
        top = top[np.argsort(-p[top])]
        return {self.vocab[int(c[i])]: float(p[i]) for i in top}

    def _interpolate(self, c: np.ndarray, rows: list) -> np.ndarray:
        """P(c | history) for candidate ids, from P1 up through each order's row (None: back off fully)."""
        p = self.p1[c]
        for lv, row in enumerate(rows):
            if row is None:
                continue
            _, _, ids, a_all, g_all = self.levels[lv]
            ids_row = ids[row[0]:row[1]]
            pos = np.minimum(np.searchsorted(ids_row, c), len(ids_row) - 1)
            hit = ids_row[pos] == c
            add = np.zeros(len(c))
            add[hit] = a_all[row[0] + pos[hit]]
            p = add + g_all[row[2]] * p
        return p

    def _top_unigrams(self, lo: int, hi: int, n: int) -> np.ndarray:
        full = lo == 0 and hi == self.V - 1
        if full and self._top_all is not None:
            return self._top_all
        seg = self.p1[lo:hi]
        if len(seg) > n:
            top = np.argpartition(-seg, n - 1)[:n] + lo
        else:
            top = np.arange(lo, hi)
        if full:
            self._top_all = top
        return top

    def logprob(self, history: tuple[str, ...], word: str) -> float:
        """log P(word | history), for perplexity; an out-of-vocabulary word gets a floor of 1e-9 / V."""
        i = self.index.get(word.lower(), -1)
        if i < 0 or i == self.bos:
            return math.log(1e-9 / self.V)
        rows = self._rows(history)
        return math.log(max(float(self._interpolate(np.array([i]), rows)[0]), 1e-9 / self.V))
