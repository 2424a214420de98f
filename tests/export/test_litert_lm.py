"""The .tflite causal-LM export: our torch Llama against transformers, then a real conversion (in the converter
venv, `make litert-converter`) run through the litert backend against the torch backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgewise.errors import BackendUnavailableError, EdgewiseError
from edgewise.export.litert_convert_script import CachedLlama, check_against_hf
from edgewise.export.litert_lm import LiteRTExport, converter_python, export_litert_lm, export_report


@pytest.fixture(scope="module")
def tied_llama_dir(tmp_path_factory):
    """Two layers, hidden 64, GQA 4/2, a tied head (as the keyboard's student) and a non-default rope_theta."""
    from tests.conftest import write_tiny_llama

    return write_tiny_llama(tmp_path_factory.mktemp("tied-llama"), seed=1, max_position_embeddings=128,
                            rope_parameters={"rope_type": "default", "rope_theta": 5000.0}, tie_word_embeddings=True)


@pytest.mark.parametrize("chunks", [[1], [1, 4, 16]])
def test_torch_reimplementation_matches_transformers(tied_llama_dir, tiny_llama_dir, chunks):
    rng = np.random.default_rng(0)
    for folder in (tied_llama_dir, tiny_llama_dir):  # tied head and rope_theta 5000; untied head
        model = CachedLlama.from_folder(folder)
        ids = rng.integers(0, model.s.vocab, 37).tolist()
        assert check_against_hf(model, folder, ids, chunks, max_len=64) < 1e-4


def test_export_config_is_validated():
    with pytest.raises(EdgewiseError, match="--quantize"):
        LiteRTExport(quantize="int4")
    with pytest.raises(EdgewiseError, match="include 1"):
        LiteRTExport(chunks=(4, 16))


def test_missing_converter_is_one_actionable_line(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEWISE_LITERT_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(BackendUnavailableError, match="make litert-converter"):
        export_litert_lm(tiny_llama_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def exported(tied_llama_dir, tmp_path_factory):
    try:
        converter_python()
    except BackendUnavailableError as e:
        pytest.skip(f"no .tflite converter: {e}")
    out = tmp_path_factory.mktemp("tflite") / "tied"
    return export_litert_lm(tied_llama_dir, out, LiteRTExport(max_len=64, chunks=(1, 4)), timeout=600)


def test_export_writes_a_checked_folder(exported):
    names = {p.name for p in exported.iterdir()}
    assert {"model.tflite", "litert_lm.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "config.json" not in names  # it would make the folder resolve as an HF model
    report = export_report(exported)
    assert report["weights"] == "fp32" and report["max_len"] == 64
    assert report["signatures"] == {"decode_1": 1, "decode_4": 4}
    assert report["torch_vs_transformers"] < 1e-4 and report["max_abs_logit_diff"] < 1e-4
    assert 30 < report["bits_per_weight"] < 40  # fp32 weights plus the graph


def test_litert_decoder_matches_torch_through_append_and_rewind(exported, tied_llama_dir):
    from edgewise.runtime import load_model

    lm = load_model(exported, backend="litert", threads=1)
    ref = load_model(tied_llama_dir, backend="torch", threads=1)
    assert lm.backend == "litert" and lm.precision == "fp32" and lm.context_length == 64
    assert lm.tokenizer.encode("the quick fox") == ref.tokenizer.encode("the quick fox")
    d, r = lm.decoder, ref.decoder
    ids = lm.tokenizer.encode("To be, or not to be, that is the question.")
    d.start(64)
    r.start(64)
    # 7 tokens: a padded 4-chunk, then ones; single steps; a rewind into the middle and a different tail.
    np.testing.assert_allclose(d.append(ids[:7]), r.append(ids[:7]), atol=1e-4)
    for t in ids[7:10]:
        np.testing.assert_allclose(d.append([t]), r.append([t]), atol=1e-4)
    d.rewind(5)
    r.rewind(5)
    assert d.n_tokens() == 5 and d.ids == tuple(ids[:5])
    np.testing.assert_allclose(d.append([3, 9, 27]), r.append([3, 9, 27]), atol=1e-4)
    # TrackedSession.sync keeps the common prefix and runs only the rest.
    got = d.sync(ids[:5] + [11, 12], 64)
    assert d.reused == 5
    r.rewind(5)
    np.testing.assert_allclose(got, r.append([11, 12]), atol=1e-4)
    np.testing.assert_allclose(d.score(ids), ref.decoder.score(ids), atol=1e-4)


def test_generate_and_cli_run_the_tflite(exported, tied_llama_dir, capsys):
    from edgewise.cli import main
    from edgewise.runtime import GenerationConfig, generate, load_model

    cfg = GenerationConfig(max_tokens=12)
    lm = load_model(exported / "model.tflite", backend="litert")
    ref = load_model(tied_llama_dir, backend="torch")
    got, want = (generate(m, "The capital", cfg, chat=False).token_ids for m in (lm, ref))
    assert got == want
    main(["run", str(exported / "model.tflite"), "The capital", "--raw", "--max-tokens", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "litert" and out["tokens"] == 5
