"""`edgewise privacy train`: the recipe, the folder it may replace, and a real (tiny) training run whose export
goes through edgewise.staging and loads as a tagger."""

import json

import numpy as np
import pytest

from edgewise.cli import main
from edgewise.errors import EdgewiseError
from edgewise.privacy.tagger import PiiTagger
from edgewise.privacy.train import LABELS, PiiTrainConfig, token_labels

# A student small enough to train and export in seconds on a loaded 2-core machine; templates only (no corpus).
TINY = """[pii-tagger]
natural = ""
n_train = 16
n_heldout = 4
hidden = 16
layers = 1
heads = 2
ffn = 32
epochs = 1
batch = 8
threads = 1
"""


def _recipe(tmp_path, text=TINY):
    p = tmp_path / "tiny.toml"
    p.write_text(text)
    return p


def test_recipe_errors_name_the_fix(tmp_path):
    with pytest.raises(EdgewiseError, match="not found"):
        PiiTrainConfig.from_file(tmp_path / "missing.toml")
    with pytest.raises(EdgewiseError, match="no \\[pii-tagger\\] table"):
        PiiTrainConfig.from_file(_recipe(tmp_path, "[other]\nx = 1\n"))
    with pytest.raises(EdgewiseError, match="unknown key 'hiden'"):
        PiiTrainConfig.from_file(_recipe(tmp_path, "[pii-tagger]\nhiden = 16\n"))
    with pytest.raises(EdgewiseError, match="divisible by heads"):
        PiiTrainConfig.from_file(_recipe(tmp_path, "[pii-tagger]\nhidden = 18\nheads = 4\n"))
    cfg = PiiTrainConfig.from_file(_recipe(tmp_path))
    assert (cfg.hidden, cfg.layers, cfg.natural) == (16, 1, "")


def test_token_labels_are_bio_over_word_pieces():
    text = "Ana Lima at 12 Rua Augusta, mail a@b.co"
    spans = [(0, 8, "person"), (12, 26, "street_address"), (33, 39, "email")]  # e-mail is the patterns' job: O
    offsets = [(0, 3), (4, 8), (9, 11), (12, 14), (15, 18), (19, 26), (26, 27), (28, 32), (33, 39)]
    got = [LABELS[i] for i in token_labels(text, spans, offsets)]
    assert got == ["B-person", "I-person", "O", "B-street_address", "I-street_address", "I-street_address", "O",
                   "O", "O"]


def test_train_refuses_a_folder_that_is_not_a_tagger_and_leaves_it(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as e:  # refused before any training starts
        main(["privacy", "train", "--recipe", str(_recipe(tmp_path)), "--out", str(out)])
    assert e.value.code == 2 and "is not a PII tagger folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_a_failed_run_leaves_the_old_tagger_in_place(tmp_path, capsys):
    out = tmp_path / "tagger"
    out.mkdir()
    (out / "tagger.json").write_text("{}")
    recipe = _recipe(tmp_path, TINY + 'teacher = "no_such_packaged_model"\n')
    with pytest.raises(SystemExit) as e:
        main(["privacy", "train", "--recipe", str(recipe), "--out", str(out)])
    assert e.value.code == 2 and "no_such_packaged_model is not installed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tagger", "tiny.toml"]  # no staging folder left over
    assert (out / "tagger.json").read_text() == "{}"


def test_train_replaces_an_earlier_tagger_through_staging(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path / "home"))  # the ONNX export cache, kept out of the shared one
    out = tmp_path / "tagger"
    out.mkdir()
    (out / "tagger.json").write_text("{}")
    (out / "stale.bin").write_bytes(b"old")
    main(["privacy", "train", "--recipe", str(_recipe(tmp_path)), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["head.npz", "model.onnx", "tagger.json", "tokenizer.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "tagger", "tiny.toml"]  # staging renamed in
    meta = json.loads((out / "tagger.json").read_text())
    assert meta["labels"] == list(LABELS) and meta["recipe"]["hidden"] == 16 and meta["train_examples"] == 16
    assert meta["int8_bytes"] == (out / "model.onnx").stat().st_size
    tagger = PiiTagger.load(out)  # the exported encoder (task: encoder) runs as the router would run it
    p, enc = tagger.probs("Send it to Ana Lima, 12 Rua Augusta")
    assert p.shape == (len(enc.ids), len(LABELS)) and np.allclose(p.sum(-1), 1, atol=1e-5)
    assert isinstance(tagger("Send it to Ana Lima, 12 Rua Augusta"), list)
