"""lm-eval-harness interop on the tiny random-init Llama, offline: local task YAMLs over JSONL files in
tests/evaluate/data/lmeval. The adapter's log-likelihoods and generations equal an independent computation with the
runtime; `lmeval:TASK.yaml` keeps lm-eval's per-sample results as per-item outcomes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lm_eval", reason="needs the lmeval extra: pip install -e '.[lmeval]'")

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from edgewise.errors import EdgewiseError  # noqa: E402
from edgewise.evaluate import parse_task  # noqa: E402
from edgewise.evaluate.lmeval import EdgewiseLM  # noqa: E402
from edgewise.evaluate.lmeval_task import LmevalTask, task_config  # noqa: E402
from edgewise.numerics import log_softmax  # noqa: E402
from edgewise.runtime import load_model  # noqa: E402
from edgewise.runtime.api import forward_logits, generate  # noqa: E402
from edgewise.runtime.types import GenerationConfig  # noqa: E402

DATA = Path(__file__).parent / "data" / "lmeval"
QUIZ, SUMS = DATA / "quiz.yaml", DATA / "sums.yaml"


@pytest.fixture(scope="module")
def genai_dir(tiny_llama_dir):
    from edgewise.export.genai import build_genai
    from edgewise.models import load

    return build_genai(load(str(tiny_llama_dir)), "fp32")


@pytest.fixture(scope="module")
def model(genai_dir):
    return load_model(str(genai_dir), threads=1)


def run(task_yaml: Path, lm) -> dict:
    return simple_evaluate(model=lm, tasks=[task_config(task_yaml)], task_manager=TaskManager(include_defaults=False),
                           log_samples=True, bootstrap_iters=0)


def reference_loglikelihood(model, context: str, continuation: str) -> tuple[float, bool]:
    """lm-eval's split (trailing context spaces move to the continuation; the whole string is encoded and cut at the
    context's length), scored in one pass from an empty cache."""
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    enc = model.tokenizer.encode
    ctx = enc(context)
    cont = enc(context + continuation)[len(ctx):]
    lp = log_softmax(forward_logits(model, ctx + cont)[len(ctx) - 1:-1])
    return float(sum(lp[i, t] for i, t in enumerate(cont))), all(lp[i].argmax() == t for i, t in enumerate(cont))


def test_multiple_choice_loglikelihoods_equal_the_runtime(genai_dir, model):
    # Built from a model_args string, as `--model_args` gives it; batch_size and device are lm-eval's, ignored.
    res = simple_evaluate(model="edgewise", model_args=f"model={genai_dir},backend=ort,precision=fp32,threads=1",
                          tasks=[task_config(QUIZ)], task_manager=TaskManager(include_defaults=False),
                          log_samples=True, bootstrap_iters=0, batch_size=1, device="cpu")
    samples = res["samples"]["edgewise_quiz"]
    assert len(samples) == 8 and all(len(s["arguments"]) == 4 for s in samples)
    picks = []
    for s in samples:
        got = [r[0] for r in s["resps"]]
        want = [reference_loglikelihood(model, ctx, cont) for ctx, cont in s["arguments"]]
        np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], atol=1e-4, rtol=0)
        assert [g[1] for g in got] == [w[1] for w in want]
        picks.append(int(np.argmax([w[0] for w in want])))
        assert s["acc"] == float(picks[-1] == s["target"])
    assert res["results"]["edgewise_quiz"]["acc,none"] == pytest.approx(np.mean([s["acc"] for s in samples]))


def test_generate_until_equals_greedy_generation(model):
    res = run(SUMS, EdgewiseLM(model, quiet=True))
    samples = res["samples"]["edgewise_sums"]
    assert len(samples) == 4
    for s in samples:
        (context, kwargs), = s["arguments"]
        assert kwargs["until"] == ["\n", "."] and kwargs["max_gen_toks"] == 8
        want = generate(model, model.tokenizer.encode(context), GenerationConfig(max_tokens=8, stop=("\n", ".")),
                        chat=False).text
        assert s["resps"] == [[want]]
        assert "\n" not in want and "." not in want


def test_rolling_loglikelihood_is_the_text_log_prob(model):
    lm = EdgewiseLM(model, quiet=True)
    text = "The quick brown fox jumps over the lazy dog."
    ids = model.tokenizer.encode(text)
    req = Instance(request_type="loglikelihood_rolling", doc={}, arguments=(text,), idx=0)
    (one_window,) = lm.loglikelihood_rolling([req])
    full = [lm.prefix_token_id] + ids  # one window: the whole text after the prefix token
    lp = log_softmax(forward_logits(model, full[:-1]))
    assert one_window == pytest.approx(float(lp[np.arange(len(ids)), ids].sum()), abs=1e-4)
    # Short windows: every token is still scored once, with less context, so the total changes but stays finite.
    (windowed,) = EdgewiseLM(model, quiet=True, max_length=8).loglikelihood_rolling([req])
    assert np.isfinite(windowed) and windowed < 0 and windowed != pytest.approx(one_window, abs=1e-3)


def test_model_args_errors_are_one_line(model):
    for kwargs, msg in [({"model": "x", "precision": "int3"}, "precision"),
                        ({"model": "x", "threads": 0}, "threads"),
                        ({"model": "x", "colour": "red"}, r"unknown model args \['colour'\]"),
                        ({"pretrained": "x", "precision": "int3"}, "precision"),  # lm-eval's name for model
                        ({"model": model, "backend": "torch"}, "already loaded")]:
        with pytest.raises(EdgewiseError, match=msg) as e:
            EdgewiseLM(**kwargs)
        assert "\n" not in str(e.value)


def test_lmeval_task_kind_keeps_per_item_outcomes(model, tiny_llama_dir):
    task = parse_task(f"lmeval:{QUIZ}")
    assert isinstance(task, LmevalTask) and task.n_items == 8 and task.metric == "acc" and task.norm
    ref = task.reference(model)
    assert ref.item_ids[:2] == ["capital-france", "sky-colour"] and len(ref.item_ids) == 8
    # Independently: the option with the highest summed log-prob, per item, as the runtime scores it.
    rows = [json.loads(x) for x in (DATA / "quiz.jsonl").read_text().splitlines()]
    want = []
    for r in rows:
        lls = [reference_loglikelihood(model, f"Question: {r['question']}\nAnswer:", " " + c)[0] for c in r["choices"]]
        want.append(float(np.argmax(lls) == r["answer"]))
    assert ref.outcomes.tolist() == want
    assert task.evaluate(model, ref)["outcomes"] == want  # the full model again: its reference results

    # Another engine on the same weights (transformers, fp32) is a real second run: same items, same verdicts.
    variant = load_model(str(tiny_llama_dir), backend="torch")
    m = task.evaluate(variant, ref)
    assert m["n_items"] == 8 and m["outcomes"] == want and len(m["outcomes_norm"]) == 8
    assert m["accuracy"] == pytest.approx(np.mean(want)) and 0 <= m["accuracy_norm"] <= 1
    assert all(isinstance(m[k], float) for k in ("accuracy", "accuracy_norm"))

    gen = parse_task(f"lmeval:{SUMS}")
    assert gen.metric == "exact_match" and not gen.norm
    g = gen.evaluate(model, gen.reference(model))
    assert g["n_items"] == 4 and len(g["outcomes"]) == 4 and set(g["outcomes"]) <= {0.0, 1.0}
    assert "accuracy_norm" not in g


def test_lmeval_task_bad_files_are_one_line_errors(tmp_path, monkeypatch):
    bleu = tmp_path / "bleu.yaml"
    bleu.write_text(SUMS.read_text().replace("sums.jsonl", str(DATA / "sums.jsonl"))
                    .replace("metric: exact_match", "metric: bleu"))
    (tmp_path / "notes.txt").write_text("hello")
    cases = {f"lmeval:{tmp_path / 'missing.yaml'}": "does not exist",
             f"lmeval:{tmp_path / 'notes.txt'}": "not a .yaml",
             f"lmeval:{bleu}": "acc or exact_match"}
    for spec, msg in cases.items():
        with pytest.raises(EdgewiseError, match=msg) as e:
            parse_task(spec)
        assert "\n" not in str(e.value)
    # Without lm-eval installed, the task kind names the extra to install.
    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(EdgewiseError, match=r"\[lmeval\]") as e:
        parse_task(f"lmeval:{QUIZ}")
    assert "\n" not in str(e.value)


def test_the_lm_eval_cli_runs_the_edgewise_model(genai_dir, model, tmp_path):
    """`python -m edgewise.evaluate.lmeval` is lm-eval's own CLI with `edgewise` registered. Its data_files are read
    relative to the working directory, as lm-eval reads them."""
    out = tmp_path / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "edgewise.evaluate.lmeval", "--model", "edgewise",
                        "--model_args", f"model={genai_dir},precision=fp32,threads=1", "--tasks", str(QUIZ),
                        "--output_path", str(out)], cwd=DATA, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (result,) = out.rglob("results_*.json")
    acc = json.loads(result.read_text())["results"]["edgewise_quiz"]["acc,none"]
    assert acc == pytest.approx(np.mean(parse_task(f"lmeval:{QUIZ}").reference(model).outcomes))
