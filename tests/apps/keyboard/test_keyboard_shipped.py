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
# The keystroke budget in CI is a ratio to one single-token step of the same model, measured in the same run: this
# machine's own speed moves 2x within an hour (CPU p95 per keystroke 3.0-4.0 ms on 2026-12-06, 5.3-5.9 ms quiet on
# 2026-12-07, same code), so an absolute 5 ms here would test the machine. The absolute budget (p95 <= 5 ms) is a
# benchmark figure (BENCHMARKS.md §5). Measured 2026-12-07: p95 per keystroke = 13.4-14.2 steps over 3 passes.
STEPS_BUDGET = 20.0  # a change that adds ~40% to the keystroke's p95 fails
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
    steps = [_step_ms(engine, text)]  # steps[i] and steps[i + 1] bracket pass i
    r = evaluate(engine, text, suggestions=3, max_words=WORDS)
    steps.append(_step_ms(engine, text))
    assert (r.words, r.kn) == (WORDS, KN_TODAY)
    assert r.ksr >= KSR_TODAY - KSR_SLACK, f"KSR {r.ksr:.3f} on the held-out slice, {KSR_TODAY} when last measured"
    # The budget is for the keyboard's own work, so it is checked on this thread's CPU time per keystroke, which
    # time spent preempted does not count: on a loaded 2-core CI machine wall-clock p95 measures the other jobs
    # (BENCHMARKS §5: wall p95 5.6-7.0 ms beside a training job, 3.0 ms quiet, CPU p95 3.0-3.8 ms in both).
    # Contention still inflates CPU time a little (shared caches, SMT), so the best of up to PASSES passes counts,
    # each against the faster of the steps measured just before and just after it.
    p95s = [r.cpu_ms["p95"]]
    ratios = [round(p95s[0] / min(steps[0], steps[1]), 2)]
    while min(ratios) > STEPS_BUDGET and len(ratios) < PASSES:
        p95s.append(evaluate(engine, text, suggestions=3, max_words=WORDS).cpu_ms["p95"])
        steps.append(_step_ms(engine, text))
        ratios.append(round(p95s[-1] / min(steps[-2], steps[-1]), 2))
    assert min(ratios) <= STEPS_BUDGET, (f"CPU p95 per keystroke {p95s} ms = {ratios} single-token steps of the "
                                         f"model over {len(ratios)} passes (budget {STEPS_BUDGET}; wall p95 "
                                         f"{r.latency_ms['p95']} ms in the first)")


def _step_ms(engine, text: str, n: int = 600) -> float:
    """Median CPU time of one token appended after 48 tokens of context: the unit a keystroke's search is made of
    (each word expansion is one such forward pass), on the same model, thread and cache size as the keystrokes."""
    import time

    dec = engine.model.decoder
    ids = engine.tok.encode(text[:400])[:48]
    dec.sync(ids, engine._room, logits=False)  # the engine's own cache size, so no re-allocation
    times = []
    for i in range(n):
        t0 = time.thread_time()
        dec.append([ids[i % len(ids)]])
        times.append(time.thread_time() - t0)
        dec.rewind(len(ids))
    return 1000 * sorted(times)[n // 2]
