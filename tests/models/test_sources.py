"""Model references resolve to validated sources; every bad reference is one actionable line."""

import json
import shutil

import pytest

from edgewise import models
from edgewise.errors import CorruptModelError, ModelNotFoundError, OfflineError, UnsupportedModelError
from edgewise.models.bundle import write_bundle


def truncate(src, dst, keep=0.5):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def test_packaged_aliases_resolve():
    s = models.load("smollm2-135m")
    assert s.kind == "gguf" and s.task == "causal-lm" and s.arch == "llama" and s.path.suffix == ".gguf"
    e = models.load("minilm-l6")
    assert e.kind == "hf" and e.task == "encoder" and e.arch == "bert"


def test_hf_folder_and_file_references(tiny_llama_dir, tiny_bert_dir):
    assert models.load(str(tiny_llama_dir)).task == "causal-lm"
    assert models.load(str(tiny_bert_dir)).task == "encoder"
    assert models.load(str(tiny_llama_dir / "config.json")).path == tiny_llama_dir


def test_missing_path():
    with pytest.raises(ModelNotFoundError, match="no such file"):
        models.load("/nonexistent/model.gguf")


def test_unknown_alias_lists_known_ones():
    with pytest.raises(ModelNotFoundError, match="smollm2-135m"):
        models.load("not-a-model")


def test_hub_id_offline_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE=1"):
        models.load("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_hub_id_resolves_from_local_cache(monkeypatch, tmp_path, tiny_llama_dir):
    """The real hub code path: a snapshot already in the HF cache loads offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--acme--tiny-llama"
    snap = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_llama_dir, snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    s = models.load("acme/tiny-llama")
    assert s.task == "causal-lm" and s.extra["hub_id"] == "acme/tiny-llama"


def test_truncated_safetensors(tiny_llama_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_llama_dir, bad)
    truncate(tiny_llama_dir / "model.safetensors", bad / "model.safetensors")
    with pytest.raises(CorruptModelError, match="truncated safetensors"):
        models.load(str(bad))


def test_truncated_gguf(tmp_path):
    src = models.load("smollm2-135m").path
    bad = tmp_path / "cut.gguf"
    with open(src, "rb") as f:
        bad.write_bytes(f.read(20_000_000))
    with pytest.raises(CorruptModelError, match="GGUF"):
        models.load(str(bad))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf at all")
    with pytest.raises(CorruptModelError, match="not a GGUF"):
        models.load(str(garbage))


def test_truncated_onnx(tmp_path, tiny_bert_dir):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, 4])
    good = tmp_path / "enc"
    good.mkdir()
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["input_ids"], ["y"])], "g", [x], [y])),
              good / "model.onnx")
    shutil.copy(tiny_bert_dir / "tokenizer.json", good)
    assert models.load(str(good / "model.onnx")).task == "encoder"
    cut = tmp_path / "cut.onnx"
    truncate(good / "model.onnx", cut, keep=0.6)
    with pytest.raises(CorruptModelError, match="ONNX"):
        models.load(str(cut))


def test_unsupported_architecture(tmp_path, tiny_llama_dir):
    d = tmp_path / "weird"
    shutil.copytree(tiny_llama_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "frobnicator"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedModelError, match="frobnicator"):
        models.load(str(d))


def test_folder_with_no_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        models.load(str(tmp_path))


def test_config_without_weights(tmp_path, tiny_llama_dir):
    d = tmp_path / "noweights"
    d.mkdir()
    shutil.copy(tiny_llama_dir / "config.json", d)
    with pytest.raises(ModelNotFoundError, match="no weights"):
        models.load(str(d))


def test_bundle_roundtrip_and_tamper_refusal(tmp_path, tiny_llama_dir):
    out = write_bundle(tiny_llama_dir, tmp_path / "bundle", name="tiny", provenance={"from": "test"},
                       options={}, metrics={})
    s = models.load(str(out))
    assert s.task == "causal-lm" and s.extra["manifest"]["name"] == "tiny"
    with pytest.raises(ValueError, match="not empty"):
        write_bundle(tiny_llama_dir, out, name="tiny", provenance={}, options={}, metrics={})
    cfg = out / "model" / "config.json"
    cfg.write_text(cfg.read_text().replace("64", "65", 1))
    with pytest.raises(CorruptModelError, match="sha256"):
        models.load(str(out))
