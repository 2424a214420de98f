"""The keyboard never changes what runs without saying so: each fallback (no student in the checkout, no n-gram
beside the LM) logs exactly one line naming what was lost, and an explicit choice logs nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgewise.apps.keyboard.engine import (FALLBACK_MODEL, NGRAM_GAIN, find_student, load_count_model,
                                           resolve_keyboard)
from edgewise.errors import EdgewiseError

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "edgewise"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWISE_KEYBOARD_")}
    env.update(HF_HUB_OFFLINE="1", **extra)
    return env


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "edgewise.keyboard"]


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch):
    monkeypatch.delenv("EDGEWISE_KEYBOARD_MODEL", raising=False)
    monkeypatch.delenv("EDGEWISE_KEYBOARD_NGRAM", raising=False)


def test_the_shipped_layout_loads_student_and_ngram_without_a_word(caplog):
    student = find_student()
    assert student is not None and student == ROOT / "models" / "keyboard-student"
    assert resolve_keyboard() == (str(student), str(ROOT / "models" / "keyboard-ngram"))
    assert _lines(caplog) == []


def test_a_student_without_its_ngram_says_what_it_costs(tmp_path, caplog):
    folder = tmp_path / "keyboard-student"
    folder.mkdir()
    shutil.copy(ROOT / "models" / "keyboard-student" / "config.json", folder)
    assert resolve_keyboard(str(folder)) == (str(folder), None)
    [line] = _lines(caplog)
    assert line.startswith(f"keyboard: n-gram model not found at {tmp_path / 'keyboard-ngram'};")
    assert "suggestions come from the LM alone" in line and f"KSR {NGRAM_GAIN} lower" in line
    assert "\n" not in line


def test_an_alias_has_no_ngram_beside_it_and_says_so(caplog):
    assert resolve_keyboard(FALLBACK_MODEL) == (FALLBACK_MODEL, None)
    [line] = _lines(caplog)
    assert f"beside {FALLBACK_MODEL}" in line and "LM alone" in line
    assert "KSR" not in line  # no figure was measured for SmolLM2 with and without the n-gram


@pytest.mark.parametrize("ngram", ["none", None])
def test_choosing_the_lm_alone_is_not_a_fallback(tmp_path, caplog, ngram):
    assert resolve_keyboard(str(tmp_path), ngram) == (str(tmp_path), None)
    assert _lines(caplog) == []


def test_the_environment_can_choose_too(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("EDGEWISE_KEYBOARD_NGRAM", "none")
    assert resolve_keyboard(str(tmp_path)) == (str(tmp_path), None)
    monkeypatch.setenv("EDGEWISE_KEYBOARD_MODEL", FALLBACK_MODEL)
    monkeypatch.delenv("EDGEWISE_KEYBOARD_NGRAM")
    assert resolve_keyboard()[0] == FALLBACK_MODEL
    # The model was chosen, so only the n-gram's absence is news.
    [line] = _lines(caplog)
    assert line.startswith("keyboard: n-gram model not found")


def test_a_broken_ngram_folder_is_an_error_not_a_silent_lm_alone(tmp_path, caplog):
    (tmp_path / "lm").mkdir()
    (tmp_path / "keyboard-ngram").mkdir()  # there, but without its files
    ref, counts = resolve_keyboard(str(tmp_path / "lm"))
    assert counts == str(tmp_path / "keyboard-ngram") and _lines(caplog) == []
    with pytest.raises(EdgewiseError, match="--ngram none"):
        load_count_model(counts)


def test_no_student_in_the_checkout_falls_back_to_smollm2_with_one_line(tmp_path):
    # The package copied where no models/ folder is above it: the state of an installed wheel. Each call is one
    # fallback, so one line each; an n-gram chosen by hand must not hide that the LM changed.
    shutil.copytree(SRC, tmp_path / "src" / "edgewise", ignore=shutil.ignore_patterns("__pycache__"))
    ng = tmp_path / "my-ngram"
    code = ("import json, sys; from edgewise.apps.keyboard.engine import resolve_keyboard; "
            "print(json.dumps(resolve_keyboard())); sys.stderr.flush(); "
            f"print(json.dumps(resolve_keyboard(None, {str(ng)!r})))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=_env(PYTHONPATH=str(tmp_path / "src")))
    assert p.returncode == 0, p.stderr
    assert [json.loads(ln) for ln in p.stdout.splitlines()] == [[FALLBACK_MODEL, None], [FALLBACK_MODEL, str(ng)]]
    first, second = p.stderr.strip().splitlines()
    for line in (first, second):
        assert line.startswith("keyboard: no distilled student (models/keyboard-student/)")
    assert f"suggestions come from {FALLBACK_MODEL} without the n-gram" in first
    assert f"suggestions come from {FALLBACK_MODEL} mixed with {ng}" in second


def test_the_cli_prints_the_line_on_stderr(keyboard_lm_dir, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("See you on Saturday at the station.\n")
    edgewise = Path(sys.executable).parent / "edgewise"  # the installed command, as a user runs it
    p = subprocess.run([str(edgewise), "keyboard", "eval", "--text", str(text),
                        "--model", str(keyboard_lm_dir), "--backend", "torch", "--max-words", "2", "--json"],
                       capture_output=True, text=True, timeout=300, env=_env(EDGEWISE_HOME=str(tmp_path / "home")))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["words"] == 2  # stdout stays clean JSON
    said = [ln for ln in p.stderr.splitlines() if ln.startswith("keyboard:")]
    assert said == [f"keyboard: n-gram model not found at {keyboard_lm_dir.parent / 'keyboard-ngram'}; "
                    "suggestions come from the LM alone; pass --ngram DIR (ngram=DIR) to mix one in, "
                    "or --ngram none to choose the LM alone"]
