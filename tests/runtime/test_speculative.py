"""Speculative decoding (runtime/speculative.py, runtime/drafts.py): the same tokens as plain decoding under greedy,
the same distribution under sampling, and stop strings, max_tokens, the context limit, cancellation and sessions
unchanged. Tiny random-init Llamas on both built-in backends, and the packaged SmolLM2 on ort."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import Counter

import numpy as np
import pytest

from edgewise.errors import EdgewiseError, PromptTooLongError
from edgewise.runtime import GenerationConfig, generate, load_model, prompt_ids
from edgewise.runtime.api import stream_generate
from edgewise.runtime.drafts import DRAFTS, LookupDraft, ModelDraft, load_draft
from edgewise.runtime.speculative import PROBE_EVERY, MeasuredK, probs_for

from tests.conftest import write_tiny_llama

BACKENDS = ("torch", "ort")
NOISE = 0.03  # the near draft's weight noise, against init weights of scale 0.2
# Repeats itself, so lookup finds n-grams to propose.
PROMPT = "To be, or not to be, that is the question. To be, or not to be, that is"


@pytest.fixture(scope="module")
def other_llama_dir(tmp_path_factory):
    """The same tokenizer as tiny_llama_dir, other random weights: a draft that is often wrong."""
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama-seed1"), seed=1)


@pytest.fixture(scope="module")
def near_llama_dir(tiny_llama_dir, tmp_path_factory):
    """tiny_llama_dir's weights plus noise: a draft that agrees with it part of the time."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama-near")
    for f in tiny_llama_dir.iterdir():
        if "token" in f.name or f.name.endswith(".jinja"):
            shutil.copy(f, out / f.name)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.add_(torch.randn_like(p) * NOISE)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    return {b: load_model(str(tiny_llama_dir), backend=b, threads=1) for b in BACKENDS}


@pytest.fixture(scope="module")
def drafts(tiny, tiny_llama_dir, other_llama_dir):
    """Per backend: lookup twice, the target as its own draft (every proposal kept) and the other weights."""
    return {b: {"lookup": "lookup", "lookup:ngram=1,k=2": "lookup:ngram=1,k=2",
                "model:self": load_draft(f"model:{tiny_llama_dir},k=3,adapt=no", tiny[b], threads=1),
                "model:other": load_draft(f"model:{other_llama_dir}", tiny[b], threads=1)} for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_append_all_gives_every_positions_logits_of_single_appends(tiny, backend):
    dec = tiny[backend].session()
    ids = prompt_ids(tiny[backend], PROMPT)
    dec.start(len(ids) + 8)
    dec.append(ids[:5])
    rows = dec.append_all(ids[5:12])
    assert dec.ids == tuple(ids[:12])
    dec.rewind(5)
    one = np.stack([dec.append([t]) for t in ids[5:12]])
    assert rows.shape == one.shape == (7, one.shape[1])
    np.testing.assert_allclose(rows, one, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lookup", "lookup:ngram=1,k=2", "model:self", "model:other"])
def test_greedy_output_is_token_for_token_the_same(tiny, drafts, backend, name):
    cfg = GenerationConfig(max_tokens=40, ignore_eos=True)
    plain = generate(tiny[backend], PROMPT, cfg)
    spec = generate(tiny[backend], PROMPT, cfg, draft=drafts[backend][name])
    assert spec.token_ids == plain.token_ids and spec.text == plain.text
    assert spec.logprobs == pytest.approx(plain.logprobs, abs=1e-3)
    d = spec.draft
    assert d.proposed > 0 and 0 <= d.accepted <= d.proposed and d.steps < len(spec.token_ids)
    if name == "model:self":  # its own draft: every proposal kept, several tokens per forward pass
        assert d.accepted == d.proposed and d.steps <= len(spec.token_ids) // 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_strings_max_tokens_and_cancellation_are_unchanged(tiny, drafts, backend):
    lm, model_draft = tiny[backend], drafts[backend]["model:self"]
    base = generate(lm, PROMPT, GenerationConfig(max_tokens=40, ignore_eos=True))
    stop = base.text[len(base.text) // 2:][:3]  # a stop string from the middle of what it writes
    for draft in ("lookup", model_draft):
        for n in (1, 2, 3, 7, 40):
            cfg = GenerationConfig(max_tokens=n, ignore_eos=True)
            a, b = generate(lm, PROMPT, cfg), generate(lm, PROMPT, cfg, draft=draft)
            assert (b.token_ids, b.text, b.finish_reason) == (a.token_ids, a.text, a.finish_reason) == \
                   (base.token_ids[:n], a.text, "length")
        cfg = GenerationConfig(max_tokens=40, ignore_eos=True, stop=(stop,))
        a, b = generate(lm, PROMPT, cfg), generate(lm, PROMPT, cfg, draft=draft)
        assert (b.text, b.token_ids, b.finish_reason) == (a.text, a.token_ids, "stop") and stop not in b.text
        for use in (None, draft):
            cancel, seen = threading.Event(), []

            def on_step(r, seen=seen, cancel=cancel):
                seen.append(r)
                if len(seen) == 5:
                    cancel.set()
            res = generate(lm, PROMPT, GenerationConfig(max_tokens=40, ignore_eos=True), on_step=on_step,
                           cancel=cancel, draft=use)
            assert res.finish_reason == "cancelled" and res.token_ids == base.token_ids[:5]


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_yields_one_token_per_response_and_the_context_limit_holds(tiny, drafts, backend):
    lm = tiny[backend]
    cfg = GenerationConfig(max_tokens=30, ignore_eos=True)
    plain = list(stream_generate(lm, PROMPT, cfg))
    spec = list(stream_generate(lm, PROMPT, cfg, draft=drafts[backend]["model:self"]))
    assert [r.token_ids for r in spec] == [r.token_ids for r in plain]
    assert [r.text for r in spec] == [r.text for r in plain]
    assert all(r.draft is not None for r in spec) and spec[-1].draft.accepted > 0
    # The KV-cache limit: a generation that fills the context exactly runs the same; one token more is refused.
    ids = prompt_ids(lm, PROMPT)
    fill = GenerationConfig(max_tokens=lm.context_length - len(ids), ignore_eos=True)
    a, b = generate(lm, ids, fill), generate(lm, ids, fill, draft=drafts[backend]["model:self"])
    assert b.token_ids == a.token_ids and len(b.token_ids) == fill.max_tokens
    over = GenerationConfig(max_tokens=fill.max_tokens + 1)
    for draft in (None, "lookup"):
        with pytest.raises(PromptTooLongError):
            generate(lm, ids, over, draft=draft)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_session_keeps_a_consistent_cache_across_turns(tiny, drafts, backend):
    lm, cfg = tiny[backend], GenerationConfig(max_tokens=12, ignore_eos=True)
    turns = [PROMPT, "Whether 'tis nobler in the mind to suffer"]
    outs = {}
    for draft in (None, drafts[backend]["model:other"]):
        s, msgs, got = lm.session(), [], []
        for t in turns:
            msgs.append({"role": "user", "content": t})
            r = generate(lm, msgs, cfg, session=s, draft=draft)
            msgs.append({"role": "assistant", "content": r.text})
            got.append(r.token_ids)
        outs[draft is None] = got
    assert outs[True] == outs[False]


def test_sampling_with_lookup_draws_what_plain_sampling_draws(tiny):
    # A point-mass draft is verified by drawing the model's own token with the generation's sampler: one draw per
    # token on the same logits, so a seed gives the same tokens with or without the draft.
    for seed in range(5):
        cfg = GenerationConfig(max_tokens=24, temperature=1.0, top_k=20, seed=seed, ignore_eos=True)
        assert generate(tiny["ort"], PROMPT, cfg, draft="lookup:ngram=1").token_ids == \
               generate(tiny["ort"], PROMPT, cfg).token_ids


def test_sampling_with_a_model_draft_keeps_the_models_distribution(tiny, near_llama_dir):
    """Chi-square: the joint of the 2nd and 3rd tokens (top-3 of a 320-token vocabulary, 9 cells), 600 draws with
    the rejection rule against a draft with noisy weights, 600 without."""
    from scipy.stats import chi2_contingency

    lm = tiny["ort"]
    draft = load_draft(f"model:{near_llama_dir},k=2", lm, threads=1)
    cfg = dict(max_tokens=4, temperature=1.0, top_k=3, ignore_eos=True)
    plain, spec, draft_alone = Counter(), Counter(), Counter()
    proposed = accepted = 0
    for i in range(600):
        plain[tuple(generate(lm, PROMPT, GenerationConfig(seed=i, **cfg)).token_ids[1:3])] += 1
        draft_alone[tuple(generate(draft.model, PROMPT, GenerationConfig(seed=20_000 + i, **cfg)).token_ids[1:3])] += 1
        r = generate(lm, PROMPT, GenerationConfig(seed=10_000 + i, **cfg), draft=draft)
        spec[tuple(r.token_ids[1:3])] += 1
        proposed, accepted = proposed + r.draft.proposed, accepted + r.draft.accepted
    assert 0.1 < accepted / proposed < 0.9  # both branches of the rule ran, many times
    cells = sorted(set(plain) | set(spec) | set(draft_alone))
    assert len(cells) >= 6

    def p_value(a, b):
        return chi2_contingency(np.array([[a[c] for c in cells], [b[c] for c in cells]]) + 0.5)[1]
    assert p_value(plain, spec) > 0.001, (plain, spec)
    # The test has the power to see a wrong rule: the draft's own distribution is told apart from the model's.
    assert p_value(plain, draft_alone) < 0.001, (plain, draft_alone)


def test_probs_for_is_the_samplers_distribution():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 50).astype(np.float32)
    cfg = GenerationConfig(temperature=0.7, top_k=10, top_p=0.8)
    p = probs_for(logits, cfg)
    assert p.sum() == pytest.approx(1.0) and 1 <= (p > 0).sum() <= 10
    from edgewise.runtime.sampling import make_sampler

    sampler = make_sampler(0.7, 0.8, 10, seed=1)
    counts = Counter(sampler(logits) for _ in range(4000))
    assert set(counts) <= set(np.flatnonzero(p))
    top = int(np.argmax(p))
    assert counts[top] / 4000 == pytest.approx(p[top], abs=0.04)


def test_k_is_the_fastest_measured_and_a_draft_that_does_not_pay_is_turned_off():
    """MeasuredK tries every k once (k_max down to 0), then keeps the fastest, probing a neighbour every
    PROBE_EVERY-th step; speeds are tokens per second of step time, as speculate measures them."""
    ks = MeasuredK(4)
    cost = {0: 1.0, 1: 1.5, 2: 1.6, 3: 1.8, 4: 2.4}  # seconds per step of each k: verify passes grow with k
    gain = {0: 1, 1: 2, 2: 3, 3: 3, 4: 3}  # tokens a step chooses: the draft is right about twice in a row
    seen = []
    for _ in range(40):
        k = ks.k
        seen.append(k)
        ks.update(k, gain[k], cost[k])
    assert seen[:5] == [4, 3, 2, 1, 0]  # each tried once
    assert ks.best == 2  # 3 tokens in 1.6 s beats 2 in 1.5, 3 in 1.8 and plain decoding's 1 in 1.0
    after = seen[5:]
    assert after.count(2) >= len(after) - len(after) // PROBE_EVERY - 1  # the best, but for the probes
    assert set(after) - {2} <= {1, 3}  # probes try the neighbours
    bad = MeasuredK(3)  # a draft whose steps cost more than they gain: plain decoding wins, the draft is off
    for _ in range(30):
        k = bad.k
        bad.update(k, 1 if k == 0 else 1 + (k > 1), 1.0 + 0.5 * k)
    assert bad.best == 0 and bad.k in (0, 1)


def test_the_measured_k_is_kept_on_the_draft_across_generations(tiny):
    lm = tiny["torch"]
    draft = load_draft("lookup:k=4", lm)
    generate(lm, "To be, or not to be, that is the question. To be, or not", GenerationConfig(max_tokens=12),
             draft=draft)
    ks = draft.k_policy
    assert isinstance(ks, MeasuredK) and ks.k_max == 4 and ks.steps > 0
    generate(lm, "To be, or not to be", GenerationConfig(max_tokens=6), draft=draft)
    assert draft.k_policy is ks and ks.steps > 0


def test_lookup_proposes_what_followed_the_latest_match():
    d = LookupDraft(ngram=2, k=3)
    assert d.propose([1, 2, 3, 4, 9, 1, 2, 5, 6, 7, 1, 2], 3).tokens == [5, 6, 7]
    assert d.propose([1, 2, 3, 4, 9, 8, 2], 3).tokens == [3, 4, 9]  # no bigram: the unigram 2
    assert d.propose([1, 2, 3], 3).tokens == []


def test_bad_specs_and_a_foreign_tokenizer_are_refused(tiny, tiny_llama_dir, tmp_path):
    lm = tiny["ort"]
    for spec, words in [("nope", "unknown draft source"), ("lookup:size=3", "unknown option"),
                        ("lookup:k=zero", "k must be int"), ("lookup:k=0", "positive integer"),
                        ("lookup:adapt=maybe", "adapt must be boolean"),
                        ("model:", "names no model")]:
        with pytest.raises(EdgewiseError, match=words) as e:
            generate(lm, PROMPT, GenerationConfig(max_tokens=4), draft=spec)
        assert "\n" not in str(e.value)
    assert sorted(DRAFTS.names()) == ["lookup", "model"]
    # Same vocabulary size, other ids: the tiny tokenizer with its ordinary tokens' ids reversed.
    foreign = write_tiny_llama(tmp_path / "foreign", seed=2)
    tj = json.loads((foreign / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    plain_ids = sorted(i for i in vocab.values() if i >= 3)
    flip = dict(zip(plain_ids, reversed(plain_ids)))
    tj["model"]["vocab"] = {t: flip.get(i, i) for t, i in vocab.items()}
    (foreign / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(EdgewiseError, match="does not share .* tokenizer") as e:
        generate(lm, PROMPT, GenerationConfig(max_tokens=4), draft=f"model:{foreign}")
    assert "\n" not in str(e.value)
    other = load_model(str(foreign), backend="ort", threads=1)
    with pytest.raises(EdgewiseError, match="does not share"):
        load_draft(ModelDraft(other), lm)


@pytest.fixture(scope="module")
def smollm2_fp32():
    return load_model("smollm2-135m", backend="ort", precision="fp32", threads=2)


@pytest.mark.integration
@pytest.mark.parametrize("draft", ["lookup", "model:smollm2-135m,precision=int4"])
def test_smollm2_greedy_output_is_the_same_with_a_draft(smollm2_fp32, draft):
    """The packaged SmolLM2 at fp32 on ort. fp32, because the quantized MatMulNBits kernels give a one-row pass
    other logits than a many-row one (up to 1.7 on `gguf`, docs/speculative.md), so a near tie may flip there."""
    lm = smollm2_fp32
    para = ("The lighthouse on Gull Island was built in 1871 to guard ships from the reef that lies two miles "
            "offshore. Its keeper, Martha Price, tended the lamp for forty years and kept a log of every storm.")
    prompt = f"Rewrite this paragraph in simpler words:\n\n{para}"
    cfg = GenerationConfig(max_tokens=32)
    plain, spec = generate(lm, prompt, cfg), generate(lm, prompt, cfg, draft=load_draft(draft, lm, threads=2))
    assert spec.token_ids == plain.token_ids and spec.text == plain.text
    assert spec.draft.accepted > 0


@pytest.mark.integration
def test_smollm2_gguf_exact_verifies_k_rows_as_k_steps_and_keeps_greedy_output():
    """The GGUF's own blocks in fp32 compute (`gguf-exact`): a k-row pass gives the logits of k one-row steps to
    fp32 rounding, so speculation keeps greedy output token for token on quantized weights too. (On `gguf`, int8
    activation rounding turns attention's last-bit differences between the two passes into logit differences
    of 0.6 and more: docs/speculative.md, "Limits".)"""
    lm = load_model("smollm2-135m", backend="ort", precision="gguf-exact", threads=2)
    assert lm.precision == "gguf-exact"
    para = ("Honeybees communicate the location of food with a waggle dance. The angle of the dance shows the "
            "direction of the food relative to the sun, and the length of the waggle run shows the distance.")
    prompt = f"Summarise this paragraph in two sentences:\n\n{para}"
    ids = prompt_ids(lm, prompt)
    head, extra = ids[:-6], ids[-6:]
    dec = lm.session()
    dec.start(len(ids) + 1)
    dec.append(head)
    rows = dec.append_all(extra)
    dec.rewind(len(head))
    one = np.stack([dec.append([t]) for t in extra])
    assert np.abs(rows - one).max() < 1e-3 * np.abs(one).max()
    cfg = GenerationConfig(max_tokens=48)
    plain, spec = generate(lm, prompt, cfg), generate(lm, prompt, cfg, draft=load_draft("lookup", lm, threads=2))
    assert spec.token_ids == plain.token_ids and spec.draft.accepted > 0


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="needs the [llamacpp] extra (llama-cpp-python; make bench-setup)")
def test_llamacpp_append_all_reads_every_row_and_lookup_runs():
    """llama.cpp's per-position logits through the batch (append_all), on the packaged SmolLM2 GGUF. Its batched
    kernels round differently from one-token ones too, so rows are checked against the same batch's last row and a
    one-by-one pass loosely; greedy equality is checked on fp32 ort above."""
    lm = load_model("smollm2-135m", backend="llamacpp", threads=2)
    dec = lm.session()
    ids = lm.tokenizer.encode("The lighthouse on Gull Island was built in 1871 to guard ships from the reef.")
    extra = lm.tokenizer.encode(" Its keeper, Martha Price, tended the lamp for forty years")
    dec.start(len(ids) + len(extra) + 1)
    dec.append(ids)
    rows = dec.append_all(extra)
    assert rows.shape == (len(extra), dec.n_vocab)
    assert dec.n_tokens() == len(ids) + len(extra) and dec.ids == tuple(ids + extra)
    dec.rewind(len(ids))
    np.testing.assert_allclose(dec.append(extra), rows[-1], atol=1e-3)  # the same batch: the same last row
    dec.rewind(len(ids))
    one = np.stack([dec.append([t]) for t in extra])
    assert (one.argmax(1) == rows.argmax(1)).mean() >= 0.8 and np.abs(one - rows).max() < 2.0
    r = generate(lm, "Repeat exactly: the cat sat on the mat, the cat sat on the mat.",
                 GenerationConfig(max_tokens=16), draft="lookup")
    assert r.draft.steps >= 1 and len(r.token_ids) >= 1


def test_run_draft_reports_acceptance_and_refuses_a_bad_spec(tiny_llama_dir):
    import os
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgewise", "run", str(tiny_llama_dir), PROMPT, "--threads", "1",
                               "--max-tokens", "12", *args], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ))
    plain, spec = run("--json"), run("--json", "--draft", "lookup:ngram=2")
    assert plain.returncode == 0 and spec.returncode == 0, spec.stderr
    a, b = json.loads(plain.stdout), json.loads(spec.stdout)
    assert b["token_ids"] == a["token_ids"] and "draft" not in a
    assert b["draft"]["spec"] == "lookup:ngram=2" and b["draft"]["proposed"] >= b["draft"]["accepted"] >= 0
    streamed = run("--draft", "lookup")
    assert streamed.returncode == 0 and "accepted" in streamed.stderr and "tok/s" in streamed.stderr
    bad = run("--draft", "lookup:n=2")
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error")]
    assert bad.returncode == 2 and len(errors) == 1 and "unknown option 'n=2'" in errors[0]
