"""The real packaged models through both backends (the reference checks of issue #2)."""

import numpy as np
import pytest

from edgewise.runtime import GenerationConfig, embed, generate, load_model

pytestmark = pytest.mark.integration
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def smollm():
    return {b: load_model("smollm2-135m", backend=b, threads=2) for b in ("torch", "ort")}


def test_ort_fp32_greedy_equals_torch_for_16_tokens(smollm):
    prompt = "Write one sentence about the sea."
    cfg = GenerationConfig(max_tokens=16)
    ref = generate(smollm["torch"], prompt, cfg)
    got = generate(smollm["ort"], prompt, cfg)
    assert ref.generation_tokens == 16
    assert got.token_ids[:16] == ref.token_ids[:16]


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_both_backends_know_paris(smollm, backend):
    r = generate(smollm[backend], QUESTION, GenerationConfig(max_tokens=16))
    assert "Paris" in r.text


def test_ort_int4_runs_and_still_knows_paris():
    lm = load_model("smollm2-135m", backend="ort", precision="int4", threads=2)
    r = generate(lm, QUESTION, GenerationConfig(max_tokens=16))
    assert "Paris" in r.text
    assert lm.size_bytes() < 150e6  # int4 weights + fp32 tied embedding, vs ~540 MB at fp32


def test_minilm_ort_matches_torch_reference():
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    ref = embed(load_model("minilm-l6", backend="torch"), texts)
    got = embed(load_model("minilm-l6", backend="ort"), texts)
    assert ref.shape == (3, 384)
    assert (ref * got).sum(1).min() >= 0.999
    sims = got @ got.T
    assert sims[0, 1] > 0.5 > sims[0, 2]  # related sentences closer than unrelated ones
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_openai_client_against_edgewise_serve_smollm2():
    import openai

    from tests.serve.conftest import Server

    s = Server("smollm2-135m", "--threads", "2", "--precision", "int4")
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="local", max_retries=0, timeout=120)
        msgs = [{"role": "user", "content": QUESTION}]
        r = c.chat.completions.create(model="smollm2-135m", messages=msgs, max_tokens=16, temperature=0)
        assert "Paris" in r.choices[0].message.content
        streamed = "".join(ch.choices[0].delta.content or "" for ch in
                           c.chat.completions.create(model="smollm2-135m", messages=msgs, max_tokens=16,
                                                     temperature=0, stream=True) if ch.choices)
        assert streamed == r.choices[0].message.content
    finally:
        s.stop()
