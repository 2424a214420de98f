"""Embedding tasks: retrieval (recall@k over the positives, cosine to the full model's vectors) and classification
with a linear head fitted once on the full model's embeddings and applied unchanged to every variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgewise.data.readers import read_jsonl
from edgewise.errors import EdgewiseError
from edgewise.evaluate.base import TASKS
from edgewise.models.source import ENCODER
from edgewise.runtime import embed
from edgewise.runtime.backend import LoadedModel


def _embed(model: LoadedModel, texts: list[str]) -> np.ndarray:
    if model.encoder is None:
        raise EdgewiseError(f"{model.name} is a generator without an embedding head: use an encoder such as minilm-l6")
    return embed(model, texts)


@dataclass
class RetrievalRef:
    queries: list[str]
    corpus: list[str]
    gold: np.ndarray  # corpus index of each query's positive
    q_emb: np.ndarray
    c_emb: np.ndarray


@TASKS.register("retrieval")
class RetrievalTask:
    """{"query", "positive"} pairs: rank every distinct positive for each query by cosine similarity."""

    kind = "retrieval"
    primary = "recall@1"
    higher_is_better = True
    needs = ENCODER

    def __init__(self, path: Path):
        self.path = Path(path)
        rows = read_jsonl(self.path, ("query", "positive"))
        if len(rows) < 2:
            raise EdgewiseError(f"task file {self.path} has {len(rows)} pair: retrieval needs at least 2")
        self.queries = [r["query"] for r in rows]
        self.corpus = list(dict.fromkeys(r["positive"] for r in rows))
        index = {p: i for i, p in enumerate(self.corpus)}
        self.gold = np.array([index[r["positive"]] for r in rows])

    def reference(self, model: LoadedModel) -> RetrievalRef:
        return RetrievalRef(self.queries, self.corpus, self.gold, _embed(model, self.queries), _embed(model, self.corpus))

    def evaluate(self, model: LoadedModel, ref: RetrievalRef) -> dict[str, float]:
        q, c = _embed(model, ref.queries), _embed(model, ref.corpus)
        sims = q @ c.T
        gold_sim = sims[np.arange(len(q)), ref.gold]
        rank = (sims > gold_sim[:, None]).sum(1)  # 0 = the positive ranks first
        cos = np.concatenate([(q * ref.q_emb).sum(1), (c * ref.c_emb).sum(1)])  # vectors are unit length
        return {"recall@1": float((rank < 1).mean()), "recall@5": float((rank < 5).mean()),
                "mrr": float((1.0 / (rank + 1)).mean()), "cosine_to_full": float(cos.mean()),
                "queries": int(len(q))}


def fit_ridge(x: np.ndarray, y: np.ndarray, n_classes: int, lam: float = 1e-2) -> np.ndarray:
    """A ridge-regression classifier (one-hot targets, bias column): W (D+1, C). Closed form, deterministic."""
    xb = np.hstack([x, np.ones((len(x), 1), x.dtype)]).astype(np.float64)
    t = np.eye(n_classes)[y]
    a = xb.T @ xb + lam * len(x) * np.eye(xb.shape[1])
    return np.linalg.solve(a, xb.T @ t)


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (np.hstack([x, np.ones((len(x), 1), x.dtype)]) @ w).argmax(1)


def macro_f1(y: np.ndarray, p: np.ndarray, n_classes: int) -> float:
    f1 = []
    for c in range(n_classes):
        tp = int(((p == c) & (y == c)).sum())
        fp, fn = int(((p == c) & (y != c)).sum()), int(((p != c) & (y == c)).sum())
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


@dataclass
class ClassifyRef:
    heads: list[np.ndarray]  # one head per fold, fitted on the full model's embeddings of the other folds
    folds: np.ndarray  # fold of each example
    predictions: np.ndarray  # the full model's own held-out predictions


@TASKS.register("classify")
class ClassifyTask:
    """{"text", "label"} rows: k-fold accuracy and macro-F1 of a linear head fitted on the full model's embeddings.

    Each example is predicted by a head that never saw it; every variant reuses exactly those heads, so a drop
    measures how far its embeddings moved, not a refit."""

    kind = "classify"
    primary = "accuracy"
    higher_is_better = True
    needs = ENCODER
    max_folds = 5

    def __init__(self, path: Path):
        self.path = Path(path)
        rows = read_jsonl(self.path, ("text", "label"))
        self.texts = [r["text"] for r in rows]
        self.labels_names = sorted({r["label"] for r in rows})
        if len(self.labels_names) < 2:
            raise EdgewiseError(f"task file {self.path} has one label ({self.labels_names[0]!r}): classification "
                                "needs at least 2")
        self.y = np.array([self.labels_names.index(r["label"]) for r in rows])
        smallest = np.bincount(self.y).min()
        if smallest < 2:
            raise EdgewiseError(f"task file {self.path}: every label needs at least 2 examples (held-out scoring)")
        self.k = int(min(self.max_folds, smallest))
        # Stratified, deterministic folds: the i-th example of each class goes to fold i mod k.
        self.folds = np.zeros(len(self.y), int)
        for c in range(len(self.labels_names)):
            idx = np.flatnonzero(self.y == c)
            self.folds[idx] = np.arange(len(idx)) % self.k

    def reference(self, model: LoadedModel) -> ClassifyRef:
        x = _embed(model, self.texts)
        n = len(self.labels_names)
        heads = [fit_ridge(x[self.folds != f], self.y[self.folds != f], n) for f in range(self.k)]
        return ClassifyRef(heads, self.folds, self._predict(heads, x))

    def _predict(self, heads: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        p = np.zeros(len(x), int)
        for f, w in enumerate(heads):
            m = self.folds == f
            p[m] = predict(w, x[m])
        return p

    def evaluate(self, model: LoadedModel, ref: ClassifyRef) -> dict[str, float]:
        p = self._predict(ref.heads, _embed(model, self.texts))
        n = len(self.labels_names)
        return {"accuracy": float((p == self.y).mean()), "macro_f1": macro_f1(self.y, p, n),
                "agreement_with_full": float((p == ref.predictions).mean()), "examples": int(len(p))}
