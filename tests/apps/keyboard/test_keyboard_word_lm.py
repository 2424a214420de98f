"""The word-level LM (the subword-vs-word comparison's other side): it learns a pattern, its numpy inference
matches what torch trained, its files round-trip, and it takes the n-gram's place in the engine's mixture."""

from __future__ import annotations

import numpy as np
import pytest

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine
from edgewise.apps.keyboard.engine import load_count_model
from edgewise.apps.keyboard.word_lm import WordLM, WordLMConfig, train_word_lm
from edgewise.errors import EdgewiseError

TEXT = ("The cat sat on the mat. The dog ran to the park. I am sure the cat is on the mat. "
        "We went to the park on Sunday. The cat sat on the mat again. I am glad the dog ran. ") * 30


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory) -> WordLM:
    path = tmp_path_factory.mktemp("word-lm-text") / "t.txt"
    path.write_text(TEXT)
    return train_word_lm([path], WordLMConfig(vocab=50, embed=16, hidden=32, seq_len=16, batch=16, steps=300,
                                              lr=2e-2))


def test_it_learns_the_next_word(word_lm):
    assert next(iter(word_lm.probabilities(("the", "cat"), "", limit=3))) == "sat"
    assert next(iter(word_lm.probabilities(("i", "am"), "", limit=3))) in ("sure", "glad")
    # A prefix narrows the vocabulary to one id range; the values are the full distribution's.
    got = word_lm.probabilities(("the",), "p", limit=5)
    assert list(got) == ["park"]
    full = word_lm.distribution(("the",))
    assert got["park"] == pytest.approx(float(full[word_lm.index["park"]]))
    assert full.sum() == pytest.approx(1.0, abs=1e-5) and full[0] == 0.0  # <s> is never predicted


def test_the_numpy_lstm_matches_torch(word_lm):
    import torch

    d, h = word_lm.E.shape[1], word_lm.h
    lstm = torch.nn.LSTM(d, h, batch_first=True)
    w = torch.from_numpy(word_lm.W.T.copy())
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w[:, :d])
        lstm.weight_hh_l0.copy_(w[:, d:])
        lstm.bias_ih_l0.copy_(torch.from_numpy(word_lm.b))
        lstm.bias_hh_l0.zero_()
    hist = ("the", "dog", "ran")
    ids = [0] + [word_lm.index[x] for x in hist]
    out, _ = lstm(torch.from_numpy(word_lm.E[ids])[None])
    np.testing.assert_allclose(word_lm._state(hist)[0], out[0, -1].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_files_round_trip_and_the_engine_loads_either_count_model(word_lm, tmp_path, keyboard_lm):
    word_lm.save(tmp_path / "wl")
    back = load_count_model(tmp_path / "wl")
    assert isinstance(back, WordLM)
    # Stored in fp16: the same ranking, values within fp16 rounding.
    a, b = word_lm.probabilities(("the",), "", limit=4), back.probabilities(("the",), "", limit=4)
    assert list(a) == list(b) and all(abs(a[k] - b[k]) < 1e-2 * a[k] + 1e-4 for k in a)
    engine = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=8, ngram_weights=(1.0, 1.0, 1.0)),
                            ngram=back)
    assert engine.suggest("Yes. The cat ", "", k=1) == ["sat"]  # weight 1: the word LM alone decides
    assert engine.size_bytes() > KeyboardEngine(keyboard_lm).size_bytes()


def test_bad_files_and_settings_are_refused(tmp_path):
    (tmp_path / "word_lm.json").write_text("{not json")
    with pytest.raises(EdgewiseError, match="not a readable keyboard word LM"):
        load_count_model(tmp_path)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        WordLMConfig(hidden=0)
    short = tmp_path / "s.txt"
    short.write_text("Too short.")
    with pytest.raises(ValueError, match="too little for a word LM"):
        train_word_lm([short], WordLMConfig(steps=1))
