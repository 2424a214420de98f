"""`keyboard eval`: keystroke accounting checked against a plain re-implementation of presage_simulator's rules,
kn checked against presage_simulator itself, learning that pays off, and the CLI's JSON."""

from __future__ import annotations

import json

import pytest

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine, PersonalStore
from edgewise.apps.keyboard.evaluate import evaluate
from edgewise.apps.keyboard.text import presage_units, trailing_word

from test_keyboard_text import PRESAGE, run_presage

TEXT = ("The quick brown fox jumps over the lazy dog. I don't know what you're talking about, but it's fine.\n"
        "See you on Saturday at the station!\n")


def reference_counts(engine, text, k, repeat):
    """presage_simulator's loop (simulator.cpp) and its selector's REPEAT_SUGGESTIONS rule, written out plainly
    over the same engine."""
    units, trailing = presage_units(text)
    ki, ks, kn = 0, 1, 0
    for u in units:
        context = text[:u.start]
        target = trailing_word(context) + u.word
        kn += len(u.word.encode()) + 1
        offered = set()

        def ask(partial):
            words = engine.suggest_detailed(context, partial, k, exclude=set() if repeat else set(offered)).words
            offered.update(w.lower() for w in words)
            return words

        if target in ask(""):
            ks += 1
            continue
        for i in range(1, len(u.word) + 1):
            ki += len(u.word[i - 1].encode())
            if target in ask(u.word[:i]):
                break
        ki += 1
    return ki + trailing, ks, kn + trailing


@pytest.mark.parametrize("repeat", [False, True])
def test_counts_follow_presage_rules(keyboard_lm, repeat):
    cfg = KeyboardConfig(forwards_per_key=48, max_word_tokens=10)
    report = evaluate(KeyboardEngine(keyboard_lm, cfg), TEXT, suggestions=3, repeat=repeat)
    ki, ks, kn = reference_counts(KeyboardEngine(keyboard_lm, cfg), TEXT, 3, repeat)
    assert (report.ki, report.ks, report.kn) == (ki, ks, kn)
    assert report.ksr == pytest.approx((1 - (ki + ks) / kn) * 100, abs=1e-3)
    assert report.words == len(presage_units(TEXT)[0])
    # The model knows these sentences by heart (not their order here): many words come before any letter.
    assert report.ksr > 25 and report.top3 > 0.3 and report.completion_1 >= report.top3
    assert report.latency_ms["p50"] <= report.latency_ms["p95"] <= report.latency_ms["p99"]
    assert report.model_bytes > 0 and report.keystrokes >= report.words


@pytest.mark.skipif(PRESAGE is None, reason="presage is not installed (apt-get install -y presage)")
def test_kn_of_the_evaluation_equals_presage_simulator(keyboard_lm, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    report = evaluate(KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=2)), TEXT)
    assert report.kn == run_presage(path, tmp_path)["kn"]


def test_learning_as_it_goes_pays_off(keyboard_lm):
    # Words the model never saw, repeated: only the personal model can predict them.
    text = " ".join(["Quibbleflux married Zorblax in Wibbleton."] * 5) + "\n"
    cfg = KeyboardConfig(forwards_per_key=4, max_word_tokens=10)
    plain = evaluate(KeyboardEngine(keyboard_lm, cfg), text)
    learned = evaluate(KeyboardEngine(keyboard_lm, cfg, personal=PersonalStore(":memory:")), text, learn=True)
    assert learned.personal_words == 25
    assert learned.ksr > plain.ksr + 20


def cli(*args) -> int:
    """Run the edgewise CLI in this process; its exit code (errors exit 2 at the CLI boundary)."""
    from edgewise.cli import main

    try:
        main(list(args))
    except SystemExit as e:
        return e.code or 0
    return 0


def test_cli_eval_json(keyboard_lm_dir, tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    assert cli("keyboard", "eval", "--text", str(path), "--suggestions", "3", "--model", str(keyboard_lm_dir),
               "--backend", "torch", "--learn", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ksr", "ki", "ks", "kn", "top1", "top3", "completion_1", "completion_2", "latency_ms", "model_bytes"):
        assert key in out
    assert out["learn"] is True and set(out["latency_ms"]) >= {"p50", "p95", "p99"}


def test_cli_export_and_forget(tmp_path, capsys):
    store = tmp_path / "p.sqlite"
    PersonalStore(store).learn_text("Zorblax likes tea.")
    assert cli("keyboard", "export", "--store", str(store)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_words"] == 3
    assert cli("keyboard", "forget", "--store", str(store)) == 0
    assert PersonalStore(store).total_words == 0


def test_cli_rejects_a_non_utf8_file(tmp_path, capsys, keyboard_lm_dir):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    assert cli("keyboard", "eval", "--text", str(bad), "--model", str(keyboard_lm_dir), "--backend", "torch") == 2
    assert "not UTF-8" in capsys.readouterr().err


