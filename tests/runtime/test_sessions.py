"""Caller-owned sessions (model.session()), the sampler and logits processors, and what moved out of the backend
contract (runtime/tokenizer.py, LlamaCppModel, capability's narrower catch). Tiny random-init models, both built-in
backends."""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.runtime import GenerationConfig, generate, load_model, make_logits_processors, make_sampler, prompt_ids
from edgewise.runtime.api import forward_logits, stream_generate
from edgewise.runtime.backend import LoadedModel, capability
from edgewise.runtime.session import TrackedSession

BACKENDS = ("torch", "ort")


@pytest.fixture(scope="module")
def tiny_models(tiny_llama_dir):
    return {b: load_model(str(tiny_llama_dir), backend=b, threads=1) for b in BACKENDS}


# Token ids the generation loop gave on the tiny model (conftest's write_tiny_llama, seed 0) for the prompt
# "To be, or not" with ignore_eos, 16 tokens, captured before the sampler moved out of GenerationConfig's loop
# (torch and ort agreed on every row).
BEFORE = {
    "greedy": ({}, [277, 6, 234, 200, 305, 64, 24, 295, 200, 245, 97, 34, 234, 157, 222, 203]),
    "t1.5 k50 p0.95 s7": (dict(temperature=1.5, top_k=50, top_p=0.95, seed=7),
                          [228, 291, 247, 62, 99, 264, 6, 245, 230, 164, 44, 74, 132, 154, 209, 232]),
    "t0.8 s3": (dict(temperature=0.8, seed=3),
                [24, 83, 270, 218, 37, 153, 134, 46, 222, 8, 200, 195, 148, 223, 214, 299]),
    "t1.2 p0.5 s11": (dict(temperature=1.2, top_p=0.5, seed=11),
                      [36, 133, 190, 55, 50, 296, 27, 67, 294, 235, 127, 190, 305, 117, 6, 254]),
    "t2.0 k5 s0": (dict(temperature=2.0, top_k=5, seed=0),
                   [277, 6, 151, 24, 292, 223, 235, 270, 169, 257, 274, 94, 234, 68, 289, 0]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(BEFORE))
def test_the_sampler_gives_the_tokens_generation_gave_before(tiny_models, backend, name):
    kw, want = BEFORE[name]
    cfg = GenerationConfig(max_tokens=16, ignore_eos=True, **kw)
    assert generate(tiny_models[backend], "To be, or not", cfg).token_ids == want
    s = tiny_models[backend].session()
    assert generate(tiny_models[backend], "To be, or not", cfg, session=s).token_ids == want


def _sample_before(logits, temperature, top_k, top_p, rng):
    """runtime/sampling.py's sample() as it was before the sampler: the reference the new one must equal."""
    if temperature == 0.0:
        return int(np.argmax(logits))
    x = logits.astype(np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        scaled = (x - x.max()) / temperature
    if top_k and top_k < scaled.size:
        kth = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled)
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        cut = int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1
        keep = np.zeros_like(probs, dtype=bool)
        keep[order[:cut]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))


@pytest.mark.parametrize("temperature,top_k,top_p,seed", [(0.0, 0, 1.0, None), (0.7, 0, 1.0, 1), (1.3, 40, 0.9, 2),
                                                          (1.0, 3, 1.0, 3), (2.0, 0, 0.3, 4)])
def test_make_sampler_draws_what_the_old_sample_drew(temperature, top_k, top_p, seed):
    rows = np.random.default_rng(99).normal(0, 3, (200, 320)).astype(np.float32)
    sampler, rng = make_sampler(temperature, top_p, top_k, seed), np.random.default_rng(seed)
    assert [sampler(r) for r in rows] == [_sample_before(r, temperature, top_k, top_p, rng) for r in rows]


@pytest.mark.parametrize("vocab", [7, 1000, 151_936])
def test_the_sampler_draws_what_rng_choice_drew_at_any_vocabulary(vocab):
    """The sampler no longer calls rng.choice (its checks on p cost as much as the draw at Qwen's 152k vocabulary):
    its cumulative-sum draw must give the same tokens as before, at every size."""
    from edgewise.runtime.sampling import _choose

    g = np.random.default_rng(vocab)
    for i in range(60):
        logits = (g.standard_normal(vocab) * g.uniform(0.5, 6)).astype(np.float32)
        t, k, p = (0.3, 0.7, 1.0, 1.6)[i % 4], (0, 5, 50)[i % 3], (1.0, 0.9, 0.5)[i % 5 % 3]
        a, b = np.random.default_rng(i), np.random.default_rng(i)
        assert [_choose(logits, t, k, p, a) for _ in range(3)] == [_sample_before(logits, t, k, p, b)
                                                                   for _ in range(3)]


def test_logits_processors_bias_and_penalise(tiny_models):
    m = tiny_models["torch"]
    assert make_logits_processors() == [] and make_logits_processors(repetition_penalty=1.0) == []
    forced = generate(m, "To be", GenerationConfig(max_tokens=5, ignore_eos=True, logit_bias={42: 100.0}))
    assert forced.token_ids == [42] * 5
    assert all(lp <= 0 for lp in forced.logprobs)  # the model's own log-probs, not the biased ones
    greedy = generate(m, "To be", GenerationConfig(max_tokens=24, ignore_eos=True))
    penalised = generate(m, "To be", GenerationConfig(max_tokens=24, ignore_eos=True, repetition_penalty=3.0))
    assert len(set(penalised.token_ids)) > len(set(greedy.token_ids))  # greedy repeats 200 and 234; penalised less
    (proc,) = make_logits_processors(repetition_penalty=2.0, repetition_context_size=2)
    np.testing.assert_allclose(proc([0, 1, 2], np.array([4.0, 4.0, -4.0, 4.0])), [4.0, 2.0, -8.0, 4.0])
    with pytest.raises(EdgewiseError, match="outside"):
        generate(m, "To be", GenerationConfig(max_tokens=2, logit_bias={10**6: 1.0}))
    with pytest.raises(EdgewiseError, match="repetition_penalty"):
        GenerationConfig(repetition_penalty=0)


def test_explicit_sampler_and_processors_replace_the_configs(tiny_models):
    m = tiny_models["ort"]
    cfg = GenerationConfig(max_tokens=6, ignore_eos=True, temperature=1.5, seed=5)
    r = generate(m, "To be", cfg, sampler=lambda logits: 7, logits_processors=[])
    assert r.token_ids == [7] * 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_sessions_interleaved_give_each_ones_own_tokens(tiny_models, backend):
    m = tiny_models[backend]
    cfg = GenerationConfig(max_tokens=12, ignore_eos=True)
    prompts = ["To be, or not to be", "The quick brown fox jumps"]
    alone = [generate(m, p, cfg).token_ids for p in prompts]
    a, b = m.session(), m.session()
    assert a is not b and a.engine is not b.engine and a.lock is not b.lock
    streams = [stream_generate(m, p, cfg, session=s) for p, s in zip(prompts, (a, b))]
    got = [[], []]
    for _ in range(12):  # one token of each, in turn
        for i, st in enumerate(streams):
            got[i] += next(st).token_ids
    assert got == alone
    # Each session still holds its own conversation: the prompt and all but the last generated token.
    for s, p, toks in zip((a, b), prompts, alone):
        assert s.ids == tuple(prompt_ids(m, p) + toks[:-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_sessions_on_two_threads_give_each_ones_own_tokens(tiny_models, backend):
    m = tiny_models[backend]
    assert m.parallel_sessions == (backend == "ort")  # torch sessions take turns per forward pass
    cfg = GenerationConfig(max_tokens=24, ignore_eos=True, temperature=1.0, seed=4)
    prompts = ["Edge devices run small", "What is the capital"]
    alone = [generate(m, p, cfg).token_ids for p in prompts]
    got, sessions = [None, None], [m.session(), m.session()]

    def run(i):
        got[i] = generate(m, prompts[i], cfg, session=sessions[i]).token_ids

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == alone


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_session_reuses_its_prefix_on_the_follow_up_turn(tiny_models, backend):
    m = tiny_models[backend]
    cfg = GenerationConfig(max_tokens=8, ignore_eos=True)
    s, other = m.session(), m.session()
    first = m.tokenizer.encode("To be, or not to be, that is the question.")
    one = generate(m, first, cfg, chat=False, session=s)
    assert one.cached_tokens == 0
    generate(m, "Something else entirely", cfg, session=other)  # another conversation meanwhile
    follow = first + one.token_ids + m.tokenizer.encode(" Why?")
    two = generate(m, follow, cfg, chat=False, session=s)
    # The session held the first prompt and all but the last answer token: only the rest is computed.
    assert two.cached_tokens == len(first) + len(one.token_ids) - 1
    assert two.prompt_tokens - two.cached_tokens == 1 + len(m.tokenizer.encode(" Why?"))
    assert two.token_ids == generate(m, follow, cfg, chat=False).token_ids  # as from an empty cache
    # A chat turn re-tokenizes the last answer, which may differ near its end; the first prompt is kept whatever.
    chat = [{"role": "user", "content": "To be"}]
    a = generate(m, chat, cfg, session=s)
    b = generate(m, chat + [{"role": "assistant", "content": a.text}, {"role": "user", "content": "Why?"}], cfg,
                 session=s)
    assert b.cached_tokens >= len(prompt_ids(m, chat))


def test_forward_logits_on_a_session_equals_the_models_own(tiny_models):
    for m in tiny_models.values():
        ids = m.tokenizer.encode("The quick brown fox jumps over the lazy dog.")
        s = m.session()
        np.testing.assert_allclose(forward_logits(m, ids, session=s), forward_logits(m, ids), atol=1e-5)
        assert m.lock.acquire(blocking=False)  # a session's scoring never held the model's lock
        m.lock.release()


def test_sessions_are_checked_and_encoders_have_none(tiny_models, tiny_bert_dir):
    torch_m, ort_m = tiny_models["torch"], tiny_models["ort"]
    with pytest.raises(EdgewiseError, match="not made by"):
        generate(ort_m, "hi", GenerationConfig(max_tokens=2), session=torch_m.session())
    with pytest.raises(EdgewiseError, match="not made by"):
        forward_logits(ort_m, [5, 6], session=object())
    assert isinstance(ort_m.decoder, TrackedSession) and ort_m.decoder.lock is ort_m.lock
    enc = load_model(str(tiny_bert_dir), backend="ort", threads=1)
    with pytest.raises(EdgewiseError, match="encoder"):
        enc.session()


def test_the_model_lock_guards_only_the_models_own_session(tiny_models):
    m = tiny_models["torch"]
    s = m.session()
    with m.lock:  # a caller holding the model's own session does not block a session of its own
        r = generate(m, "To be", GenerationConfig(max_tokens=3), session=s)
    assert r.generation_tokens >= 1


def test_tokenizer_lives_in_its_own_module_and_the_old_name_still_works():
    from edgewise.runtime import Tokenizer as a
    from edgewise.runtime.backend import Tokenizer as b
    from edgewise.runtime.tokenizer import Tokenizer as c

    assert a is b is c


def test_gguf_capabilities_belong_to_llamacpp_not_the_base():
    from edgewise.runtime.llamacpp_backend import LlamaCppModel

    assert not hasattr(LoadedModel, "bits_per_weight") and not hasattr(LoadedModel, "weight_bytes_per_token")
    assert issubclass(LlamaCppModel, LoadedModel) and callable(LlamaCppModel.bits_per_weight)


def test_capability_returns_the_default_only_for_files_that_cannot_say():
    class Gone:
        def bits_per_weight(self):
            raise FileNotFoundError("model.onnx")

    class NoKey:
        def bits_per_weight(self):
            raise KeyError("general.file_type")

    class Buggy:
        def bits_per_weight(self):
            raise EdgewiseError("a bug of ours, not a missing capability")

    assert capability(Gone(), "bits_per_weight", -1) == -1 and capability(NoKey(), "bits_per_weight", -1) == -1
    with pytest.raises(EdgewiseError, match="a bug of ours"):
        capability(Buggy(), "bits_per_weight")


def test_litert_sessions_keep_their_own_cache_and_take_turns():
    pytest.importorskip("ai_edge_litert.interpreter", reason="needs the litert extra: pip install -e '.[litert]'")
    from edgewise.runtime.litert_lm import LiteRTDecoder, LMMeta
    from tests.runtime.test_litert_lm import META_DICT, FakeGraph

    meta = LMMeta(**{k: META_DICT[k] for k in ("model_file", "weights", "max_len", "vocab_size", "n_layers",
                                                 "n_kv_heads", "head_dim", "signatures")})
    base = LiteRTDecoder(FakeGraph(), meta)
    a, b = TrackedSession(base), TrackedSession(base.fork())
    assert not base.parallel and b.engine._turn is base._turn and b.engine.k is not base.k
    a.start(32)
    b.start(32)
    assert a.append([1, 2, 3])[0] == 6 and b.append([10])[0] == 10
    assert a.append([4])[0] == 10 and b.append([20])[0] == 30  # each sums its own cache only


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="needs the [llamacpp] extra (make bench-setup)")
def test_llamacpp_sessions_are_contexts_of_their_own():
    from edgewise.runtime.llamacpp_backend import LlamaCppModel, load_llamacpp
    from tests.runtime.test_llamacpp_backend import _packaged_gguf, _source

    from edgewise.formats import gguf_bits_per_weight

    m = load_llamacpp(_source(_packaged_gguf()), "native", 2)
    assert isinstance(m, LlamaCppModel) and m.parallel_sessions
    assert capability(m, "bits_per_weight") == gguf_bits_per_weight(m.files[0])  # 5.74 for the packaged Q4_1
    cfg = GenerationConfig(max_tokens=8, ignore_eos=True)
    prompts = ["The capital of France is", "One, two, three, four,"]
    alone = [generate(m, p, cfg, chat=False).token_ids for p in prompts]
    a, b = m.session(), m.session()
    assert a.engine.llm is not b.engine.llm
    streams = [stream_generate(m, p, cfg, chat=False, session=s) for p, s in zip(prompts, (a, b))]
    got = [[], []]
    for _ in range(8):
        for i, st in enumerate(streams):
            got[i] += next(st).token_ids
    assert got == alone
    for st in streams:
        st.close()
    for s in (a, b):
        s.engine.close()
