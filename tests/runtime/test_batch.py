"""generate_many: n completions of one prompt, as one batch on ort (onnxruntime-genai) and in turn elsewhere.
Tiny random-init Llama (conftest), fp32."""

from __future__ import annotations

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.numerics import log_softmax
from edgewise.runtime import GenerationConfig, batch_pays, generate, generate_many, load_model, prompt_ids
from edgewise.runtime.api import forward_logits
from edgewise.runtime.batch import BATCH_MIN_TOKENS

PROMPT = "To be, or not"


@pytest.fixture(scope="module")
def ort_lm(tiny_llama_dir):
    return load_model(str(tiny_llama_dir), backend="ort", threads=1)


@pytest.fixture(scope="module")
def torch_lm(tiny_llama_dir):
    return load_model(str(tiny_llama_dir), backend="torch", threads=1)


LONG = GenerationConfig(max_tokens=BATCH_MIN_TOKENS, temperature=0.9, top_k=40)


def test_ort_batches_long_answers_and_not_short_ones_or_other_backends(ort_lm, torch_lm):
    assert batch_pays(ort_lm, LONG, 4)
    assert not batch_pays(ort_lm, LONG, 1)
    assert not batch_pays(ort_lm, GenerationConfig(max_tokens=BATCH_MIN_TOKENS - 1, temperature=0.9), 4)
    assert not batch_pays(torch_lm, LONG, 4)  # torch sessions have no batch: in turn
    # A batched row ends at end-of-sequence whatever we ask, so a benchmark's ignore_eos runs in turn.
    assert not batch_pays(ort_lm, GenerationConfig(max_tokens=BATCH_MIN_TOKENS, ignore_eos=True), 4)
    rs = generate_many(ort_lm, PROMPT, LONG, [1, 2, 3])
    assert all(r.extra["batch"] == 3 for r in rs)


def test_each_batched_row_is_its_own_seeds_draw(ort_lm):
    """Every row matches generate with its seed, token for token: the batch computes the logits and each row's own
    sampler picks (fp32 here; int4 rows may differ in the last bits, see runtime.batch)."""
    seeds = [5, 6, 7]
    rows = generate_many(ort_lm, PROMPT, LONG, seeds)
    for s, r in zip(seeds, rows):
        one = generate(ort_lm, PROMPT, GenerationConfig(**{**LONG.__dict__, "seed": s}))
        assert r.token_ids == one.token_ids
        assert r.text == one.text
        assert r.generation_tokens == len(r.token_ids) == one.generation_tokens
        assert r.finish_reason == one.finish_reason
    assert len({tuple(r.token_ids) for r in rows}) == 3  # three seeds, three different answers


def test_batched_log_probs_are_the_models_own(ort_lm):
    """A row's log-probs equal a one-pass scoring of the prompt plus that row's tokens: the batch's logits follow
    each row's own sequence, whatever the other rows chose."""
    ids = prompt_ids(ort_lm, PROMPT)
    for r in generate_many(ort_lm, PROMPT, LONG, [11, 12]):
        full = ids + r.token_ids
        logits = forward_logits(ort_lm, full)
        want = [float(log_softmax(logits[len(ids) - 1 + j])[t]) for j, t in enumerate(r.token_ids)]
        np.testing.assert_allclose(r.logprobs, want, atol=2e-3)


def test_rows_stop_on_their_own_and_greedy_rows_agree(ort_lm):
    greedy = GenerationConfig(max_tokens=BATCH_MIN_TOKENS)
    a, b = generate_many(ort_lm, PROMPT, greedy, [0, 1])
    assert a.token_ids == b.token_ids == generate(ort_lm, PROMPT, greedy).token_ids
    # A stop string cuts one row where the same seed's single generation cuts it; the others run on.
    full = generate(ort_lm, PROMPT, GenerationConfig(**{**LONG.__dict__, "seed": 21})).text
    stop = full[len(full) // 2:len(full) // 2 + 3]
    cfg = GenerationConfig(**{**LONG.__dict__, "stop": (stop,)})
    rows = generate_many(ort_lm, PROMPT, cfg, [21, 22])
    assert rows[0].finish_reason == "stop" and rows[0].text == full[:full.index(stop)]
    assert rows[0].generation_tokens < LONG.max_tokens


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_in_turn_is_generate_with_each_seed(torch_lm, ort_lm, backend):
    lm = {"torch": torch_lm, "ort": ort_lm}[backend]
    rows = generate_many(lm, PROMPT, LONG, [3, 4], batch=False)  # torch has no batch; ort is told not to
    for s, r in zip((3, 4), rows):
        assert r.token_ids == generate(lm, PROMPT, GenerationConfig(**{**LONG.__dict__, "seed": s})).token_ids
        assert "batch" not in r.extra


def test_bad_requests_are_one_line(ort_lm, torch_lm):
    with pytest.raises(EdgewiseError, match="cannot decode a batch"):
        generate_many(torch_lm, PROMPT, LONG, [1, 2], batch=True)
    with pytest.raises(EdgewiseError, match="at least one seed"):
        generate_many(ort_lm, PROMPT, LONG, [])
    with pytest.raises(EdgewiseError, match="cannot decode a batch"):
        generate_many(ort_lm, PROMPT, GenerationConfig(max_tokens=8, ignore_eos=True), [1, 2], batch=True)
    with pytest.raises(EdgewiseError, match="logit_bias names token"):  # as generate says it, before any work
        generate_many(ort_lm, PROMPT, GenerationConfig(**{**LONG.__dict__, "logit_bias": {10**6: 1.0}}), [1, 2])
    with pytest.raises(EdgewiseError, match="context"):
        generate_many(ort_lm, PROMPT, GenerationConfig(max_tokens=4000, temperature=0.5), [1, 2])
