"""`edgewise distill` on a tiny random-init teacher: loss falls, resume continues, Ctrl-C keeps the checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from edgewise.compress.distill import DistillConfig, distill, kd_loss, load_recipe
from edgewise.errors import EdgewiseError

TEXT = ("the cat sat on the mat and the dog sat on the log. " * 3 + "a bird sang in the tree near the house.\n") * 40
STUDENT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
           "num_key_value_heads": 1, "tie_word_embeddings": True}


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny Llama teacher with its own byte-level BPE tokenizer, saved as an HF folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("teacher")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>")
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(d)
    return d


@pytest.fixture()
def data_file(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text(TEXT)
    return p


def make_cfg(teacher_dir, data_file, tmp_path, **kw) -> DistillConfig:
    base = dict(teacher=str(teacher_dir), student=dict(STUDENT), data=[str(data_file)], out=str(tmp_path / "out"),
                work_dir=str(tmp_path / "work"), steps=12, seq_len=32, batch=4, lr=1e-2, warmup=2,
                checkpoint_every=4, teacher_dtype="float32", threads=1)
    base.update(kw)
    return DistillConfig(**base)


def test_distil_loss_falls_and_writes_a_loadable_folder(teacher_dir, data_file, tmp_path):
    res = distill(make_cfg(teacher_dir, data_file, tmp_path, steps=30), progress=False)
    first = sum(l for _, l in res.losses[:3]) / 3
    last = sum(l for _, l in res.losses[-3:]) / 3
    assert last < first - 0.5, res.losses
    for name in ("config.json", "model.safetensors", "tokenizer.json", "distill.json"):
        assert (res.out / name).is_file()
    from edgewise.runtime import load_model

    model = load_model(str(res.out), backend="torch")
    assert model.tokenizer is not None
    summary = json.loads((res.out / "distill.json").read_text())
    assert summary["steps"] == 30 and summary["params"] == res.params


def test_resume_continues_from_saved_step(teacher_dir, data_file, tmp_path):
    steps_seen = []
    distill(make_cfg(teacher_dir, data_file, tmp_path, steps=8), progress=False)
    # Asking for more steps on resume continues from the checkpoint at step 8, not from zero.
    res = distill(make_cfg(teacher_dir, data_file, tmp_path, steps=12, resume=True), progress=False,
                  on_step=lambda i: steps_seen.append(i.step))
    assert steps_seen == [9, 10, 11, 12]
    assert res.step == 12 and res.tokens == 12 * 4 * 32


def test_interrupt_keeps_checkpoint_and_resume_matches_uninterrupted(teacher_dir, data_file, tmp_path):
    def stop_at_6(info):
        if info.step == 6:
            raise KeyboardInterrupt

    cfg = make_cfg(teacher_dir, data_file, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        distill(cfg, progress=False, on_step=stop_at_6)
    state = torch.load(cfg.work_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6  # saved at the interrupted step boundary, not the last periodic one (4)
    with pytest.raises(EdgewiseError, match="--resume"):
        distill(cfg, progress=False)  # a fresh run never silently discards a checkpoint
    resumed = distill(make_cfg(teacher_dir, data_file, tmp_path / "a", resume=True), progress=False)
    straight = distill(make_cfg(teacher_dir, data_file, tmp_path / "b"), progress=False)
    # Batches and RNG are restored exactly, so the interrupted run ends where an uninterrupted one does.
    assert resumed.losses[-1][1] == pytest.approx(straight.losses[-1][1], abs=1e-3)


def test_reduced_vocab_and_teacher_samples(teacher_dir, data_file, tmp_path):
    res = distill(make_cfg(teacher_dir, data_file, tmp_path, steps=4, vocab_size=300, teacher_windows=3,
                           teacher_samples=2, sample_tokens=8), progress=False)
    cfg = json.loads((res.out / "config.json").read_text())
    assert 256 < cfg["vocab_size"] <= 300  # the closure of BPE merges may stop just short of the cap
    assert len((res.work / "teacher_samples.txt").read_text().splitlines()) == 2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(res.out)
    ids = tok("the cat sat on the mat")["input_ids"]
    assert max(ids) < cfg["vocab_size"] and tok.decode(ids) == "the cat sat on the mat"


def test_kd_loss_is_zero_kl_when_student_matches_teacher():
    logits = torch.randn(2, 5, 11)
    labels = torch.randint(0, 11, (2, 5))
    vals, idx = logits.topk(11, dim=-1)  # the full distribution: the student's own logits
    loss, ce, kl = kd_loss(logits, labels, vals.half(), idx.int(), torch.tensor([True, True]), 0.5, 2.0)
    assert float(kl) == pytest.approx(0.0, abs=1e-2)
    assert float(loss) == pytest.approx(0.5 * float(ce) + 0.5 * float(kl), rel=1e-4)


@pytest.mark.parametrize("bad, match", [
    ({"alpha": 1.5}, "alpha"), ({"temperature": 0}, "temperature"), ({"steps": 0}, "steps"),
    ({"student": {}}, "student"), ({"data": []}, "data"), ({"teacher_dtype": "int3"}, "teacher_dtype"),
    ({"student": {"model_type": "gpt2"}}, "llama"),
])
def test_bad_config_is_an_edgewise_error(bad, match, teacher_dir, data_file, tmp_path):
    with pytest.raises(EdgewiseError, match=match):
        make_cfg(teacher_dir, data_file, tmp_path, **bad)


def test_recipe_rejects_unknown_keys(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('[distill]\nteacher = "x"\nout = "o"\ndata = ["a"]\nstepz = 3\n[student]\nhidden_size = 8\n')
    with pytest.raises(EdgewiseError, match="stepz"):
        load_recipe(p)


def test_corpus_mix_expands_in_the_mix_order_and_an_unknown_mix_is_refused(monkeypatch):
    from pathlib import Path

    import edgewise.compress.distill.config as config
    from edgewise.compress.distill import expand_data
    from edgewise.data.corpora import KEYBOARD_V4_CORPORA

    # the corpora's files themselves need Debian packages: stand in for the lookup, keep the expansion real
    monkeypatch.setattr(config, "training_texts", lambda names: [Path(f"/c/{n}.txt") for n in names])
    assert expand_data(["corpus-mix:keyboard-v4", "x.txt"]) == [f"/c/{n}.txt" for n in KEYBOARD_V4_CORPORA] + ["x.txt"]
    with pytest.raises(EdgewiseError, match="unknown corpus mix 'nope'.*keyboard, keyboard-v4"):
        expand_data(["corpus-mix:nope"])


@pytest.mark.parametrize("name", ["keyboard-student.toml", "smollm2-draft.toml"])
def test_shipped_recipe_parses(name):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes" / name
    import tomllib

    doc = tomllib.loads(recipe.read_text())
    # Validate without touching the corpora (those need the Debian/PyPI packages).
    DistillConfig(**{**doc["distill"], "student": doc["student"], "data": ["x.txt"], "eval_text": None})


def test_cli_distils_from_flags_and_rejects_missing_ones(teacher_dir, data_file, tmp_path, capsys):
    from edgewise.cli import main

    student = tmp_path / "student.json"
    student.write_text(json.dumps({"model_type": "llama", **STUDENT}))
    with pytest.raises(SystemExit) as e:
        main(["distill", "--teacher", str(teacher_dir), "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "--student-config" in capsys.readouterr().err
    out = tmp_path / "cli-out"
    main(["distill", "--teacher", str(teacher_dir), "--student-config", str(student), "--data", str(data_file),
          "--out", str(out), "--steps", "3", "--seq-len", "32", "--batch", "2", "--threads", "1"])
    assert json.loads((out / "distill.json").read_text())["steps"] == 3


def test_kd_loss_with_the_teachers_normaliser_is_exact_for_a_top_k_slice():
    # A flat teacher over 500 tokens: its top-8 hold a small share of the mass. Renormalising those 8 would give a
    # student identical to its teacher a large KL; with the teacher's logsumexp the tail is one more bucket and the
    # KL is zero, and it grows when the student moves away.
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 500) * 0.3
    labels = torch.randint(0, 500, (2, 5))
    T = 2.0
    vals, idx = logits.topk(8, dim=-1)
    lse = torch.logsumexp(logits / T, dim=-1)
    has = torch.tensor([True, True])
    _, _, kl_exact = kd_loss(logits, labels, vals, idx.int(), has, 0.5, T, lse)
    _, _, kl_renorm = kd_loss(logits, labels, vals, idx.int(), has, 0.5, T)
    assert float(kl_exact) == pytest.approx(0.0, abs=1e-4)
    assert float(kl_renorm) > 1.0  # the floor the old loss had
    _, _, kl_moved = kd_loss(logits + torch.randn_like(logits), labels, vals, idx.int(), has, 0.5, T, lse)
    assert float(kl_moved) > 0.01
