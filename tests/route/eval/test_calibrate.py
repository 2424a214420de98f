import json
import math
import tomllib

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.eval import calibrate as cal
from edgewise.route.router import Router

# Five prompts, worked by hand in the comments below. The cloud always gets it right.
SCORES = [0.1, 0.2, 0.3, 0.4, 0.5]
EDGE_Q = [0, 0, 1, 0, 1]
CLOUD_Q = [1, 1, 1, 1, 1]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data_file(tmp_path):
    return write_rows(tmp_path / "d.jsonl", [
        {"prompt": f"q{i}", "edge_score": s, "edge_quality": e, "cloud_quality": c}
        for i, (s, e, c) in enumerate(zip(SCORES, EDGE_Q, CLOUD_Q))])


def test_threshold_by_hand(data_file):
    d = cal.load_data(data_file)
    c = cal.full_curve(d)
    # escalate the k lowest: k=0 .4, k=1 .6, k=2 .8, k=3 .8, k=4 1.0, k=5 1.0
    np.testing.assert_allclose(c.quality, [0.4, 0.6, 0.8, 0.8, 1.0, 1.0])
    ch = cal.choose_threshold(d, 0.95, c)
    assert (ch.escalated, ch.threshold, ch.share) == (4, pytest.approx(0.45), 0.8)
    ch = cal.choose_threshold(d, 0.8, c)
    assert (ch.escalated, ch.threshold, ch.quality) == (2, pytest.approx(0.25), pytest.approx(0.8))
    ch = cal.choose_threshold(d, 0.4, c)
    assert (ch.escalated, ch.threshold) == (0, -math.inf)
    # risk-coverage at k=2: the edge keeps q2..q4 with qualities 1, 0, 1
    assert c.coverage[2] == pytest.approx(0.6) and c.risk[2] == pytest.approx(1 / 3)


def test_routellm_metrics_by_hand(data_file):
    m = cal.routellm_metrics(cal.load_data(data_file), bins=5)
    # quantile thresholds of -score put one prompt per bin: 0,20,...,100 % strong calls
    np.testing.assert_allclose(m.pct, [0, 20, 40, 60, 80, 100])
    np.testing.assert_allclose(m.perf, [0.4, 0.6, 0.8, 0.8, 1.0, 1.0])
    assert m.auc == pytest.approx(0.78)  # .1 + .14 + .16 + .18 + .2
    assert m.apgr == pytest.approx((0.78 - 0.4) / (1.0 - 0.4))
    assert m.cpt50 == pytest.approx(30.0)  # goal .7: halfway from (20,.6) to (40,.8)
    assert m.cpt80 == pytest.approx(68.0)  # goal .88: 40% of the way from (60,.8) to (80,1)


def test_metrics_match_a_literal_routellm_reference():
    rng = np.random.default_rng(0)
    n = 400
    score = rng.random(n)
    edge = (rng.random(n) < score).astype(float)  # a useful scorer: confident -> edge right
    cloud = (rng.random(n) < 0.9).astype(float)
    d = cal.Data([""] * n, score, edge, cloud)
    m = cal.routellm_metrics(d, bins=10)
    # RouteLLM evals/evaluate.py + benchmarks.py, written out with numpy
    win = -score
    th = np.quantile(win, np.linspace(0, 1, 11))
    rows = []
    for i, t in enumerate(th):
        sel = win >= t if i != len(th) - 1 else win > t
        rows.append((sel.mean() * 100, np.where(sel, cloud, edge).mean()))
    rows.sort(key=lambda r: r[0])
    x, y = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    auc = np.trapezoid(y, x / 100)
    w, s = edge.mean(), cloud.mean()
    apgr = (auc - np.trapezoid(np.full_like(x, w), x / 100)) / (np.trapezoid(np.full_like(x, s), x / 100)
                                                                 - np.trapezoid(np.full_like(x, w), x / 100))
    assert m.apgr == pytest.approx(apgr) and m.auc == pytest.approx(auc)
    if np.all(np.diff(y) >= 0):  # np.interp is only meaningful on a monotone curve
        assert m.cpt50 == pytest.approx(np.interp(0.5 * (s - w) + w, y, x))


def test_ties_cannot_be_split(tmp_path):
    f = write_rows(tmp_path / "t.jsonl", [
        {"edge_score": 0.5, "edge_quality": 0, "cloud_quality": 1},
        {"edge_score": 0.5, "edge_quality": 1, "cloud_quality": 1},
        {"edge_score": 0.9, "edge_quality": 1, "cloud_quality": 1}])
    c = cal.full_curve(cal.load_data(f))
    assert list(c.k) == [0, 2, 3]
    ch = cal.choose_threshold(cal.load_data(f), 0.9)
    assert ch.escalated == 2 and ch.threshold == pytest.approx(0.7)


def test_reference_rows_and_logprob_rows(tmp_path):
    f = write_rows(tmp_path / "r.jsonl", [
        {"prompt": "capital of France?", "reference": "Paris", "edge_answer": "It is Paris.",
         "cloud_answer": "paris", "edge_logprobs": [-0.1, -0.2]},
        {"prompt": "2+2?", "reference": ["4", "four"], "edge_answer": "44", "cloud_answer": "Four.",
         "edge_logprobs": [-2.0, -0.1]}])
    d = cal.load_data(f, match="contains", method="min")
    assert list(d.edge_q) == [1.0, 0.0] and list(d.cloud_q) == [1.0, 1.0]
    assert list(d.score) == [-0.2, -2.0]
    d = cal.load_data(f, match="exact")
    assert list(d.edge_q) == [0.0, 0.0] and list(d.cloud_q) == [1.0, 1.0]


@pytest.mark.parametrize("row,msg", [
    ({"edge_quality": 1, "cloud_quality": 1}, "edge_score"),
    ({"edge_score": 0.1, "edge_quality": 2, "cloud_quality": 1}, r"in \[0, 1\]"),
    ({"edge_score": 0.1, "cloud_quality": 1}, "edge_quality"),
])
def test_bad_rows_name_the_line(tmp_path, row, msg):
    f = write_rows(tmp_path / "b.jsonl", [{"edge_score": 0.2, "edge_quality": 1, "cloud_quality": 1}, row])
    with pytest.raises(EdgewiseError, match=msg) as e:
        cal.load_data(f)
    assert "b.jsonl:2" in str(e.value)


def test_cli_writes_a_policy_the_router_loads(data_file, tmp_path, capsys):
    from edgewise.cli import main

    out, png = tmp_path / "policy.toml", tmp_path / "risk.png"
    main(["route", "calibrate", "--data", str(data_file), "--target", "0.95", "--out", str(out),
          "--plot", str(png), "--bins", "5"])
    printed = capsys.readouterr().out
    assert "APGR" in printed and "CPT(80%)" in printed
    doc = tomllib.loads(out.read_text())
    assert doc["policies"]["confidence"]["threshold"] == pytest.approx(0.45)
    assert doc["calibration"]["apgr"] == pytest.approx(0.38 / 0.6)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = Router.from_policy_file(out, log=None)
    assert [p.name for p in r.policies] == ["privacy", "connectivity", "confidence"]
    with pytest.raises(SystemExit) as e:  # never overwrite silently
        main(["route", "calibrate", "--data", str(data_file), "--out", str(out)])
    assert e.value.code == 2 and "--force" in capsys.readouterr().err


def test_train_scorer_then_calibrate_on_it(tmp_path, capsys):
    from edgewise.cli import main

    rows = [{"prompt": f"what is {a} plus {b}", "edge_quality": 1, "cloud_quality": 1}
            for a in range(5) for b in range(4)]
    rows += [{"prompt": f"prove the {w} conjecture", "edge_quality": 0, "cloud_quality": 1}
             for w in ["goldbach", "collatz", "twin prime", "abc", "hodge", "birch", "legendre", "lehmer"]]
    data = write_rows(tmp_path / "pairs.jsonl", rows)
    scorer, out = tmp_path / "scorer.npz", tmp_path / "policy.toml"
    main(["route", "train-scorer", "--data", str(data), "--out", str(scorer), "--embed", "hash"])
    assert "training accuracy 1.000" in capsys.readouterr().out
    main(["route", "calibrate", "--data", str(data), "--scorer", str(scorer), "--target", "1.0", "--out", str(out)])
    conf = tomllib.loads(out.read_text())["policies"]["confidence"]
    assert conf["source"] == "prompt" and conf["scorer"] == str(scorer.resolve())
    doc = tomllib.loads(out.read_text())
    # the scorer separates the two groups, so 100% of cloud quality costs exactly the 8 hard prompts
    assert doc["calibration"]["escalated_share"] == pytest.approx(8 / 28, abs=1e-6)
    r = Router.from_policy_file(out)
    assert r.route("prove the riemann conjecture", lambda q: None, lambda q, d: "cloud").answered_by == "cloud"
