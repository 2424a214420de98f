"""Tasks: bad files fail as one line; metrics agree with plain references; the full model scores itself perfectly."""

import json

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.evaluate import check_model_fits, parse_task, relative_drop
from edgewise.evaluate.embedding import fit_ridge, macro_f1, predict
from edgewise.evaluate.lm import windows
from edgewise.models.source import CAUSAL_LM, ENCODER
from edgewise.runtime import load_model

TEXT = ("The quick brown fox jumps over the lazy dog. What is the capital of France? The capital of France is Paris. "
        "Edge devices run small language models locally, offline and privately. To be, or not to be. ") * 6


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("task") / "notes.txt"
    p.write_text(TEXT)
    return p


@pytest.fixture(scope="module")
def models(tiny_llama_dir):
    from edgewise.export.genai import build_genai
    from edgewise.models import load

    src = load(str(tiny_llama_dir))
    return {"ort": load_model(str(build_genai(src, "fp32"))), "torch": load_model(src, backend="torch"),
            "int8": load_model(str(build_genai(src, "int8")))}


def test_bad_task_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "bin.txt").write_bytes(b"GGUF\0\0\1\2binary")
    (tmp_path / "bad.jsonl").write_text('{"query": "q"}\n')
    (tmp_path / "notjson.jsonl").write_text("query,positive\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    cases = {
        "perplexity:/nonexistent/file.txt": "does not exist",
        f"perplexity:{tmp_path / 'empty.txt'}": "empty",
        f"perplexity:{tmp_path / 'bin.txt'}": "binary",
        f"perplexity:{tmp_path / 'latin1.txt'}": "UTF-8",
        f"perplexity:{tmp_path}": "folder",
        f"retrieval:{tmp_path / 'bad.jsonl'}": "lacks 'positive'",
        f"retrieval:{tmp_path / 'notjson.jsonl'}": "not valid JSON",
        f"sentiment:{tmp_path / 'bad.jsonl'}": "unknown task kind",
        "perplexity": "KIND:FILE",
    }
    for spec, msg in cases.items():
        with pytest.raises(EdgewiseError, match=msg) as e:
            parse_task(spec)
        assert "\n" not in str(e.value)


def test_task_kind_must_fit_the_model(text_file, tmp_path):
    (tmp_path / "r.jsonl").write_text(json.dumps({"query": "a", "positive": "b"}) + "\n" +
                                      json.dumps({"query": "c", "positive": "d"}) + "\n")
    with pytest.raises(EdgewiseError, match="embedding model"):
        check_model_fits(parse_task(f"retrieval:{tmp_path / 'r.jsonl'}"), CAUSAL_LM, "smollm2-135m")
    with pytest.raises(EdgewiseError, match="language model"):
        check_model_fits(parse_task(f"perplexity:{text_file}"), ENCODER, "minilm-l6")


def test_windows_predict_every_token_once():
    for n, w, s in [(10, 4, 3), (100, 32, 24), (7, 16, 12), (64, 16, 16)]:
        predicted = []
        for win in windows(n, w, s):
            predicted += list(range(win.start + win.first + 1, win.start + win.stop + 1))
            assert win.end - win.start <= w
        assert predicted == list(range(1, n))


def test_perplexity_matches_a_plain_torch_reference(models, text_file):
    import torch

    task = parse_task(f"perplexity:{text_file}")
    lm = models["torch"]
    ref = task.reference(models["ort"])
    m = task.evaluate(lm, ref)
    # Plain reference: mean next-token NLL over the same windows, straight from the HF model.
    nll = []
    for win in ref.wins:
        ids = torch.tensor([ref.ids[win.start:win.end]])
        with torch.no_grad():
            lp = torch.log_softmax(lm.decoder.model(ids).logits[0].double(), -1)
        tgt = torch.tensor(ref.ids[win.start + win.first + 1:win.start + win.stop + 1])
        nll += (-lp[win.first:win.stop].gather(1, tgt[:, None])[:, 0]).tolist()
    assert m["tokens"] == len(nll)
    assert m["perplexity"] == pytest.approx(float(np.exp(np.mean(nll))), rel=1e-3)
    assert m["kld"] < 1e-3 and m["same_top_token"] > 0.99  # torch and onnxruntime compute the same model


def test_full_model_against_itself_and_a_quantized_variant(models, text_file):
    task = parse_task(f"perplexity:{text_file}")
    ref = task.reference(models["ort"])
    same = task.evaluate(models["ort"], ref)
    assert same["kld"] == pytest.approx(0, abs=1e-4) and same["same_top_token"] == 1.0
    q = task.evaluate(models["int8"], ref)
    assert 0 < q["kld"] < 0.1 and relative_drop(task, q["perplexity"], same["perplexity"]) < 0.05


def test_nextword_scores_whole_words(models, text_file):
    task = parse_task(f"nextword:{text_file}")
    ref = task.reference(models["ort"])
    m = task.evaluate(models["ort"], ref)
    assert m["words"] > 50 and 0 <= m["top1"] <= m["top3"] <= 1 and m["same_top_token"] == 1.0


def test_retrieval_and_classify_on_an_encoder(tiny_bert_dir, tmp_path):
    lm = load_model(str(tiny_bert_dir), backend="torch")
    pairs = [{"query": f"question about topic {w}", "positive": f"a long answer all about {w} and more {w}"}
             for w in ["apples", "rivers", "engines", "music", "winter", "stars"]]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(p) for p in pairs))
    task = parse_task(f"retrieval:{tmp_path / 'r.jsonl'}")
    m = task.evaluate(lm, task.reference(lm))
    assert m["cosine_to_full"] == pytest.approx(1.0, abs=1e-5) and m["recall@1"] <= m["recall@5"] <= 1
    rows = [{"text": t, "label": lab} for lab, ts in {"fruit": ["apple pie", "ripe banana", "sweet cherry"],
                                                       "weather": ["cold snow", "heavy rain", "strong wind"]}.items()
            for t in ts]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = parse_task(f"classify:{tmp_path / 'c.jsonl'}")
    m = task.evaluate(lm, task.reference(lm))
    assert m["agreement_with_full"] == 1.0 and 0 <= m["accuracy"] <= 1 and m["examples"] == 6
    with pytest.raises(EdgewiseError, match="at least 2"):
        (tmp_path / "one.jsonl").write_text(json.dumps({"text": "a", "label": "x"}))
        parse_task(f"classify:{tmp_path / 'one.jsonl'}")


def test_ridge_head_and_macro_f1_against_hand_figures():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.1, (20, 4)) + [1, 0, 0, 0], rng.normal(0, 0.1, (20, 4)) + [0, 1, 0, 0]])
    y = np.array([0] * 20 + [1] * 20)
    assert (predict(fit_ridge(x, y, 2), x) == y).all()
    # 2 classes: class 0 has tp=1 fp=1 fn=1 -> F1 0.5; class 1 has tp=1 fp=1 fn=1 -> 0.5
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 2) == pytest.approx(0.5)
