"""The engine on a real (tiny, trained) model: whole words from subword pieces, completions, casing, apostrophes,
and a KV cache that, reused across keystrokes, gives exactly the logits of a fresh forward pass."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine
from edgewise.errors import EdgewiseError
from edgewise.numerics import log_softmax

WORD = re.compile(r"[^\W_][\w']*")
FRANCE = "What is the capital of France? The capital of France is "


def test_next_word_is_a_whole_word_built_from_pieces(engine):
    # The test tokenizer spells " fox" as " " + "fo" + "x": the beam must join the pieces into one word.
    words = engine.suggest("The quick brown ", "")
    assert words[0] == "fox"
    assert all(WORD.fullmatch(w) for w in words)


def test_completion_keeps_the_models_capital(engine):
    assert engine.suggest(FRANCE, "p")[0] == "Paris"
    assert engine.suggest(FRANCE, "Par")[0] == "Paris"
    assert engine.suggest("See you on ", "sat")[0] == "Saturday"


def test_every_completion_starts_with_what_was_typed(engine):
    for prefix in ("t", "s", "q", "qu", "b", "st"):
        for w in engine.suggest("The quick brown fox jumps over the lazy dog. See you on ", prefix, k=5):
            assert w.lower().startswith(prefix), (prefix, w)


def test_word_after_an_apostrophe_continues_it(engine):
    assert engine.suggest("I don'", "")[0] == "don't"
    assert engine.suggest("I don", "'")[0] == "don't"  # the same cut, however the caller splits it
    assert engine.suggest("I don't know what you'", "")[0] == "you're"


def test_sentence_start_capitalises(engine):
    words = engine.suggest("The quick brown fox jumps over the lazy dog. ", "", k=3)
    assert words and all(w[0].isupper() for w in words)
    assert engine.suggest("", "")[0][0].isupper()


def test_k_and_config_are_validated(engine):
    with pytest.raises(EdgewiseError):
        engine.suggest("The", "", k=0)
    with pytest.raises(EdgewiseError):
        KeyboardConfig(forwards_per_key=0)
    with pytest.raises(EdgewiseError):
        KeyboardConfig(personal_weight=1.5)


def _fresh_logprobs(lm, ids):
    """The reference: a forward pass over the whole sequence with no cache."""
    import torch

    with torch.inference_mode():
        logits = lm.decoder.model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    return log_softmax(logits)


def test_kv_cache_reuse_matches_a_fresh_forward(keyboard_lm):
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=4, max_word_tokens=10))
    text = "What is the capital of France? The capital of France is Paris. See you on Saturday"
    # Type it key by key, with a few backspaces, as a user would.
    typed = ""
    for i, ch in enumerate(text):
        typed += ch
        eng.suggest(typed)
        if i % 17 == 5:
            typed = typed[:-2]
            eng.suggest(typed)
            typed += text[i - 1:i + 1]
    for committed in ("What is the capital of France? The capital of France is Paris.", "What is the capital"):
        state, _ = eng._state_for(committed)
        assert list(state.ids) == eng._start_ids + keyboard_lm.tokenizer.encode(committed)
        ref = _fresh_logprobs(keyboard_lm, list(state.ids))
        np.testing.assert_allclose(state.lp0, ref, atol=1e-4)


def test_window_slides_and_stays_exact(keyboard_lm):
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(max_context_tokens=24, forwards_per_key=4, max_word_tokens=10))
    text = " ".join(["The quick brown fox jumps over the lazy dog."] * 6)
    for i in range(1, len(text) + 1, 3):
        eng.suggest(text[:i])
        assert len(keyboard_lm.decoder.ids) <= 24 + 10
    state, _ = eng._state_for(text)
    assert len(state.ids) <= 24
    window = text[eng._win_start:]
    assert text.endswith(window) and (eng._win_start == 0 or text[eng._win_start - 1] == " ")
    assert list(state.ids) == eng._start_ids + keyboard_lm.tokenizer.encode(window)
    np.testing.assert_allclose(state.lp0, _fresh_logprobs(keyboard_lm, list(state.ids)), atol=1e-4)


def test_forward_budget_bounds_each_keystroke(keyboard_lm):
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=1))
    for i in range(1, len(FRANCE) + 1):
        r = eng.suggest_detailed(FRANCE[:i])
        assert r.forwards <= 1
    # Asking again spends the budget on the next expansions (they are cached per context), so the answer
    # converges to what an unlimited search gives, one forward pass per keystroke at a time.
    for _ in range(30):
        r = eng.suggest_detailed(FRANCE)
        assert r.forwards <= 1
        if r.forwards == 0:
            break
    assert r.forwards == 0 and r.words[0] == "Paris"
    assert r.latency_ms >= 0 and r.cpu_ms >= 0


def test_engines_sharing_one_model_do_not_corrupt_each_other(keyboard_lm):
    a = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10))
    b = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10))
    assert a.suggest("The quick brown ")[0] == "fox"
    assert b.suggest(FRANCE)[0] == "Paris"
    assert a.suggest("The quick brown fox jumps over the lazy ")[0] == "dog"


def test_generate_between_keystrokes_leaves_the_engine_exact(keyboard_lm):
    """The session records what generate() left in the cache, so the engine re-syncs instead of trusting a stale
    prefix, and its context log-probs stay those of a fresh forward pass."""
    from edgewise.runtime import GenerationConfig, generate

    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=4, max_word_tokens=10))
    eng.suggest("The quick brown ")
    generate(keyboard_lm, "To be, or not", GenerationConfig(max_tokens=5), chat=False)
    assert eng.suggest("The quick brown fox jumps over the lazy ")[0] == "dog"
    state, _ = eng._state_for("The quick brown fox jumps over the lazy")
    assert keyboard_lm.decoder.ids[:len(state.ids)] == state.ids
    np.testing.assert_allclose(state.lp0, _fresh_logprobs(keyboard_lm, list(state.ids)), atol=1e-4)


def test_same_words_on_the_ort_backend(keyboard_lm, keyboard_lm_dir):
    """The engine uses only start/append/rewind, so onnxruntime-genai gives the torch reference's words."""
    from edgewise.runtime import load_model

    ort_lm = load_model(str(keyboard_lm_dir), backend="ort", threads=1)
    cfg = KeyboardConfig(forwards_per_key=48, max_word_tokens=10)
    ref, other = KeyboardEngine(keyboard_lm, cfg), KeyboardEngine(ort_lm, cfg)
    for context, partial in (("The quick brown ", ""), (FRANCE, "p"), ("I don'", ""), ("See you on ", "sa")):
        a, b = ref.suggest_detailed(context, partial), other.suggest_detailed(context, partial)
        assert a.words == b.words
        np.testing.assert_allclose(a.probs, b.probs, rtol=1e-3, atol=1e-6)
