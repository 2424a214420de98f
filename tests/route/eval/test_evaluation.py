"""`edgewise route eval`: signals fitted on one half and measured on the other, the report, the policy, and
the command end to end on a tiny model against the fake cloud (a real HTTP process)."""

import json
import math
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.confidence import hash_embed
from edgewise.route.eval import answers
from edgewise.route.eval import calibrate as cal
from edgewise.route.eval import command as cmd
from edgewise.route.eval import evaluation as ev


def small_embed(texts):
    """Hashed bag of words in 16 dims: the learned signals' code path at a size where a loaded 2-core machine
    fits hundreds of logistic regressions in seconds (97 dims cost ~0.2 s a fit there, from BLAS threads)."""
    return hash_embed(texts, dim=16)


FAST = {"resamples": 100, "random_orders": 100}  # the defaults (1000 each) cost tens of seconds on a loaded CI box


def _rows(n=200, seed=0, consistency=False):
    """Rows whose edge log-probs carry the truth: right answers are confident, wrong ones are not. With
    consistency, a perfect consistency signal: the oracle's order (edge right and cloud wrong highest)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        fam = "easy" if i % 2 else "hard"
        right = rng.random() < (0.7 if fam == "easy" else 0.3)
        lp = list(rng.normal(-0.2 if right else -2.0, 0.3, size=4).clip(max=0))
        cloud = float(rng.random() < 0.9)
        iid = f"{i:016x}"
        row = answers.EvalRow(fam, iid, f"{fam} question number {i}", "a", lp, float(right), "c", cloud)
        if consistency:
            row.consistency = (float(right) - cloud + 1) / 2
            row.edge_seconds, row.sample_seconds, row.edge_samples = 0.5, 2.0 + i % 2, ["a"] * 4
        rows.append(row)
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
    report = ev.evaluate(_rows(), small_embed, embed_name="hash", **FAST)
    held = {(r["family"], r["signal"]): r for r in report["held_out"]}
    assert set(s for _, s in held) == set(ev.SIGNALS) - {"consistency"}  # no samples, no consistency signal
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

    report = ev.evaluate(_rows(), hash_embed, embed_name="hash", **FAST)  # the embedding the router will load
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


def test_a_task_can_have_its_own_item_count(tmp_path):
    from edgewise.route.eval.command import RouteEvalConfig

    cfg = RouteEvalConfig(edge="e", cloud_url="http://127.0.0.1:9/v1", cloud_model="m", tasks=("mmlu:a", "gsm8k:b"),
                          out=tmp_path, limit=300, limits=(None, 200))
    assert [cfg.task_limit(i) for i in range(2)] == [300, 200]
    with pytest.raises(EdgewiseError, match="one per task"):
        RouteEvalConfig(edge="e", cloud_url="u", cloud_model="m", tasks=("mmlu:a",), out=tmp_path, limits=(1, 2))
    with pytest.raises(EdgewiseError, match="positive integer"):
        RouteEvalConfig(edge="e", cloud_url="u", cloud_model="m", tasks=("mmlu:a",), out=tmp_path, limits=(0,))
    with pytest.raises(EdgewiseError, match="--target"):  # the checks after it still run
        RouteEvalConfig(edge="e", cloud_url="u", cloud_model="m", tasks=("mmlu:a",), out=tmp_path, target=1.5)


# --- issue 23: consistency and kNN signals, random and oracle, intervals, cross-validation, costs -----------------

def _held(rows):
    return [r for r in rows if not r.calibration]


def test_perfect_signal_scores_the_oracle_and_a_constant_one_half():
    rows = _held(_rows())
    gap = np.array([r.edge_quality - r.cloud_quality for r in rows])
    perfect = ev.held_out_metrics(rows, gap, "all", "oracle", resamples=0)
    flat = ev.held_out_metrics(rows, np.zeros(len(rows)), "all", "constant", resamples=0)
    assert flat.apgr == pytest.approx(0.5)  # one tie: all or nothing escalates, the straight line between
    assert perfect.apgr > 0.75
    report = ev.evaluate(_rows(consistency=True), None, **FAST)
    held = {(r["family"], r["signal"]): r for r in report["held_out"]}
    assert report["oracle"]["all"]["apgr"] == pytest.approx(perfect.apgr)
    for fam in ("easy", "hard", "all"):
        # consistency here is the oracle's own order, so it scores the oracle's APGR and escalation share
        assert held[fam, "consistency"]["apgr"] == pytest.approx(report["oracle"][fam]["apgr"])
        assert held[fam, "consistency"]["escalated_at_95"] == pytest.approx(report["oracle"][fam]["escalated_at_95"])
        assert report["random_apgr"][fam]["by_construction"] == 0.5
        assert abs(report["random_apgr"][fam]["simulated"] - 0.5) < 0.05


def test_random_orders_average_to_one_half():
    d = ev.routing_data(_held(_rows()), np.zeros(len(_held(_rows()))))
    assert abs(ev.random_apgr(d, orders=1000) - 0.5) < 0.02


def test_bootstrap_interval_holds_the_estimate_and_is_fixed_by_its_seed():
    rows = _held(_rows())
    p10 = np.array([min(r.edge_logprobs) for r in rows])
    d = ev.routing_data(rows, p10)
    lo, hi = ev.bootstrap_apgr(d, resamples=200)
    assert lo < cal.routellm_metrics(d).apgr < hi and hi - lo < 0.6
    assert (lo, hi) == ev.bootstrap_apgr(d, resamples=200)
    report = ev.evaluate(_rows(), None, **FAST)
    for r in report["held_out"]:
        assert r["apgr_lo"] <= r["apgr"] <= r["apgr_hi"], r
    # A signal that carries nothing: its interval covers the random router's 0.5.
    noise = ev.held_out_metrics(rows, np.random.default_rng(5).normal(size=len(rows)), "all", "noise", resamples=200)
    assert noise.apgr_lo < 0.5 < noise.apgr_hi


def test_knn_finds_the_prompts_the_edge_solves():
    """Two clusters of prompts: the edge is right on every 'orbit' question and wrong on every 'tax' one; the cloud
    is right on all. Only the prompt tells them apart, so the log-probs are noise and kNN must do the work."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(200):
        easy = i % 3 != 0
        words = "planet orbit moon star comet" if easy else "tax income invoice refund ledger"
        prompt = " ".join(rng.permutation(words.split())[:4]) + f" item{i}"
        rows.append(answers.EvalRow("mix", f"{i:016x}", prompt, "a", list(rng.normal(-1, 0.3, 3).clip(max=0)),
                               float(easy), "c", 1.0))
    report = ev.evaluate(rows, small_embed, embed_name="hash", **FAST)
    held = {r["signal"]: r for r in report["held_out"] if r["family"] == "all"}
    oracle = report["oracle"]["all"]["apgr"]
    assert held["knn"]["apgr"] == pytest.approx(oracle, abs=0.05) and held["knn"]["apgr_lo"] > 0.5
    assert held["knn"]["auroc_edge_right"] > 0.95 and held["p10"]["apgr"] < held["knn"]["apgr"] - 0.2
    assert report["knn_k"] in ev.K_GRID
    assert report["cv"]["apgr"]["knn"]["all"]["mean"] > 0.9 * oracle


def test_cross_validation_scores_every_fold():
    rows = _rows(consistency=True)
    report = ev.evaluate(rows, small_embed, embed_name="hash", **FAST)
    cv = report["cv"]["apgr"]
    assert report["cv"]["folds"] == 5 and set(cv) == set(ev.SIGNALS)
    assert len(cv["p10"]["all"]["folds"]) == 5
    assert cv["p10"]["all"]["mean"] == pytest.approx(np.mean(cv["p10"]["all"]["folds"]))
    assert cv["p10"]["all"]["mean"] > 0.6 and cv["consistency"]["all"]["mean"] > cv["p10"]["all"]["mean"]
    held = {(r["family"], r["signal"]): r for r in report["held_out"]}
    assert held["all", "knn"]["cv_apgr"] == cv["knn"]["all"]["mean"]
    assert {r.fold for r in rows} == set(range(5))  # the folds come from the ids, like the halves


def test_answer_signal_joins_log_probs_and_consistency():
    """Each of the two answer signals sees half the truth: the log-probs are sharp on the 'hard' family only and
    consistency on the 'easy' one (noise elsewhere). `answer`, one logistic regression over both (no embedding),
    must route better than either alone, and it costs the samples' time."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(400):
        fam = "easy" if i % 2 else "hard"
        right = rng.random() < 0.5
        sharp = fam == "hard"
        lp = list(rng.normal((-0.2 if right else -2.0) if sharp else -1.0, 0.3, size=4).clip(max=0))
        row = answers.EvalRow(fam, f"{i:016x}", f"q{i}", "a", lp, float(right), "c", 1.0)
        row.consistency = float(right) if not sharp else float(rng.integers(0, 5)) / 4
        row.edge_seconds, row.sample_seconds, row.edge_samples = 0.5, 2.0, ["a"] * 4
        rows.append(row)
    report = ev.evaluate(rows, None, **FAST)  # no embedding: answer is still fitted, prompt/knn/combined are not
    held = {r["signal"]: r for r in report["held_out"] if r["family"] == "all"}
    assert set(held) == {"p10", "mean", "min", "consistency", "answer"}
    assert held["answer"]["apgr"] > max(held["p10"]["apgr"], held["consistency"]["apgr"]) + 0.05
    assert report["_fitted"].models["answer"].meta["features"] == "logprobs+consistency"
    assert report["cost"]["extra_edge_s"]["answer"] == pytest.approx(2.0)
    assert "answer" not in report["servable_signals"]  # a served request has no samples
    without = ev.evaluate(_rows(), None, **FAST)  # no samples: log-probs only, free, and still not a policy source
    assert without["_fitted"].models["answer"].meta["features"] == "logprobs"
    assert without["cost"]["extra_edge_s"]["answer"] == 0.0 and "answer" not in without["servable_signals"]


def test_costs_and_the_policy_skip_what_the_router_cannot_compute(tmp_path):
    report = ev.evaluate(_rows(consistency=True), small_embed, embed_name="hash", **FAST)
    cost = report["cost"]
    assert cost["edge_answer_s"] == 0.5 and cost["samples_k"] == 4
    assert cost["extra_edge_s"]["consistency"] == pytest.approx(2.5)  # the mean of the k samples' seconds
    assert all(cost["extra_edge_s"][m] == 0.0 for m in ev.LOGPROB_SIGNALS)
    assert cost["extra_edge_s"]["prompt"] == cost["extra_edge_s"]["knn"] == cost["embed_s"] > 0
    assert cost["extra_edge_s"]["combined"] == pytest.approx(cost["embed_s"] + 2.5)
    # combined reads consistency here, which a served request does not have: no policy may name it
    assert report["_fitted"].models["combined"].meta["features"] == "embed+logprobs+consistency"
    assert report["servable_signals"] == ["p10", "mean", "min", "prompt"]
    assert report["best_signal"] in report["servable_signals"]
    path = report["_fitted"].models["combined"].save(tmp_path / "c.npz")
    from edgewise.route.confidence import load_prompt_scorer
    with pytest.raises(EdgewiseError, match="consistency"):
        load_prompt_scorer(path)
    json.dumps(cmd.json_report(report), allow_nan=False)


def test_markdown_table_shows_every_column():
    from edgewise.route.eval.table import markdown_table

    report = ev.evaluate(_rows(consistency=True), small_embed, embed_name="hash", **FAST)
    for rep in (report, json.loads(json.dumps(cmd.json_report(report)))):  # in memory (nan) and from JSON (null)
        md = markdown_table(rep)
        for fam in ("easy", "hard", "all"):
            assert f"| {fam} (n=" in md
        assert md.count("| random | 0.50 by construction") == 3 and md.count("| oracle |") == 3
        assert "consistency (k=4)" in md and "| knn |" in md and "APGR 5-fold CV" in md
        r = next(x for x in rep["held_out"] if x["family"] == "all" and x["signal"] == "p10")
        assert f"{r['apgr']:.3f} [{r['apgr_lo']:.3f}, {r['apgr_hi']:.3f}] | {r['cv_apgr']:.3f}" in md


def test_final_answers_agree_by_letter_number_or_text():
    from edgewise.evaluate.answers import TaskItem, final_answer

    mc = TaskItem("mmlu", "1", "q", "choice", "B", ("Mars", "Venus", "Earth", "Moon"))
    assert answers.agreement(mc, "B", ["B.", "The answer is B", "C", "(B)"]) == 0.75
    assert answers.agreement(mc, "I am not sure", ["I am not sure"] * 2) == 0.0  # no letter: nothing to agree on
    num = TaskItem("gsm8k", "2", "q", "number", "18")
    assert final_answer(num, "so 9*2 = 18. Answer: 18") == "18"
    assert answers.agreement(num, "Answer: 18", ["18", "Answer: 18.0", "17", "no idea"]) == 0.5
    qa = TaskItem("qa", "3", "q", "contains", ("Paris",))
    assert answers.agreement(qa, "Paris.", ["paris", "The Paris", "Lyon"]) == pytest.approx(2 / 3)


def test_consistency_on_a_tiny_model_is_cached(tmp_path, tiny_llama_dir):
    """A real tiny model samples k answers per item at T=0.7 with fixed seeds; the rerun generates nothing and
    gives the same rows."""
    from edgewise.evaluate.answers import TaskItem
    from edgewise.route.eval.answers import AnswerCache, ConsistencyConfig, EdgeAnswerer
    from edgewise.runtime import prompt_ids

    class Counted(EdgeAnswerer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.generations = 0

        def sample(self, *a):
            self.generations += 1
            return super().sample(*a)

    edge = Counted(str(tiny_llama_dir), threads=1)
    items = [TaskItem("qa", f"{i:016x}", f"Say something about number {i}", "contains", ("zebra",), max_tokens=6)
             for i in range(3)]
    cfg = ConsistencyConfig(k=3, temperature=0.7, seed=0)
    cache = AnswerCache(tmp_path / "a.sqlite")
    rows = answers.answer_items(items, edge, edge, cache, consistency=cfg)  # the tiny model is its own "cloud" here
    assert edge.generations == len(items) * (1 + cfg.k)  # one greedy answer (shared by edge and cloud) + k samples
    assert len(cache) == len(items) * (1 + cfg.k)
    for r in rows:
        assert len(r.edge_samples) == 3 and 0.0 <= r.consistency <= 1.0
        assert r.edge_seconds > 0 and r.sample_seconds > 0
    assert any(s != r.edge_answer for r in rows for s in r.edge_samples)  # T=0.7 samples, not greedy copies
    assert len({answers.item_seed(it.prompt) for it in items}) == len(items)  # each item draws its own samples
    # all k samples of an item reuse its prompt from the KV cache the greedy answer left (its room is enough): all
    # of it but the last token, which runs again
    n_prompt = [len(prompt_ids(edge.lm, it.prompt)) for it in items]
    assert edge.reused_prompt_tokens >= sum(cfg.k * (n - 1) for n in n_prompt)
    cache.close()
    again = AnswerCache(tmp_path / "a.sqlite")
    before = edge.generations
    assert answers.answer_items(items, edge, edge, again, consistency=cfg) == rows
    assert edge.generations == before  # every sample came from the cache
    answers.answer_items(items, edge, edge, again, consistency=ConsistencyConfig(k=3, temperature=0.7, seed=1))
    assert edge.generations == before + len(items)  # seeds 1, 2, 3: only seed 3 is new (the key holds the seed)
    off = answers.answer_items(items, edge, edge, again, consistency=None)
    assert all(r.consistency is None and r.edge_samples == [] for r in off)


def test_long_samples_are_one_batch_and_the_draws_generate_makes(tmp_path, tiny_llama_dir):
    """Answers that may run long (a GSM8K solution) are sampled as one batch: the k samples are the draws generate
    makes with their seeds (fp32 tiny model), and together they keep the batch's time."""
    from edgewise.evaluate.answers import TaskItem
    from edgewise.route.eval.answers import AnswerCache, ConsistencyConfig, EdgeAnswerer, item_seed
    from edgewise.runtime import GenerationConfig, generate
    from edgewise.runtime.batch import BATCH_MIN_TOKENS

    edge = EdgeAnswerer(str(tiny_llama_dir), threads=1)
    it = TaskItem("gsm8k", "0" * 16, "How many legs do 3 cats have?", "number", "12", max_tokens=BATCH_MIN_TOKENS)
    cfg = ConsistencyConfig(k=3, temperature=0.7, seed=0)
    got, made = AnswerCache(tmp_path / "a.sqlite").samples(edge, it.prompt, it.max_tokens, cfg)
    assert made == 3 and edge.reused_prompt_tokens == 0  # not in turn from a cached prompt: a batch
    for j, a in enumerate(got):
        one = generate(edge.lm, it.prompt, GenerationConfig(max_tokens=it.max_tokens, temperature=0.7,
                                                            seed=item_seed(it.prompt) + j))
        assert a.text == one.text and a.logprobs == pytest.approx(one.logprobs, abs=2e-3)
    assert len({a.seconds for a in got}) == 1 and got[0].seconds > 0  # equal shares of one call
