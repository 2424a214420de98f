"""Regression guard for the keyboard as shipped: models/keyboard-student on ort int4 with models/keyboard-ngram and
the default mixture weights, typed through the package's own simulator (evaluate.py, as `edgewise keyboard eval`
and benchmarks/keyboard_vs_presage.py use it).

The text is the first 1,500 words of the held-out fortune file `wisdom` (keyboard_eval_text("fortunes")). It is
the one held-out text built from what `make setup` installs (Debian `fortunes`), so it needs no
`make keyboard-setup`; neither the student, the n-gram nor the weight tuning (which reads `wisdom` after its first
40k characters) ever saw it. The packaged Shakespeare scenes are not held out: the student trained on the plays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgewise.errors import EdgewiseError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
WORDS = 1_500
# Measured 2026-12-06 (BENCHMARKS.md §5, "Regression guard"):
#   edgewise keyboard eval --text $EDGEWISE_HOME/corpora/keyboard-eval-fortunes.txt --suggestions 3 \
#       --max-words 1500 --json                       -> ksr 46.906 (ki 3708, ks 393, kn 7724)
KSR_TODAY = 46.906
WEIGHTS = (0.1, 0.3, 0.3)  # the engine's default n-gram weights when KSR_TODAY was measured
KSR_SLACK = 0.5  # points: a change that costs more than this is a regression, not noise (the run is deterministic)
KN_TODAY = 7_724  # keys needed: pins the slice itself, so a changed text cannot pass for a changed keyboard
P95_BUDGET_MS = 5.0
PASSES = 3


@pytest.fixture(scope="module")
def shipped():
    from edgewise.apps.keyboard import load_keyboard
    from edgewise.data.eval_texts import keyboard_eval_text

    try:
        text = keyboard_eval_text("fortunes").read_text(encoding="utf-8")
    except EdgewiseError as e:
        pytest.skip(f"the held-out fortunes text cannot be built ({e}); `make setup` installs Debian fortunes")
    engine = load_keyboard(backend="ort", precision="auto")  # what `edgewise keyboard` runs
    return engine, text


def test_it_is_the_shipped_keyboard(shipped):
    engine, _ = shipped
    assert Path(engine.model.name).name == "keyboard-student" and engine.model.precision == "int4"
    assert engine.ngram is not None and engine.ngram.meta["file_bytes"] > 0
    assert engine.config.ngram_weights == WEIGHTS, "new default weights: re-measure KSR_TODAY and BENCHMARKS §5"


def test_ksr_and_keystroke_latency_hold(shipped):
    from edgewise.apps.keyboard.evaluate import evaluate

    engine, text = shipped
    r = evaluate(engine, text, suggestions=3, max_words=WORDS)
    assert (r.words, r.kn) == (WORDS, KN_TODAY)
    assert r.ksr >= KSR_TODAY - KSR_SLACK, f"KSR {r.ksr:.3f} on the held-out slice, {KSR_TODAY} when last measured"
    # The budget is for the keyboard's own work, so it is checked on this thread's CPU time per keystroke, which
    # time spent preempted does not count: on a loaded 2-core CI machine wall-clock p95 measures the other jobs
    # (BENCHMARKS §5: wall p95 5.6-7.0 ms beside a training job, 3.0 ms quiet, CPU p95 3.0-3.8 ms in both).
    # Contention still inflates CPU time a little (shared caches, SMT), so the best of up to PASSES passes counts.
    p95s = [r.cpu_ms["p95"]]
    while min(p95s) >= P95_BUDGET_MS and len(p95s) < PASSES:
        p95s.append(evaluate(engine, text, suggestions=3, max_words=WORDS).cpu_ms["p95"])
    assert min(p95s) < P95_BUDGET_MS, (f"CPU p95 per keystroke {p95s} ms over {len(p95s)} passes "
                                       f"(wall p95 {r.latency_ms['p95']} ms in the first)")
