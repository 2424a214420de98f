"""The gate on tasks scored item by item: pass / not shown safe / fail from the paired interval, several tasks at
once, and the report's per-item fields, on hand-made outcomes and end to end on the tiny model.

`_TinyChoice` follows the accuracy-task contract (`per_item`, `reference(model).outcomes/.item_ids`,
`evaluate(model, ref)["outcomes"]`) with a real scorer: the option with the higher summed log-probability."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgewise.cli import main
from edgewise.evaluate.base import TASKS
from edgewise.evaluate.stats import items_needed, paired
from edgewise.models.source import CAUSAL_LM
from edgewise.numerics import log_softmax
from edgewise.optimize.gate import FAIL, NOT_SHOWN_SAFE, PASS, Gate
from edgewise.optimize.quality import gate_row
from edgewise.report import columns, terminal_table
from edgewise.report.row import VariantRow


@dataclass
class _Ref:
    outcomes: np.ndarray
    item_ids: list[str]


class _TinyChoice:
    """{"id", "prompt", "options", "answer"} rows; an item is right when the answer's option scores highest."""

    kind = "tinychoice"
    primary = "accuracy"
    higher_is_better = True
    needs = CAUSAL_LM
    per_item = True

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def _outcomes(self, model) -> np.ndarray:
        from edgewise.runtime.api import forward_logits

        out = []
        for r in self.rows:
            p = model.tokenizer.encode(r["prompt"], add_special_tokens=False)
            scores = []
            for opt in r["options"]:
                o = model.tokenizer.encode(" " + opt, add_special_tokens=False)
                lp = log_softmax(forward_logits(model, p + o))  # row t predicts token t + 1
                scores.append(float(sum(lp[len(p) - 1 + j, t] for j, t in enumerate(o))))
            out.append(float(int(np.argmax(scores)) == r["answer"]))
        return np.asarray(out)

    def reference(self, model) -> _Ref:
        return _Ref(self._outcomes(model), [r["id"] for r in self.rows])

    def evaluate(self, model, ref: _Ref) -> dict:
        o = self._outcomes(model)
        return {"accuracy": float(o.mean()), "n_items": len(o), "outcomes": o.tolist()}


if "tinychoice" not in TASKS:
    TASKS.register("tinychoice")(_TinyChoice)


class _Fake:
    """Just what the gate reads of a task."""

    def __init__(self, kind="tinychoice", primary="accuracy", higher=True, per_item=True, name="quiz.jsonl"):
        self.kind, self.primary, self.higher_is_better, self.per_item = kind, primary, higher, per_item
        self.path = Path(name)


def _row(name: str, *entries: dict) -> VariantRow:
    r = VariantRow(name, name, "ort", "")
    r.tasks = [dict(e, metrics=dict(e["metrics"])) for e in entries]
    r.metrics = dict(entries[0]["metrics"])
    return r


def _acc(outcomes) -> dict:
    o = [float(x) for x in outcomes]
    return {"task": "tinychoice:quiz", "metrics": {"accuracy": float(np.mean(o))}, "outcomes": o}


FULL = [1.0] * 24 + [0.0] * 16  # 40 items, 60%


def _lose(k: int) -> list[float]:
    """The full model's outcomes with its first k right answers turned wrong."""
    o = list(FULL)
    o[:k] = [0.0] * k
    return o


def test_the_gate_reads_the_paired_interval():
    task, gate = _Fake(), Gate(max_drop=0.05)  # 5 accuracy points
    ref = _row("fp32", _acc(FULL))
    verdicts = {}
    for name, k in (("same", 0), ("one", 1), ("six", 6)):
        row = _row(name, _acc(_lose(k)))
        gate_row(row, [task], ref, gate)
        verdicts[name] = row
    # No item differs: the interval is [0, 0], well inside the bound.
    assert verdicts["same"].gate_status == PASS and verdicts["same"].passes_gate
    # One item of 40 lost: -2.5 points measured, but the interval reaches past -5 points: not shown safe.
    one = verdicts["one"]
    e = one.tasks[0]
    assert e["diff"] == pytest.approx(-0.025) and e["diff_ci"][0] < -0.05 <= e["diff"]
    assert one.gate_status == NOT_SHOWN_SAFE and one.passes_gate is False
    assert one.gate_reason.startswith("not shown safe") and "items would detect" in one.gate_reason
    # Six lost: -15 points measured, past the bound itself: fail, not "not shown safe".
    assert verdicts["six"].gate_status == FAIL and "15.0 pts > 5.0 pts" in verdicts["six"].gate_reason
    # The row's fields are what stats.paired computes from the outcomes alone.
    p = paired(_lose(1), FULL)
    assert e["mcnemar_p"] == p.mcnemar_p == 1.0 and e["discordant"] == [1, 0]
    assert e["accuracy_ci"] == list(p.accuracy_ci) and e["diff_ci"] == list(p.diff_ci)
    # max_drop is absolute points on accuracy: relative_drop stays relative (2.5 / 60).
    assert one.relative_drop == pytest.approx(0.025 / 0.6)


def test_enough_items_turn_the_same_drop_into_a_pass():
    task, gate = _Fake(), Gate(max_drop=0.05)
    full = FULL * 25  # 1000 items, the same 2.5-point loss
    lost = _lose(1) * 25
    ref, row = _row("fp32", _acc(full)), _row("v", _acc(lost))
    gate_row(row, [task], ref, gate)
    assert row.gate_status == PASS and -0.05 < row.tasks[0]["diff_ci"][0] < row.tasks[0]["diff"]
    # ... and the items-needed figure of the small task says so: more than its 40 items, no more than these 1000.
    small = _row("v", _acc(_lose(1)))
    gate_row(small, [task], _row("fp32", _acc(FULL)), gate)
    assert 40 < small.tasks[0]["items_needed"] <= 1000


def test_every_task_must_pass_and_other_tasks_gate_as_before():
    acc, ppl = _Fake(), _Fake("perplexity", "perplexity", higher=False, per_item=False, name="notes.txt")
    gate = Gate(max_drop=0.05)
    ppl_entry = lambda v, kld: {"task": "perplexity:notes", "metrics": {"perplexity": v, "kld": kld}}  # noqa: E731
    ref = _row("fp32", ppl_entry(20.0, 0.0), _acc(FULL))
    ok = _row("ok", ppl_entry(20.5, 0.01), _acc(FULL))
    unsafe = _row("unsafe", ppl_entry(20.5, 0.01), _acc(_lose(1)))
    bad_ppl = _row("bad", ppl_entry(23.0, 0.01), _acc(FULL))
    for r in (ok, unsafe, bad_ppl):
        gate_row(r, [ppl, acc], ref, gate)
    assert ok.gate_status == PASS and ok.primary == 20.5 and ok.relative_drop == pytest.approx(0.025)
    assert unsafe.gate_status == NOT_SHOWN_SAFE and unsafe.gate_reason.startswith("tinychoice:quiz: not shown safe")
    # The perplexity task fails on its relative drop, exactly as a single perplexity task would.
    assert bad_ppl.gate_status == FAIL and bad_ppl.gate_reason == "perplexity:notes: drop 15.0% > 5.0%"
    assert [e["gate_status"] for e in bad_ppl.tasks] == [FAIL, PASS]
    # A KLD ceiling reads the task that measures KLD and leaves the accuracy task to its interval.
    kgate = Gate(max_drop=0.05, kld_max=0.005)
    r = _row("k", ppl_entry(20.5, 0.01), _acc(FULL))
    gate_row(r, [ppl, acc], ref, kgate)
    assert r.gate_status == FAIL and r.tasks[1]["gate_status"] == PASS and "KLD 0.01 > 0.005" in r.gate_reason
    # One non-per-item task alone: today's reason strings.
    single = _row("s", ppl_entry(23.0, 0.01))
    gate_row(single, [ppl], _row("fp32", ppl_entry(20.0, 0.0)), gate)
    assert (single.passes_gate, single.gate_reason, single.gate_status) == (False, "drop 15.0% > 5.0%", FAIL)


def test_gate_description_says_points_for_accuracy():
    g = Gate(max_drop=0.05)
    assert g.describe("perplexity") == "perplexity within 5.0% of the full model"
    assert "within 5.0 points (absolute)" in g.describe("accuracy", per_item=True)
    both = g.describe_tasks([("perplexity:hamlet", "perplexity", False), ("choice:quiz", "accuracy", True)])
    assert both.startswith("perplexity:hamlet: perplexity within 5.0%") and "choice:quiz: accuracy" in both


def _quiz(path: Path, n: int = 60) -> Path:
    """Cloze items from the tiny tokenizer's own corpus: the next word of a sentence among four words."""
    import random

    from tests.conftest import CORPUS

    words = sorted({w.strip(".,?") for line in CORPUS[:4] for w in line.split()})
    rng, rows = random.Random(0), []
    for i in range(n):
        s = CORPUS[i % 4].split()
        k = rng.randrange(1, len(s) - 1)
        gold = s[k].strip(".,?")
        opts = [gold] + rng.sample([w for w in words if w != gold], 3)
        rng.shuffle(opts)
        rows.append({"id": f"q{i}", "prompt": " ".join(s[:k]), "options": opts, "answer": opts.index(gold)})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def two_task_report(tiny_llama_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("acc")
    text = d / "notes.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. To be, or not to be, that is the question. " * 4)
    quiz = _quiz(d / "quiz.jsonl")
    out = d / "out"
    main(["optimize", str(tiny_llama_dir), "--task", f"perplexity:{text}", "--task", f"tinychoice:{quiz}",
          "--methods", "fp32,int8,int4", "--max-drop", "2%", "--no-bench", "--out", str(out)])
    return out


def test_two_tasks_end_to_end_report_carries_outcomes_and_intervals(two_task_report):
    report = json.loads((two_task_report / "report.json").read_text())
    assert [t["kind"] for t in report["tasks"]] == ["perplexity", "tinychoice"]
    assert report["task"]["kind"] == "perplexity" and report["task"]["primary"] == "perplexity"  # the first task
    quiz = report["tasks"][1]
    assert quiz["per_item"] and quiz["item_ids"] == [f"q{i}" for i in range(60)] and quiz["n_items"] == 60
    assert quiz["items_needed"]["drop"] == 0.02 and quiz["items_needed"]["items"] > 60
    rows = {v["name"]: v for v in report["variants"]}
    full = rows["fp32"]["tasks"][1]["outcomes"]
    for name, v in rows.items():
        ppl, acc = v["tasks"]
        assert v["metrics"] == ppl["metrics"] and v["primary"] == ppl["primary"]  # the row describes the first task
        assert "outcomes" not in acc["metrics"] and len(acc["outcomes"]) == 60
        # Recomputed from report.json alone, the figures agree.
        p = paired(acc["outcomes"], full)
        assert acc["accuracy"] == pytest.approx(p.accuracy) and acc["diff_ci"] == pytest.approx(list(p.diff_ci))
        assert acc["mcnemar_p"] == pytest.approx(p.mcnemar_p) and acc["discordant"] == [p.b, p.c]
        want = FAIL if -p.diff > 0.02 + 1e-12 else (NOT_SHOWN_SAFE if -p.diff_ci[0] > 0.02 + 1e-12 else PASS)
        assert acc["gate_status"] == want
        statuses = {ppl["gate_status"], acc["gate_status"]}
        overall = PASS if statuses == {PASS} else (FAIL if FAIL in statuses else NOT_SHOWN_SAFE)
        assert v["gate_status"] == overall and v["passes_gate"] == (overall == PASS)
    assert rows["fp32"]["tasks"][1]["diff"] == 0 and rows["fp32"]["gate_status"] == PASS
    html = (two_task_report / "report.html").read_text()
    assert "tinychoice<br>Δ pts<br>[95% CI]" in html and "not shown safe" in html and "60 items" in html


def test_terminal_table_shows_accuracy_and_drop_with_intervals(two_task_report):
    from rich.console import Console

    report = json.loads((two_task_report / "report.json").read_text())
    titles = [c.title for c in columns(report) if c.terminal]
    assert "tinychoice\naccuracy %\n[95% CI]" in titles and "tinychoice\nΔ pts\n[95% CI]" in titles
    assert "tinychoice\nMcNemar p" not in titles  # HTML only
    console = Console(width=400, record=True)
    console.print(terminal_table(report))
    text = console.export_text()
    acc = report["variants"][0]["tasks"][1]
    assert f"{100 * acc['accuracy']:.1f} [{100 * acc['accuracy_ci'][0]:.1f}," in text
    assert "+0.0 [+0.0, +0.0]" in text  # fp32 against itself


def test_an_accuracy_task_first_is_the_primary(tiny_llama_dir, tmp_path):
    """One per-item task alone: the row's primary is its accuracy, the gate is in points, plots draw."""
    from edgewise.optimize import OptimizeOptions, optimize

    quiz = _quiz(tmp_path / "quiz.jsonl")
    res = optimize(OptimizeOptions(model=str(tiny_llama_dir), task=f"tinychoice:{quiz}", methods=["fp32", "int4"],
                                   max_drop="2%", bench=False, out=tmp_path / "o"))
    r = res.report
    assert r["task"]["per_item"] and r["gate"]["max_drop_unit"] == "accuracy points"
    assert "2.0 points (absolute)" in r["gate"]["description"]
    int4 = next(v for v in r["variants"] if v["name"] == "int4")
    assert int4["primary"] == int4["tasks"][0]["accuracy"]
    assert int4["gate_status"] in (PASS, NOT_SHOWN_SAFE, FAIL)
    titles = [c.title for c in columns(r)]
    assert titles[3:6] == ["accuracy %\n[95% CI]", "Δ pts\n[95% CI]", "McNemar p"]


def test_a_decoder_defaults_to_the_packaged_text_and_quiz(tmp_path):
    from edgewise.errors import EdgewiseError
    from edgewise.optimize import parse_tasks

    tasks = parse_tasks(None, CAUSAL_LM, "smollm2-135m")
    assert [t.kind for t in tasks] == ["perplexity", "choice"]
    assert tasks[1].per_item and tasks[1].path.is_file()
    # Big enough that the default 5-point gate can show a variant safe when it disagrees with the full model on one
    # item in 20 (SmolLM2's gguf variant on the 62-item quiz): with fewer items the demo can only recommend fp32.
    assert len(tasks[1].item_ids) >= items_needed(0.05, 0.05)
    # One spec or several; the same file twice is one line that says what to do.
    text = tmp_path / "notes.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 8)
    assert len(parse_tasks(f"perplexity:{text}", CAUSAL_LM, "m")) == 1
    with pytest.raises(EdgewiseError, match="listed twice"):
        parse_tasks([f"perplexity:{text}", f"perplexity:{text}"], CAUSAL_LM, "m")
    with pytest.raises(EdgewiseError, match="does not fit"):
        parse_tasks([f"perplexity:{text}", f"classify:{_classify(tmp_path)}"], CAUSAL_LM, "m")


def _classify(tmp_path: Path) -> Path:
    p = tmp_path / "labels.jsonl"
    p.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(4)))
    return p
