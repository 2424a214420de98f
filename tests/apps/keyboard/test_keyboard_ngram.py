"""The Kneser-Ney count model: distributions that sum to one after pruning, prefix queries that agree with the
full distribution, KN's continuation counts, files that round-trip, and its place in the engine's mixture."""

from __future__ import annotations

import numpy as np
import pytest

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine
from edgewise.apps.keyboard.ngram import NgramModel, history_key_dtype
from edgewise.apps.keyboard.ngram_build import NgramConfig, NgramCounts, build, build_from_files
from edgewise.errors import EdgewiseError

TEXT = """The cat sat on the mat. The dog sat on the log. I am sure the cat is on the mat.
I am glad the dog is here. San Francisco is far away. I went to San Francisco. San Francisco is big.
The cat and the dog sat on the mat together. I am sure of it. I am not sure of it. The mat is red.
He sold a mat. My mat is blue. Paris is far away. The log is old. The dog is on the log. I am here.
""" * 3


@pytest.fixture(scope="module")
def counts() -> NgramCounts:
    c = NgramCounts(3)
    c.add_text(TEXT)
    return c


def full_distribution(model: NgramModel, history: tuple[str, ...]) -> np.ndarray:
    return model._interpolate(np.arange(model.V - 1), model._rows(history))


@pytest.mark.parametrize("min_count", [(1, 1), (1, 2), (2, 3)])
@pytest.mark.parametrize("history", [(), ("the",), ("i", "am"), ("on", "the"), ("unseen", "words")])
def test_every_distribution_sums_to_one_even_after_pruning(counts, min_count, history):
    model = build(counts, NgramConfig(min_count=min_count, min_word_count=1))
    p = full_distribution(model, history)
    assert p.sum() == pytest.approx(1.0, abs=1e-5)
    assert (p > 0).all()


def test_a_prefix_query_returns_the_full_distributions_values_in_order(counts):
    model = build(counts, NgramConfig(min_word_count=1))
    full = full_distribution(model, ("i", "am"))
    got = model.probabilities(("i", "am"), "s", limit=5)
    assert got and all(w.startswith("s") for w in got)
    assert list(got.values()) == sorted(got.values(), reverse=True)
    for w, p in got.items():
        assert p == pytest.approx(full[model.index[w]], rel=1e-9)
    assert next(iter(got)) == "sure"  # "I am sure" twice in the text, "I am sat" never
    assert next(iter(model.probabilities(("i", "am")))) == "sure"


def test_continuation_counts_demote_a_word_seen_only_after_one_other():
    # "francisco" is about as frequent as "mat" but always follows "san", while "mat" follows "the", "a" and
    # "my": a fresh context should prefer "mat".
    c = NgramCounts(3)
    c.add_text(TEXT)
    model = build(c, NgramConfig(min_word_count=1))
    assert model.p1[model.index["mat"]] > model.p1[model.index["francisco"]]
    assert next(iter(model.probabilities(("went", "to", "san"), "f"))) == "francisco"


def test_sentence_starts_are_a_history_of_their_own(counts):
    model = build(counts, NgramConfig(min_word_count=1))
    first = model.probabilities((), "", limit=3)
    assert set(first) <= {"the", "i", "san", "paris", "he", "my"}
    assert "the" in first or "i" in first


def test_files_round_trip_and_report_their_size(counts, tmp_path):
    model = build(counts, NgramConfig(min_word_count=1))
    model.meta["display"]["paris"] = "Paris"
    model.save(tmp_path / "ng")
    back = NgramModel.load(tmp_path / "ng")
    assert back.vocab == model.vocab and back.display["paris"] == "Paris"
    assert back.probabilities(("on", "the")) == pytest.approx(model.probabilities(("on", "the")))
    assert back.size_bytes() == sum(f.stat().st_size for f in (tmp_path / "ng").iterdir())


@pytest.mark.parametrize("min_count", [(1, 1, 1), (1, 2, 2), (1, 1, 1, 1), (1, 2, 2, 2)])
@pytest.mark.parametrize("history", [(), ("i", "am"), ("i", "am", "sure"), ("went", "to", "san"),
                                     ("i", "went", "to", "san"), ("unseen", "words", "here", "too")])
def test_four_and_five_grams_sum_to_one_and_remember_longer_phrases(min_count, history):
    c = NgramCounts(len(min_count) + 1)
    c.add_text(TEXT)
    model = build(c, NgramConfig(order=len(min_count) + 1, min_count=min_count, min_word_count=1))
    p = full_distribution(model, history)
    assert p.sum() == pytest.approx(1.0, abs=1e-5) and (p > 0).all()
    assert model.known_order(("dog", "is", "on", "the")) == len(min_count)  # its longest history is known
    # "the cat is on the mat" and "the dog is on the log", three times each: only a 5-gram's four-word history
    # tells them apart
    if len(min_count) == 4:
        assert next(iter(model.probabilities(("cat", "is", "on", "the"), "", limit=3))) == "mat"
        assert next(iter(model.probabilities(("dog", "is", "on", "the"), "", limit=3))) == "log"


def test_a_five_gram_over_a_large_vocabulary_keys_histories_in_64_bits(tmp_path):
    # 56,000 words: a 4-word history key (base V) passes int64's range, so it is stored unsigned
    assert history_key_dtype(56_000, 5) == np.uint64 and history_key_dtype(56_000, 4) == np.int64
    words = [f"w{i:05d}" for i in range(56_000)]
    text = "\n".join(" ".join(words[i:i + 8]) + "." for i in range(0, len(words), 8))
    text += "\n" + "w55990 w55991 w55992 w55993 w55994. " * 3 + "w55990 w55991 w55992 w55993 w55995."
    c = NgramCounts(5)
    c.add_text(text)
    model = build(c, NgramConfig(order=5, min_count=(1, 1, 1, 1), min_word_count=1))
    assert model.levels[-1][0].dtype == np.uint64 and model.levels[-1][0][-1] > np.iinfo(np.int64).max
    model.save(tmp_path / "ng5")
    back = NgramModel.load(tmp_path / "ng5")
    hist = ("w55990", "w55991", "w55992", "w55993")
    for m in (model, back):
        assert m.known_order(hist) == 4
        got = m.probabilities(hist, "w5599", limit=2)
        assert list(got) == ["w55994", "w55995"] and got["w55994"] > 2 * got["w55995"]


def test_a_corrupt_or_missing_file_is_one_clear_error(counts, tmp_path):
    build(counts, NgramConfig(min_word_count=1)).save(tmp_path / "ng")
    (tmp_path / "ng" / "ngram.npz").write_bytes(b"not a zip")
    with pytest.raises(EdgewiseError, match="cannot read the keyboard n-gram.*build-ngram"):
        NgramModel.load(tmp_path / "ng")
    with pytest.raises(EdgewiseError, match="cannot read the keyboard n-gram"):
        NgramModel.load(tmp_path / "missing")


def test_bad_settings_and_too_little_text_are_refused(tmp_path):
    with pytest.raises(ValueError, match="min_count needs 2"):
        NgramConfig(min_count=(1,))
    with pytest.raises(ValueError, match="order must be 2 to 5"):
        NgramConfig(order=6, min_count=(1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="uint16"):
        NgramConfig(max_vocab=100_000)
    small = tmp_path / "small.txt"
    small.write_text("too short.")
    with pytest.raises(ValueError, match="too little"):
        build_from_files([small])


def test_the_mixture_brings_in_words_the_lm_never_offers(keyboard_lm, counts):
    # The tiny LM knows its six sentences; the n-gram knows "I am sure". With the n-gram in the mix the
    # engine offers "sure", and with a zero weight it is the LM alone again.
    model = build(counts, NgramConfig(min_word_count=1))
    mixed = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10,
                                                       ngram_weights=(0.5, 0.7, 0.9)), ngram=model)
    assert "sure" in mixed.suggest("Yes. I am ", "", k=3)
    alone = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10,
                                                       ngram_weights=(0.0, 0.0, 0.0)), ngram=model)
    lm = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10))
    assert alone.suggest("Yes. I am ", "", k=3) == lm.suggest("Yes. I am ", "", k=3)
    assert mixed.size_bytes() > lm.size_bytes()


def test_engine_config_refuses_bad_weights():
    with pytest.raises(EdgewiseError, match="ngram_weights"):
        KeyboardConfig(ngram_weights=(0.5, 1.5, 0.2))
    with pytest.raises(EdgewiseError, match="2 to 5 shares"):
        KeyboardConfig(ngram_weights=(0.1, 0.2, 0.3, 0.3, 0.3, 0.3))
    assert KeyboardConfig(ngram_weights=(0.1, 0.3, 0.3, 0.5)).ngram_weights[-1] == 0.5  # a 4-gram history's share
