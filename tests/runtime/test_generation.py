"""The layered generation API on tiny random-init models, through both built-in backends."""

import numpy as np
import pytest

from edgewise.errors import EdgewiseError, PromptTooLongError
from edgewise.runtime import GenerationConfig, generate, load_model, stream_generate


@pytest.fixture(scope="module")
def tiny_models(tiny_llama_dir):
    return {b: load_model(str(tiny_llama_dir), backend=b, threads=1) for b in ("torch", "ort")}


def test_ort_fp32_matches_torch_reference_greedy(tiny_models):
    cfg = GenerationConfig(max_tokens=24)
    a = generate(tiny_models["torch"], "To be, or not", cfg)
    b = generate(tiny_models["ort"], "To be, or not", cfg)
    assert a.token_ids[:16] == b.token_ids[:16]
    assert len(set(a.token_ids)) > 2, "random init should not collapse to one token"
    np.testing.assert_allclose(a.logprobs[:8], b.logprobs[:8], atol=1e-3)


def test_stream_deltas_join_to_generate_text_and_carry_metrics(tiny_models):
    m = tiny_models["ort"]
    cfg = GenerationConfig(max_tokens=12)
    steps = list(stream_generate(m, "The quick brown", cfg))
    full = generate(m, "The quick brown", cfg)
    assert "".join(s.text for s in steps) == full.text
    last = steps[-1]
    assert last.finish_reason in ("stop", "length") and all(s.finish_reason is None for s in steps[:-1])
    assert last.prompt_tokens > 0 and last.generation_tokens == len(steps)
    assert last.ttft_ms > 0 and last.prompt_tps > 0 and last.peak_rss_mb > 10
    assert all(lp <= 0 for s in steps for lp in s.logprobs)


def test_max_tokens_gives_length(tiny_models):
    r = generate(tiny_models["torch"], "Edge devices", GenerationConfig(max_tokens=5))
    assert r.finish_reason in ("length", "stop")
    assert r.generation_tokens <= 5


def test_stop_string_truncates_and_never_leaks(tiny_models):
    m = tiny_models["torch"]
    base = generate(m, "The capital", GenerationConfig(max_tokens=30))
    if len(base.text) < 6:
        pytest.skip("random model produced too little text to pick a stop string")
    stop = base.text[3:6]
    r = generate(m, "The capital", GenerationConfig(max_tokens=30, stop=(stop,)))
    assert r.finish_reason == "stop"
    assert stop not in r.text
    assert base.text.startswith(r.text)
    streamed = "".join(s.text for s in stream_generate(m, "The capital", GenerationConfig(max_tokens=30, stop=(stop,))))
    assert streamed == r.text


def test_seeded_sampling_is_reproducible_and_differs_from_greedy(tiny_models):
    m = tiny_models["ort"]
    cfg = GenerationConfig(max_tokens=16, temperature=1.5, top_k=50, top_p=0.95, seed=7)
    a, b = generate(m, "To be", cfg), generate(m, "To be", cfg)
    assert a.token_ids == b.token_ids
    c = generate(m, "To be", GenerationConfig(max_tokens=16, temperature=1.5, top_k=50, top_p=0.95, seed=8))
    g = generate(m, "To be", GenerationConfig(max_tokens=16))
    assert c.token_ids != a.token_ids or g.token_ids != a.token_ids


def test_prompt_longer_than_context_is_a_clear_error(tiny_models):
    m = tiny_models["ort"]
    with pytest.raises(PromptTooLongError, match="context holds 256"):
        generate(m, "word " * 600, GenerationConfig(max_tokens=4))


def test_chat_messages_use_the_tokenizer_template(tiny_models):
    m = tiny_models["torch"]
    ids = m.tokenizer.chat_ids([{"role": "user", "content": "hi"}])
    assert m.tokenizer.decode(ids, skip_special_tokens=False).startswith("<|im_start|>user\nhi<|im_end|>")
    r = generate(m, [{"role": "user", "content": "hi"}], GenerationConfig(max_tokens=3))
    assert r.prompt_tokens == len(ids)


@pytest.mark.parametrize("kwargs", [dict(max_tokens=0), dict(temperature=-1), dict(top_p=0), dict(top_k=-1),
                                    dict(stop=("",))])
def test_bad_generation_config_is_rejected(kwargs):
    with pytest.raises(EdgewiseError):
        GenerationConfig(**kwargs)


def test_decoder_rewind_reuses_prefix(tiny_models):
    for m in tiny_models.values():
        dec = m.decoder
        ids = m.tokenizer.encode("The quick brown fox jumps")
        dec.start(64)
        full = dec.append(ids)
        dec.rewind(len(ids) - 1)
        again = dec.append(ids[-1:])
        np.testing.assert_allclose(full, again, atol=1e-4)
        assert dec.n_tokens() == len(ids)


def test_unknown_backend_and_precision(tiny_llama_dir):
    with pytest.raises(EdgewiseError, match="unknown backend"):
        load_model(str(tiny_llama_dir), backend="tpu")
    with pytest.raises(EdgewiseError, match="precision"):
        load_model(str(tiny_llama_dir), precision="int3")


def test_ignore_eos_decodes_the_full_count(tiny_models, monkeypatch):
    # Make the model's first greedy token an end-of-sequence id: a normal run stops at once, a benchmark run
    # (ignore_eos) still decodes max_tokens, so every variant is timed over the same number of tokens.
    m = tiny_models["ort"]
    first = generate(m, "To be", GenerationConfig(max_tokens=1)).token_ids[0]
    monkeypatch.setattr(m.tokenizer, "eos_ids", {first})
    stopped = generate(m, "To be", GenerationConfig(max_tokens=6))
    assert stopped.finish_reason == "stop" and stopped.generation_tokens <= 1
    full = generate(m, "To be", GenerationConfig(max_tokens=6, ignore_eos=True))
    assert full.finish_reason == "length" and full.generation_tokens == 6
