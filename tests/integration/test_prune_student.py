"""Structured pruning of a real model: the committed keyboard student, pruned, recovered, measured on held-out text."""

from pathlib import Path

import pytest

from edgewise.compress import Calibration
from edgewise.compress.prune import Recovery, Structured, prune
from edgewise.compress.context import packaged_text

pytestmark = pytest.mark.integration
STUDENT = Path(__file__).resolve().parents[2] / "models" / "keyboard-student"


def _perplexity(path, text_file) -> float:
    from edgewise.evaluate import parse_task
    from edgewise.runtime import load_model

    task = parse_task(f"perplexity:{text_file}")
    lm = load_model(str(path), backend="ort")
    return task.evaluate(lm, task.reference(lm))["perplexity"]


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("EDGEWISE_HOME", str(tmp_path_factory.mktemp("home")))
    calib = Calibration.default()  # The Tempest; the quality text below is Hamlet, which neither step sees
    raw = prune(str(STUDENT), Structured(mlp=0.5, heads=0.5, recovery=None), calibration=calib, say=lambda m: None)
    rec = prune(str(STUDENT), Structured(mlp=0.5, heads=0.5, recovery=Recovery(steps=30, lr=1e-3, data=None,
                                                                                 teacher_windows=32)),
                calibration=calib, say=lambda m: None, threads=2)
    return raw, rec


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_pruning_really_removes_a_quarter_of_the_student(pruned):
    raw, rec = pruned
    assert raw.params_before == 4_655_360 and raw.params_after == rec.params_after == 3_508_480
    assert raw.removed == {"mlp_width": [576, 288], "query_heads": [4, 2]}


def test_recovery_by_distillation_wins_back_quality_on_held_out_text(pruned):
    raw, rec = pruned
    held_out = packaged_text("hamlet-act1-scene1.txt")
    base, before, after = (_perplexity(p, held_out) for p in (STUDENT, raw.path, rec.path))
    # Measured here (2026-11-27): 344.7 before the cut, 625.5 after it, 304.2 after 30 recovery steps on The Tempest.
    assert before > 1.3 * base
    print(f"perplexity base {base:.1f}, pruned {before:.1f}, recovered {after:.1f}")
    assert after < before * 0.85, (base, before, after)
    assert rec.recovery["steps"] == 30 and rec.recovery["final_loss"] < rec.recovery["first_loss"]
