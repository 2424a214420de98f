"""The router's decisions, in process. The cloud-over-HTTP side is in test_cloud.py."""

import json
import time

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.route import CLOUD, DEGRADED, EDGE, Router
from edgewise.route.confidence import LogisticScorer, PromptScorer, hash_embed
from edgewise.route.decision_log import DecisionLog, read_log
from edgewise.route.policies.budget import BudgetConfig, BudgetPolicy
from edgewise.route.policies.confidence import ConfidenceConfig, ConfidencePolicy
from edgewise.route.router import RouterConfig
from edgewise.runtime.types import GenerationResult


def gen(text, logprobs):
    return GenerationResult(text=text, token_ids=list(range(len(logprobs))), logprobs=list(logprobs),
                            prompt_tokens=3, generation_tokens=len(logprobs), prompt_tps=0.0, generation_tps=0.0,
                            ttft_ms=0.0, peak_rss_mb=0.0, finish_reason="stop")


SURE = gen("edge: sure", [-0.01, -0.02, -0.05])
UNSURE = gen("edge: unsure", [-0.1, -3.5, -2.5])


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Cloud:
    """An in-process cloud_fn that records what it was sent (the HTTP one is in test_cloud.py)."""

    def __init__(self, fail=None):
        self.seen, self.fail = [], fail

    def __call__(self, request, deadline_s):
        self.seen.append(request)
        if self.fail:
            raise self.fail
        text = request if isinstance(request, str) else request[-1]["content"]
        return f"cloud: {text}"


def router(doc, **kw):
    return Router.from_policy(doc, **kw)


POLICY = {"policies": {"confidence": {"threshold": -1.0, "method": "p10"}}}


def test_confident_edge_answers_and_unsure_escalates():
    r, cloud = router(POLICY), Cloud()
    res = r.route("hello", lambda q: SURE, cloud)
    assert (res.answered_by, res.text, cloud.seen) == (EDGE, "edge: sure", [])
    assert res.reason.startswith("confident (p10") and res.scores["confidence"] > -1.0
    res = r.route("hello", lambda q: UNSURE, cloud)
    assert (res.answered_by, res.text) == (CLOUD, "cloud: hello")
    assert res.reason.startswith("low confidence (p10") and res.edge is UNSURE
    assert res.headers() == {"X-Edgewise-Answered-By": "cloud", "X-Edgewise-Route-Reason": res.reason}
    assert set(res.latency_ms) == {"total", "edge", "cloud", "overhead"}


def test_cloud_failure_degrades_to_the_edge_answer():
    res = router(POLICY).route("hi", lambda q: UNSURE, Cloud(fail=RuntimeError("boom")))
    assert (res.answered_by, res.text) == (DEGRADED, "edge: unsure")
    assert "cloud_fn raised RuntimeError" in res.reason


def test_cloud_that_ignores_its_deadline_cannot_hold_the_request():
    def slow_cloud(request, deadline_s):
        time.sleep(3)
        return "late"

    t0 = time.monotonic()
    res = router(POLICY).route("hi", lambda q: UNSURE, slow_cloud, deadline_s=0.4)
    assert res.answered_by == DEGRADED and "no answer within" in res.reason
    assert time.monotonic() - t0 < 0.4 + 0.4  # the budget, plus slack for a busy test machine


def test_redact_mode_cloud_sees_placeholders_and_answer_is_restored():
    cloud = Cloud()
    msgs = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "email bob@corp.com about card 4111 1111 1111 1111"}]
    res = router(POLICY).route(msgs, lambda q: UNSURE, cloud)
    assert cloud.seen[0][1]["content"] == "email [EMAIL_1] about card [CREDIT_CARD_1]"
    assert res.text == "cloud: email bob@corp.com about card 4111 1111 1111 1111"
    assert res.redacted and res.pii == {"email": 1, "credit_card": 1}
    assert msgs[1]["content"].startswith("email bob@")  # the caller's messages are not touched


def test_local_only_never_calls_the_cloud():
    cloud = Cloud()
    doc = {"policies": {"privacy": {"mode": "local-only"}, **POLICY["policies"]}}
    res = router(doc).route("my IBAN is GB82WEST12345698765432", lambda q: UNSURE, cloud)
    assert (res.answered_by, cloud.seen) == (EDGE, [])
    assert res.reason == "privacy: iban stays on the device"
    res = router(doc).route("no secrets here", lambda q: UNSURE, cloud)
    assert res.answered_by == CLOUD


def test_privacy_off_sends_the_original():
    cloud = Cloud()
    doc = {"policies": {"privacy": {"mode": "off"}, **POLICY["policies"]}}
    res = router(doc).route("ping 10.1.2.3", lambda q: UNSURE, cloud)
    assert cloud.seen == ["ping 10.1.2.3"] and not res.redacted


def test_breaker_opens_then_answers_locally_at_once():
    clk = Clock()
    doc = {"policies": {"connectivity": {"fail_max": 2, "reset_timeout_s": 30}, **POLICY["policies"]}}
    r, bad = router(doc, clock=clk), Cloud(fail=RuntimeError("down"))
    for _ in range(2):
        assert r.route("q", lambda q: UNSURE, bad).answered_by == DEGRADED
    res = r.route("q", lambda q: SURE, bad)
    assert res.answered_by == DEGRADED and res.reason.startswith("cloud circuit open")
    assert len(bad.seen) == 2 and res.scores == {}  # no cloud call, no scoring: answered at once
    clk.t += 30
    good = Cloud()
    assert r.route("q", lambda q: UNSURE, good).answered_by == CLOUD  # the half-open probe
    assert r.breaker.state == "closed"


def test_prompt_scorer_decides_before_the_edge_runs():
    easy, hard = ["what is 2 plus 2", "what is 3 plus 1"] * 5, ["prove the riemann hypothesis", "prove fermat"] * 5
    X, y = hash_embed(easy + hard), np.array([1.0] * 10 + [0.0] * 10)
    pol = ConfidencePolicy(ConfidenceConfig(threshold=0.5, source="prompt", scorer="unused.npz"),
                           scorer=PromptScorer(LogisticScorer.fit(X, y), hash_embed))
    calls = []

    def edge(q):
        calls.append(q)
        return SURE

    r = Router([pol])
    res = r.route([{"role": "user", "content": "prove the riemann hypothesis"}], edge, Cloud())
    assert res.answered_by == CLOUD and calls == []  # the edge never ran
    res = r.route("prove fermat", edge, Cloud(fail=RuntimeError("x")))
    assert res.answered_by == DEGRADED and calls == ["prove fermat"]  # ran only as the fallback
    assert r.route("what is 2 plus 2", edge, Cloud()).answered_by == EDGE


def test_prefer_cloud_without_confidence():
    r, cloud = router({"router": {"prefer": "cloud"}}), Cloud()
    assert r.route("q", lambda q: SURE, cloud).answered_by == CLOUD
    assert r.route("q", lambda q: SURE, None).reason.startswith("no cloud configured")
    assert router({}).warnings()  # prefer edge and no confidence: nothing would ever escalate


def test_budget_max_share():
    doc = {"policies": {**POLICY["policies"], "budget": {"max_share": 0.25}}}
    r = router(doc)
    who = [r.route("q", lambda q: UNSURE, Cloud()).answered_by for _ in range(12)]
    # the k-th request may escalate only if (escalations so far + 1) / k <= 0.25
    assert [i + 1 for i, w in enumerate(who) if w == CLOUD] == [4, 8, 12]
    assert r.route("q", lambda q: UNSURE, Cloud()).reason.startswith("budget: escalations would reach")
    st = r.stats()
    assert st["answered_by"] == {EDGE: 10, CLOUD: 3, DEGRADED: 0}
    assert st["breaker"]["state"] == "closed" and st["budget"]["recent_share"] == pytest.approx(3 / 13)


def test_budget_max_per_hour_rolls():
    clk = Clock()
    pol = BudgetPolicy(BudgetConfig(max_per_hour=2), clock=clk)
    conf = ConfidencePolicy(ConfidenceConfig(threshold=-1.0))
    r = Router([conf, pol], clock=clk)
    who = []
    for _ in range(3):
        who.append(r.route("q", lambda q: UNSURE, Cloud()).answered_by)
        clk.t += 600
    assert who == [CLOUD, CLOUD, EDGE]
    clk.t = 3600.0 + 1  # the first escalation (t=0) has left the rolling hour
    assert r.route("q", lambda q: UNSURE, Cloud()).answered_by == CLOUD


def test_decision_log_has_no_pii_values(tmp_path):
    log = DecisionLog(tmp_path / "d.jsonl")
    r = router(POLICY, log=log)
    secret = "card 4111 1111 1111 1111 from jane@corp.example, ip 10.20.30.40"
    r.route(secret, lambda q: UNSURE, Cloud(), request_id="r1")
    r.route(secret, lambda q: UNSURE, Cloud(fail=RuntimeError(secret)), request_id="r2")
    r.route("fine", lambda q: SURE, Cloud(), request_id="r3")
    raw = (tmp_path / "d.jsonl").read_text()
    for v in ("4111", "jane@corp", "10.20.30.40"):
        assert v not in raw
    recs = read_log(tmp_path / "d.jsonl")
    assert [x["answered_by"] for x in recs] == [CLOUD, DEGRADED, EDGE]
    assert recs[0]["pii"] == {"credit_card": 1, "email": 1, "ipv4": 1} and recs[0]["redacted"] is True
    assert recs[0]["request_id"] == "r1" and "ts" in recs[0] and recs[0]["latency_ms"]["overhead"] >= 0
    assert recs[2]["scores"]["confidence"] > -1.0


def test_policy_file_errors(tmp_path):
    with pytest.raises(EdgewiseError, match="valid keys are"):
        router({"policies": {"budget": {"max_shares": 0.3}}})
    with pytest.raises(EdgewiseError, match="unknown routing policy 'latency'"):
        router({"policies": {"latency": {}}})
    with pytest.raises(EdgewiseError, match="needs a numeric threshold"):
        router({"policies": {"confidence": {}}})
    with pytest.raises(EdgewiseError, match="privacy mode"):
        router({"policies": {"privacy": {"mode": "strict"}}})
    with pytest.raises(EdgewiseError, match="sets no limit"):
        router({"policies": {"budget": {}}})
    with pytest.raises(EdgewiseError, match="prefer"):
        RouterConfig(prefer="gpu")
    bad = tmp_path / "p.toml"
    bad.write_text("[router\n")
    with pytest.raises(EdgewiseError, match="not valid TOML"):
        Router.from_policy_file(bad)


def test_policy_file_round_trip(tmp_path):
    (tmp_path / "policy.toml").write_text(
        '[router]\nprefer = "edge"\ndeadline_s = 5.0\nlog = "logs/decisions.jsonl"\n'
        '[policies.privacy]\nmode = "local-only"\nkinds = ["email", "iban"]\n'
        '[policies.connectivity]\nenabled = false\n'
        '[policies.confidence]\nthreshold = -1.5\nmethod = "min"\n')
    r = Router.from_policy_file(tmp_path / "policy.toml")
    assert [p.name for p in r.policies] == ["privacy", "confidence"] and r.breaker is None
    assert r.config.deadline_s == 5.0
    r.route("call +1 415 555 2671", lambda q: UNSURE, Cloud())  # phone not in kinds: escalates
    rec = json.loads((tmp_path / "logs" / "decisions.jsonl").read_text())
    assert rec["answered_by"] == CLOUD and rec["pii"] == {}


def test_concurrent_requests_respect_the_share_cap():
    import threading

    r = router({"policies": {**POLICY["policies"], "budget": {"max_share": 0.2}}})

    def work():
        for _ in range(25):
            assert r.route("q", lambda q: UNSURE, Cloud()).answered_by in (EDGE, CLOUD)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sum(r.counts.values()) == 200
    assert 20 <= r.counts[CLOUD] <= 40  # never above the cap, and the cap is actually used


def test_stream_closed_unread_is_still_recorded(tmp_path):
    log = DecisionLog(tmp_path / "d.jsonl")
    doc = {"policies": {**POLICY["policies"], "budget": {"max_share": 1.0}}}
    r = router(doc, log=log, cloud_stream_fn=lambda req, d: iter(["a", "b"]))
    s = r.open_stream("q", lambda q: UNSURE)
    assert s.answered_by == CLOUD
    s.close()
    assert s.result.answered_by == CLOUD and "client left" in s.result.reason
    budget = r.policies[-1]
    assert budget._pending == 0 and budget.snapshot()["recent_share"] == 1.0
    s = r.open_stream("q", lambda q: SURE)
    assert "".join(s) == "edge: sure" and s.result.answered_by == EDGE
    assert [x["answered_by"] for x in read_log(tmp_path / "d.jsonl")] == [CLOUD, EDGE]


def test_finish_and_cloud_failed_are_the_public_seam(tmp_path):
    """RouteStream records through these two; no private aliases are left for it to reach past."""
    from edgewise.route.cloud import CloudError
    from edgewise.route.types import RouteContext

    assert not hasattr(Router, "_finish") and not hasattr(Router, "_cloud_failed")
    r = router(POLICY, log=DecisionLog(tmp_path / "d.jsonl"))
    assert r.cloud_failed(CloudError("cloud said 400", "http", status=400)) == "cloud said 400"
    assert r.breaker.snapshot()["consecutive_failures"] == 0  # about this request, not the link
    assert r.cloud_failed(ValueError("echoes the prompt")) == "cloud_fn raised ValueError"
    assert r.breaker.snapshot()["consecutive_failures"] == 1
    ctx = RouteContext("q", "q", lambda q: SURE, r.clock)
    res = r.finish(ctx, r.clock(), "an answer", EDGE, "mine", 0.0, None, "r1")
    assert (res.text, res.answered_by, res.reason, res.edge) == ("an answer", EDGE, "mine", None)
    assert r.counts[EDGE] == 1
    assert [(x["request_id"], x["reason"]) for x in read_log(tmp_path / "d.jsonl")] == [("r1", "mine")]
