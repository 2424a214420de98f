"""One runtime path: the tracked decoder session and prefix sync, generate's on_step/cancel, forward logits shared by
scoring and evaluation, prompt checks, and backend capabilities."""

import threading
import time

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.runtime import GenerationConfig, generate, load_model, prompt_ids
from edgewise.runtime.api import forward_logits, text_model, token_logprobs
from edgewise.runtime.backend import LoadedModel, capability
from edgewise.runtime.session import TrackedSession


@pytest.fixture(scope="module")
def tiny_models(tiny_llama_dir):
    return {b: load_model(str(tiny_llama_dir), backend=b, threads=1) for b in ("torch", "ort")}


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_sync_keeps_the_common_prefix_and_matches_a_fresh_pass(tiny_models, backend):
    m = tiny_models[backend]
    dec = m.decoder
    assert isinstance(dec, TrackedSession)
    a = m.tokenizer.encode("The quick brown fox")
    b = m.tokenizer.encode(" jumps over the lazy dog")
    c = m.tokenizer.encode(" is the question")
    dec.start(64)
    fresh = dec.append(a + b)
    fresh_c = (dec.start(64), dec.append(a + c))[1]
    dec.sync(a, 64)  # the cache holds a + c: keep a, minus its last token, which runs again for logits
    assert dec.ids == tuple(a) and dec.reused == len(a) - 1
    got = dec.sync(a + b, 64)
    assert dec.reused == len(a) and dec.ids == tuple(a + b)
    np.testing.assert_allclose(got, fresh, atol=1e-4)
    got_c = dec.sync(a + c, 64)  # rewinds b, keeps a
    assert dec.reused == len(a) and dec.n_tokens() == len(a + c)
    np.testing.assert_allclose(got_c, fresh_c, atol=1e-4)
    again = dec.sync(a + c, 64)  # all cached: the last token runs again for its logits
    assert dec.reused == len(a + c) - 1
    np.testing.assert_allclose(again, fresh_c, atol=1e-4)
    assert dec.sync(a + c, 64, logits=False) is None
    dec.sync(a + c, 128)  # needs more room than the cache was started with: a fresh start
    assert dec.reused == 0


def test_a_failed_append_forgets_the_record(tiny_models):
    dec = tiny_models["torch"].decoder
    dec.sync([5, 6, 7], 32)
    with pytest.raises(Exception):
        dec.append([10_000_000])  # no such embedding row
    assert dec.ids is None
    dec.sync([5, 6, 7, 8], 32)
    assert dec.reused == 0 and dec.ids == (5, 6, 7, 8)


def test_engine_specifics_stay_reachable(tiny_models):
    assert hasattr(tiny_models["torch"].decoder, "model") and hasattr(tiny_models["ort"].decoder, "score")
    dec = tiny_models["ort"].decoder
    dec.sync([5, 6, 7], 32)
    dec.score([8, 9, 10])  # onnxruntime-genai scores through its generator: the record is dropped
    assert dec.ids is None


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_reuse_cache_gives_the_same_tokens_and_reports_cached_prompt_tokens(tiny_models, backend):
    m = tiny_models[backend]
    cfg = GenerationConfig(max_tokens=8)
    first = [{"role": "user", "content": "To be, or not to be"}]
    ref = generate(m, first, cfg)
    a = generate(m, first, cfg, reuse_cache=True)
    b = generate(m, first, cfg, reuse_cache=True)
    assert ref.token_ids == a.token_ids == b.token_ids and ref.cached_tokens == 0
    assert b.cached_tokens == b.prompt_tokens - 1  # everything but the last prompt token came from the cache
    follow = first + [{"role": "assistant", "content": a.text}, {"role": "user", "content": "Why?"}]
    c = generate(m, follow, cfg, reuse_cache=True)
    assert c.cached_tokens >= len(prompt_ids(m, first)) - 1
    assert c.token_ids == generate(m, follow, cfg).token_ids


def test_on_step_sees_every_response_and_cancel_stops_early(tiny_models):
    m = tiny_models["ort"]
    seen, cancel = [], threading.Event()

    def on_step(r):
        seen.append(r)
        if len(seen) == 3:
            cancel.set()

    r = generate(m, "The quick", GenerationConfig(max_tokens=20, ignore_eos=True), on_step=on_step, cancel=cancel)
    assert r.finish_reason == "cancelled" and r.generation_tokens == 3 and len(seen) == 3
    assert r.text == "".join(s.text for s in seen) and r.token_ids == [t for s in seen for t in s.token_ids]
    assert m.lock.acquire(blocking=False)  # the stream was closed: the model is free at once
    m.lock.release()
    full = generate(m, "The quick", GenerationConfig(max_tokens=20, ignore_eos=True))
    assert full.finish_reason == "length" and full.token_ids[:3] == r.token_ids


def test_scoring_and_evaluation_read_one_forward_pass(tiny_models):
    from edgewise.evaluate.lm import forward_logits as eval_logits

    assert eval_logits is forward_logits
    for m in tiny_models.values():
        ids = m.tokenizer.encode("The quick brown fox jumps over the lazy dog.")
        logits = forward_logits(m, ids)
        assert logits.shape == (len(ids), m.tokenizer.vocab_size) and logits.dtype == np.float32
        lps, tops = token_logprobs(m, ids, top=2)
        ls = logits[0] - np.log(np.exp(logits[0] - logits[0].max()).sum()) - logits[0].max()
        assert lps[0] is None and lps[1] == pytest.approx(float(ls[ids[1]]), abs=1e-4) and 1 <= len(tops[1]) <= 2
    a, b = (forward_logits(m, ids) for m in tiny_models.values())
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_forward_logits_waits_for_the_model_lock(tiny_models):
    m = tiny_models["torch"]
    done = threading.Event()
    with m.lock:
        t = threading.Thread(target=lambda: (forward_logits(m, [5, 6, 7]), done.set()))
        t.start()
        time.sleep(0.2)
        assert not done.is_set()  # evaluation no longer runs the cache under a generation's feet
    t.join(10)
    assert done.is_set()


def test_prompt_ids_outside_the_vocabulary_are_refused(tiny_models):
    m = tiny_models["ort"]
    with pytest.raises(EdgewiseError, match="182812531 is outside"):
        prompt_ids(m, [1007 % m.tokenizer.vocab_size, 194, 182812531, 194])
    with pytest.raises(EdgewiseError):
        prompt_ids(m, [True, 5])
    assert prompt_ids(m, [0, m.tokenizer.vocab_size - 1]) == [0, m.tokenizer.vocab_size - 1]


def test_a_chat_template_that_raises_is_a_domain_error(tiny_llama_dir):
    from edgewise.runtime.backend import Tokenizer

    tok = Tokenizer.from_folder(tiny_llama_dir)
    tok.chat_template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('roles must alternate') }}{% endif %}"
    with pytest.raises(EdgewiseError, match="chat template refused these messages: roles must alternate"):
        tok.chat_ids([{"role": "assistant", "content": "hi"}])


def test_capabilities_come_from_the_backend_not_from_a_name_chain(tiny_models, tiny_bert_dir):
    torch_m, ort_m = tiny_models["torch"], tiny_models["ort"]
    assert capability(torch_m, "bits_per_weight") == 32.0
    assert 30.0 < capability(ort_m, "bits_per_weight") <= 32.5  # fp32 graph
    wt, wo = capability(torch_m, "weight_bytes_per_token"), capability(ort_m, "weight_bytes_per_token")
    assert wt > 0 and wo > 0 and abs(wt - wo) / wt < 0.1  # the same matrices, counted from module and graph
    enc = load_model(str(tiny_bert_dir), backend="ort", threads=1)
    assert capability(enc, "weight_bytes_per_token") is None and capability(enc, "bits_per_weight") > 0
    assert capability(object(), "bits_per_weight", default=-1) == -1
    assert isinstance(torch_m, LoadedModel) and text_model(torch_m) is torch_m
    with pytest.raises(EdgewiseError, match="cannot generate"):
        text_model(enc, "decoder")


@pytest.mark.parametrize("temperature", [2.225073858507203e-309, 1e-300, 5e-324])
def test_a_vanishing_temperature_samples_the_argmax(temperature):
    # Found by the server fuzz: logits / 1e-309 overflowed to inf and inf - inf made the probabilities nan.
    from edgewise.runtime.sampling import sample

    logits = np.array([1.0, 3.0, 2.5, -4.0], np.float32)
    tok, lp = sample(logits, GenerationConfig(temperature=temperature, top_k=2, top_p=0.9), np.random.default_rng(0))
    assert tok == 1 and np.isfinite(lp)


def test_logits_with_nothing_to_sample_are_refused():
    from edgewise.runtime.sampling import _choose

    with pytest.raises(ValueError, match="no finite probability"):
        _choose(np.array([np.nan, 1.0], np.float32), 0.7, 0, 1.0, np.random.default_rng(0))
