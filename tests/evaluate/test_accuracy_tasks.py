"""The choice and generate task kinds on tiny models: log-likelihoods equal a brute-force pass over the whole
sequence, the prompt runs once per item, generated answers are scored by their item's rule, and the contract the
optimizer reads (per-item outcomes, ids, metrics) holds."""

import json
import re

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.evaluate import check_model_fits, parse_task
from edgewise.evaluate.accuracy import encode_options, option_logprobs, unique_ids
from edgewise.evaluate.answers import normalize
from edgewise.models.source import CAUSAL_LM, ENCODER
from edgewise.numerics import log_softmax
from edgewise.progress import Progress
from edgewise.runtime import GenerationConfig, generate, load_model
from edgewise.runtime.api import forward_logits

CHOICE_ROWS = [
    {"id": "fox", "prompt": "The quick brown fox jumps over the", "options": ["lazy dog.", "capital of France",
                                                                          "question"], "answer": 0},
    {"id": "paris", "prompt": "What is the capital of France? The capital of France is",
     "options": ["Paris.", "Edge devices run small language models", "To be"], "answer": 0},
    # A context ending in a space: lm-eval moves the space into every continuation.
    {"id": "be", "prompt": "To be, or not to be, that is the ", "options": ["question.", "fox", "zebra crossing"],
     "answer": "question."},
    {"prompt": "Edge devices run small language models", "options": ["locally, offline and privately.", "Paris"],
     "answer": 0},
]


@pytest.fixture(scope="module")
def models(tiny_llama_dir):
    from edgewise.export.genai import build_genai
    from edgewise.models import load

    src = load(str(tiny_llama_dir))
    return {"torch": load_model(src, backend="torch"), "ort": load_model(str(build_genai(src, "fp32")))}


@pytest.fixture
def choice_file(tmp_path):
    f = tmp_path / "quiz.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in CHOICE_ROWS))
    return f


def brute_force(model, ctx: list[int], cont: list[int]) -> float:
    """Summed log-prob of `cont` after `ctx` from one pass over the whole sequence, no cache reuse."""
    lp = log_softmax(forward_logits(model, ctx + cont)).astype(np.float64)
    return float(sum(lp[len(ctx) - 1 + j, t] for j, t in enumerate(cont)))


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_choice_log_likelihoods_equal_a_full_sequence_pass(models, choice_file, backend):
    model = models[backend]
    task = parse_task(f"choice:{choice_file}")
    expected_acc, expected_norm = [], []
    for it in task.items:
        ctx, conts = encode_options(model, it.context, it.options)
        # lm-eval's split: context and continuation encoded as one text, cut at the context's length
        text = it.context.rstrip() + it.context[len(it.context.rstrip()):] + " "
        for o, c in zip(it.options, conts):
            assert model.tokenizer.encode(text + o)[len(ctx):] == c
        got = option_logprobs(model, ctx, conts)
        want = np.array([brute_force(model, ctx, c) for c in conts])
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
        nbytes = np.array([len(o.encode()) for o in it.options], float)
        expected_acc.append(float(np.argmax(want) == it.gold))
        expected_norm.append(float(np.argmax(want / nbytes) == it.gold))
    ref = task.reference(model)
    assert ref.metrics["outcomes"] == expected_acc and ref.metrics["outcomes_norm"] == expected_norm
    assert ref.metrics["accuracy"] == pytest.approx(np.mean(expected_acc))
    assert ref.metrics["accuracy_norm"] == pytest.approx(np.mean(expected_norm))


class CountingEngine:
    """The real engine, with a record of every call that moves its KV cache."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def start(self, n):
        self.calls.append(("start", n))
        return self.engine.start(n)

    def append(self, ids):
        self.calls.append(("append", list(ids)))
        return self.engine.append(ids)

    def append_all(self, ids):
        self.calls.append(("append_all", list(ids)))
        return self.engine.append_all(ids)

    def rewind(self, n):
        self.calls.append(("rewind", n))
        return self.engine.rewind(n)


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_the_prompt_runs_once_and_its_cache_serves_every_option(models, backend):
    model = models[backend]
    ctx, conts = encode_options(model, "The quick brown fox jumps over the",
                                ("lazy dog.", "capital of France", "Paris", "question"))
    assert len(ctx) > 3 and max(map(len, conts)) > 2  # multi-token options, so the rewinds matter
    spy = CountingEngine(model.decoder.engine)
    model.decoder.engine = spy
    try:
        model.decoder.start(8)  # an empty cache: nothing to share with an earlier item
        spy.calls.clear()
        got = option_logprobs(model, ctx, conts)
        calls, spy.calls = spy.calls, []
        # The next item shares the first tokens of this one's context: only the rest runs.
        ctx2, conts2 = encode_options(model, "The quick brown fox jumps over the lazy", ("dog.", "fox"))
        got2 = option_logprobs(model, ctx2, conts2)
    finally:
        model.decoder.engine = spy.engine
    appends = [ids for op, ids in calls if op == "append"]
    option_passes = [ids for op, ids in calls if op == "append_all"]
    assert [op for op, _ in calls].count("start") == 1
    assert appends == [ctx]  # the prompt once ...
    # ... then one pass per multi-token option, over all its tokens but the last
    assert option_passes == [c[:-1] for c in conts if len(c) > 1]
    assert [n for op, n in calls if op == "rewind"] == [len(ctx)] * sum(len(c) > 1 for c in conts)
    np.testing.assert_allclose(got, [brute_force(model, ctx, c) for c in conts], atol=1e-4, rtol=0)
    shared = 0
    while shared < min(len(ctx), len(ctx2)) and ctx[shared] == ctx2[shared]:
        shared += 1
    assert shared > 3 and "start" not in [op for op, _ in spy.calls]
    assert [ids for op, ids in spy.calls if op == "append"][0] == ctx2[shared:]
    np.testing.assert_allclose(got2, [brute_force(model, ctx2, c) for c in conts2], atol=1e-4, rtol=0)


def test_the_contract_the_optimizer_reads(models, choice_file):
    task = parse_task(f"choice:{choice_file}")
    assert (task.kind, task.primary, task.higher_is_better, task.needs, task.per_item) == \
        ("choice", "accuracy", True, CAUSAL_LM, True)
    full, other = models["torch"], models["ort"]
    ref = task.reference(full)
    assert isinstance(ref.outcomes, np.ndarray) and ref.outcomes.dtype == np.float64
    assert ref.outcomes.shape == (4,) and set(ref.outcomes) <= {0.0, 1.0}
    assert ref.item_ids[:3] == ["fox", "paris", "be"] and len(set(ref.item_ids)) == 4
    m = task.evaluate(other, ref)
    assert set(m) >= {"accuracy", "accuracy_norm", "n_items", "outcomes", "outcomes_norm", "same_choice"}
    assert m["n_items"] == 4 and all(isinstance(x, float) for x in m["outcomes"] + m["outcomes_norm"])
    assert m["accuracy"] == pytest.approx(np.mean(m["outcomes"]))
    # The same weights on another backend pick the same options.
    assert m["outcomes"] == ref.metrics["outcomes"] and m["same_choice"] == 1.0
    # The full model evaluated again (optimize's "fp32" row) gives its reference results.
    again = task.evaluate(full, ref)
    assert again["outcomes"] == list(ref.outcomes) and again["same_choice"] == 1.0
    json.dumps(m)  # plain values: the report writes them as they are


def test_generate_scores_the_models_own_greedy_answers(models, tmp_path):
    model = models["ort"]
    prompts = ["What is the capital of France?", "To be, or not to be", "The quick brown fox"]
    answers = [generate(model, p, GenerationConfig(max_tokens=6)).text for p in prompts]
    assert all(a.strip() for a in answers)
    word = max(normalize(answers[1]).split(), key=len)
    rows = [
        {"defaults": {"max_tokens": 6}},
        {"id": "exact", "prompt": prompts[0], "reference": answers[0], "match": "exact"},
        {"id": "contains", "prompt": prompts[1], "reference": word, "match": "contains"},
        {"id": "regex", "prompt": prompts[2], "reference": "^" + re.escape(answers[2][:3]), "match": "regex"},
        {"id": "wrong-exact", "prompt": prompts[0], "reference": answers[0] + " zebra", "match": "exact"},
        {"id": "wrong-number", "prompt": prompts[1], "reference": "123456789", "match": "number"},
        {"id": "capped", "prompt": prompts[2], "reference": "x", "max_tokens": 2},
    ]
    f = tmp_path / "mine.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = parse_task(f"generate:{f}")
    assert task.per_item and task.primary == "accuracy"
    notes = []

    class Notes(Progress):
        def info(self, message):
            notes.append(message)

    task.progress = Notes()
    ref = task.reference(model)
    assert ref.item_ids == ["exact", "contains", "regex", "wrong-exact", "wrong-number", "capped"]
    assert list(ref.outcomes) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert ref.picks[:3] == answers
    capped = generate(model, prompts[2], GenerationConfig(max_tokens=2))
    assert ref.picks[5] == capped.text and capped.generation_tokens <= 2
    assert re.fullmatch(r"generate .*: 6/6 items, \d+\.\d\d items/s", notes[-1])
    m = task.evaluate(models["torch"], ref)  # the same weights, greedy: the same answers
    assert m["outcomes"] == list(ref.outcomes) and m["accuracy"] == 0.5 and m["same_answer"] == 1.0


def test_choice_and_generate_read_the_benchmark_formats(tmp_path):
    mmlu = tmp_path / "mmlu.jsonl"
    mmlu.write_text(json.dumps({"question": "2+2?", "choices": ["3", "4"], "answer": 1}) + "\n")
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    assert parse_task(f"choice:{mmlu}").items[0].options == ("A", "B")
    assert parse_task(f"generate:{mmlu}").items[0].kind == "choice"
    assert parse_task(f"generate:{gsm}").items[0].kind == "number"
    with pytest.raises(EdgewiseError, match=r"answered in words.*use generate:"):
        parse_task(f"choice:{gsm}")


def test_bad_rows_fail_when_the_task_is_parsed(tmp_path):
    f = tmp_path / "tasks.jsonl"
    rows = [{"prompt": "p", "options": ["a", "b"], "answer": 0}] * 6 + [{"prompt": "p", "options": ["a"], "answer": 0}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EdgewiseError, match=r"tasks.jsonl line 7: field 'options' must be a list of 2 to 10 ") as e:
        parse_task(f"choice:{f}")
    assert "\n" not in str(e.value)


def test_a_choice_task_needs_a_decoder(choice_file):
    task = parse_task(f"choice:{choice_file}")
    check_model_fits(task, CAUSAL_LM, "smollm2-135m")
    with pytest.raises(EdgewiseError, match="needs a language model"):
        check_model_fits(task, ENCODER, "minilm-l6")


def test_repeated_ids_are_made_distinct():
    assert unique_ids(["a", "b", "a", "a"]) == ["a", "b", "a#2", "a#3"]


@pytest.mark.integration
def test_smollm2_beats_chance_on_the_packaged_demo_task(tmp_path):
    from edgewise.evaluate.accuracy import DEMO_TASK

    rows = DEMO_TASK.read_text().splitlines()[:8]
    f = tmp_path / "gk8.jsonl"
    f.write_text("\n".join(rows) + "\n")
    task = parse_task(f"choice:{f}")
    ref = task.reference(load_model("smollm2-135m", backend="ort", threads=2))
    assert len(ref.outcomes) == 8
    # Chance is 2 of 8; the full set's figures are in docs/tasks.md.
    assert ref.metrics["accuracy"] >= 0.5 and ref.metrics["accuracy_norm"] >= 0.5
