"""`edgewise route eval`: signals fitted on one half and measured on the other, the report, the policy, and
the command end to end on a tiny model against the fake cloud (a real HTTP process)."""

import json
import math
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from edgewise.route import eval_command as cmd
from edgewise.route import evaluation as ev
from edgewise.route.confidence import hash_embed


def _rows(n=200, seed=0):
    """Rows whose edge log-probs carry the truth: right answers are confident, wrong ones are not."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        fam = "easy" if i % 2 else "hard"
        right = rng.random() < (0.7 if fam == "easy" else 0.3)
        lp = list(rng.normal(-0.2 if right else -2.0, 0.3, size=4).clip(max=0))
        cloud = float(rng.random() < 0.9)
        iid = f"{i:016x}"
        rows.append(ev.EvalRow(fam, iid, f"{fam} question number {i}", "a", lp, float(right), "c", cloud))
    return rows


def test_split_is_fixed_by_id_and_balanced():
    rows = _rows()
    calib = [r.calibration for r in rows]
    assert calib == [r.calibration for r in _rows()]
    assert 0.4 < np.mean(calib) < 0.6


def test_auroc_matches_the_pair_count():
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=60).round(1), (rng.random(60) < 0.5).astype(float)
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y == 1] for b in s[y == 0]]
    assert ev.auroc(s, y) == pytest.approx(np.mean(pairs))
    assert math.isnan(ev.auroc(s, np.ones(60)))


def test_informative_log_probs_route_well_held_out(tmp_path):
    report = ev.evaluate(_rows(), hash_embed, embed_name="hash")
    held = {(r["family"], r["signal"]): r for r in report["held_out"]}
    assert set(s for _, s in held) == set(ev.SIGNALS)
    rows = [r for r in _rows() if not r.calibration]
    noise = ev.held_out_metrics(rows, np.random.default_rng(3).normal(size=len(rows)), "all", "noise")
    assert abs(noise.apgr - 0.5) < 0.15 and abs(noise.auroc_edge_right - 0.5) < 0.15
    for fam in ("easy", "hard", "all"):
        assert held[fam, "p10"]["auroc_edge_right"] > 0.9  # the signal separates right from wrong
        assert noise.apgr + 0.05 < held[fam, "p10"]["apgr"] <= report["oracle_apgr"][fam] + 1e-9
        assert held[fam, "p10"]["apgr"] > report["oracle_apgr"][fam] - 0.2  # it knows the edge, not the cloud
    assert report["calibration_rows"] + report["held_out_rows"] == 200
    dep = {d["signal"]: d for d in report["deployed"]}
    assert dep["p10"]["held_of_cloud"] > 0.9 and dep["p10"]["held_escalated"] < 0.8
    assert report["best_signal"] in ev.SIGNALS
    # The JSON report is strict JSON: no NaN.
    text = json.dumps(cmd.json_report(report), allow_nan=False)
    assert '"best_signal"' in text


def test_policy_loads_in_the_router(tmp_path):
    from edgewise.route.config import RouterConfig, build_policies, load_policy_file

    report = ev.evaluate(_rows(), hash_embed, embed_name="hash")
    for sig in ("p10", "combined", "prompt"):
        report["best_signal"] = sig
        out = tmp_path / f"{sig}.toml"
        out.write_text(cmd.policy_for(report, out))
        conf = tomllib.loads(out.read_text())["policies"]["confidence"]
        assert conf["source"] == ("logprobs" if sig == "p10" else sig)
        if sig != "p10":
            assert (tmp_path / f"{sig}.scorer.npz").is_file()
        pols = build_policies(load_policy_file(out), RouterConfig().order, base_dir=out.parent)
        (conf_policy,) = [p for p in pols if p.name == "confidence"]
        assert conf_policy.config.source == conf["source"]
        if sig != "p10":
            assert conf_policy.scorer.needs_answer == (sig == "combined")


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(Exception, match="at least 20"):
        ev.evaluate(_rows(10), None)


def test_route_eval_command_end_to_end(tmp_path, tiny_llama_dir, cloud):
    """Tiny edge (always wrong) against the fake cloud, which echoes the prompt: it is right exactly when the
    reference is in the prompt. Then the cloud dies and the rerun answers from the cache alone."""
    rows = [{"prompt": f"Say the word {'zebra' if i % 2 else 'nothing'} number {i}", "reference": "zebra"}
            for i in range(40)]
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, policy, cache = tmp_path / "out", tmp_path / "policy.toml", tmp_path / "answers.sqlite"
    cmd = [sys.executable, "-m", "edgewise", "route", "eval", "--edge", str(tiny_llama_dir), "--cloud", cloud.url,
           "--cloud-model", "fake", "--task", f"qa:{data}", "--embed", "hash", "--out", str(out),
           "--calibrate-out", str(policy), "--cache", str(cache), "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Held-out routing" in r.stdout and "APGR" in r.stdout
    rep = json.loads((out / "route-eval.json").read_text())
    assert rep["answered"] == 40 and rep["failed"] == 0
    fam = rep["families"]["qa/qa"]
    assert fam["cloud_quality"] == 0.5 and fam["edge_quality"] == 0.0
    assert (out / "route-eval.png").stat().st_size > 10_000
    assert len((out / "answers.jsonl").read_text().splitlines()) == 40
    assert tomllib.loads(policy.read_text())["policies"]["confidence"]["threshold"] is not None
    cloud.kill()
    r2 = subprocess.run(cmd + ["--force"], capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert json.loads((out / "route-eval.json").read_text())["held_out"] == rep["held_out"]


def test_route_eval_bad_task_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgewise", "route", "eval", "--edge", "x", "--cloud",
                        "http://127.0.0.1:9/v1", "--cloud-model", "m", "--task", "mmlu"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "KIND:FILE" in r.stderr and "Traceback" not in r.stderr
