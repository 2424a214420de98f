"""The cloud client and the router against a real second process on loopback (fake_cloud.py)."""

import json
import socket
import time

import httpx
import pytest

from edgewise.errors import EdgewiseError
from edgewise.route import CLOUD, DEGRADED, EDGE, CloudClient, CloudConfig, CloudError, Router
from edgewise.runtime.types import GenerationResult

FAST = dict(connect_timeout_s=0.5, max_retries=2, backoff_s=0.01, backoff_max_s=0.05)
PII = {  # one value per kind the router must keep from the cloud
    "email": "jane.doe@corp.example",
    "phone": "+1 (415) 555-2671",
    "credit_card": "4111-1111-1111-1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "ipv4": "172.16.254.1",
    "ipv6": "fe80::1ff:fe23:4567:890a",
}
UNSURE = GenerationResult(text="edge answer", token_ids=[1, 2], logprobs=[-3.0, -2.0], prompt_tokens=2,
                          generation_tokens=2, prompt_tps=0.0, generation_tps=0.0, ttft_ms=0.0, peak_rss_mb=0.0,
                          finish_reason="stop")


def client(cloud, **kw):
    return CloudClient(CloudConfig(url=cloud.url, model="big", **{**FAST, **kw}))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_chat_ok_with_bearer_key(cloud, monkeypatch):
    monkeypatch.setenv("FAKE_CLOUD_KEY", "sk-test-123")
    with client(cloud, key_env="FAKE_CLOUD_KEY") as c:
        ans = c([{"role": "user", "content": "hello"}], deadline_s=5, temperature=0)
    assert (ans.text, ans.model, ans.attempts, ans.finish_reason) == ("cloud: hello", "big", 1, "stop")
    (req,) = cloud.requests()
    assert req["authorization"] == "Bearer sk-test-123"
    assert req["body"]["model"] == "big" and req["body"]["temperature"] == 0 and req["body"]["stream"] is False


def test_missing_key_env_is_a_config_error(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(EdgewiseError, match="NOPE_KEY is empty"):
        CloudConfig(url="http://127.0.0.1:1", model="m", key_env="NOPE_KEY")


@pytest.mark.parametrize("mode", ["500", "429", "reset"])
def test_transient_errors_are_retried(cloud, mode):
    cloud.control(mode, times=2)
    with client(cloud) as c:
        ans = c("hi", deadline_s=5)
    assert ans.text == "cloud: hi" and ans.attempts == 3 and len(cloud.requests()) == 3


@pytest.mark.parametrize("mode,kind", [("500", "http"), ("reset", "connect")])
def test_retries_are_bounded(cloud, mode, kind):
    cloud.control(mode)
    with client(cloud) as c, pytest.raises(CloudError) as e:
        c("hi", deadline_s=5)
    assert e.value.kind == kind and e.value.attempts == 3 and len(cloud.requests()) == 3


def test_client_errors_are_not_retried(cloud):
    cloud.control("400")
    with client(cloud) as c, pytest.raises(CloudError) as e:
        c("hi", deadline_s=5)
    assert e.value.status == 400 and not e.value.health_failure and len(cloud.requests()) == 1


def test_hanging_cloud_is_cut_at_the_deadline_and_not_retried(cloud):
    cloud.control("hang", delay=10)
    t0 = time.monotonic()
    with client(cloud) as c, pytest.raises(CloudError) as e:
        c("hi", deadline_s=0.5)
    took = time.monotonic() - t0
    assert e.value.kind == "timeout" and 0.45 < took < 0.9
    assert len(cloud.requests()) == 1


def test_refused_connection_fails_fast():
    t0 = time.monotonic()
    with CloudClient(CloudConfig(url=f"http://127.0.0.1:{free_port()}", model="m", **FAST)) as c:
        with pytest.raises(CloudError) as e:
            c("hi", deadline_s=5)
    assert e.value.kind == "connect" and e.value.attempts == 3 and time.monotonic() - t0 < 1.0


def test_sse_stream_passes_through(cloud):
    with client(cloud) as c:
        deltas = list(c.stream_fn("stream me please", deadline_s=5))
    assert len(deltas) > 3 and "".join(deltas) == "cloud: stream me please"
    assert cloud.requests()[0]["body"]["stream"] is True


def test_broken_sse_stream_raises_after_the_part(cloud):
    cloud.control("sse_break")
    got = []
    with client(cloud) as c, pytest.raises(CloudError):
        for d in c.stream_fn("stream me please", deadline_s=5):
            got.append(d)
    assert "".join(got) == "cloud:"  # two 3-char chunks arrived before the reset


# --- the router against the real process -------------------------------------------------------

def make_router(cloud, privacy="redact", **conn):
    doc = {"policies": {"privacy": {"mode": privacy},
                        "connectivity": {"fail_max": conn.get("fail_max", 3),
                                         "reset_timeout_s": conn.get("reset_timeout_s", 0.3)},
                        "confidence": {"threshold": -1.0}}}
    c = client(cloud)
    return Router.from_policy(doc, cloud_fn=c, cloud_stream_fn=c.stream_fn)


@pytest.mark.parametrize("kind", list(PII))
def test_redact_mode_cloud_never_sees_the_value(cloud, kind):
    r = make_router(cloud)
    prompt = f"Please remember {PII[kind]} for me."
    res = r.route([{"role": "user", "content": prompt}], lambda q: UNSURE)
    assert res.answered_by == CLOUD and res.redacted and res.pii == {kind: 1}
    assert res.text == f"cloud: {prompt}"  # the echo came back restored
    (req,) = cloud.requests()
    assert PII[kind] not in req["raw"] and "[" in req["body"]["messages"][0]["content"]


def test_redact_mode_all_kinds_at_once_streaming(cloud):
    r = make_router(cloud)
    prompt = "; ".join(PII.values())
    s = r.open_stream(prompt, lambda q: UNSURE)
    assert s.answered_by == CLOUD and s.headers()["X-Edgewise-Answered-By"] == "cloud"
    text = "".join(s)
    assert text == f"cloud: {prompt}" and s.result.redacted
    raw = cloud.requests()[0]["raw"]
    assert not any(v in raw for v in PII.values())


def test_local_only_mode_sends_nothing(cloud):
    r = make_router(cloud, privacy="local-only")
    for v in PII.values():
        res = r.route(f"my data: {v}", lambda q: UNSURE)
        assert res.answered_by == EDGE and res.text == "edge answer"
    assert cloud.requests() == []


@pytest.mark.parametrize("mode", ["500", "reset", "hang"])
def test_faults_degrade_within_budget(cloud, mode):
    cloud.control(mode, delay=10)
    r = make_router(cloud)
    t0 = time.monotonic()
    res = r.route("hard question", lambda q: UNSURE, deadline_s=0.8)
    assert res.answered_by == DEGRADED and res.text == "edge answer"
    assert time.monotonic() - t0 < 0.8 + 0.4  # the budget, plus slack for a busy test machine


def test_cloud_killed_mid_run_breaker_opens_and_recovers(cloud):
    r = make_router(cloud, fail_max=3, reset_timeout_s=0.3)
    assert r.route("q1", lambda q: UNSURE, deadline_s=2).answered_by == CLOUD
    cloud.kill()
    answered = [r.route(f"q{i}", lambda q: UNSURE, deadline_s=2) for i in range(6)]
    assert all(a.answered_by == DEGRADED and a.text == "edge answer" for a in answered)
    assert r.breaker.state == "open"
    assert all("circuit open" in a.reason for a in answered[3:])  # answered at once, no cloud try
    assert max(a.latency_ms["total"] for a in answered[3:]) < 50
    cloud.start(cloud.port)  # the cloud comes back on the same port
    time.sleep(0.35)
    res = r.route("q9", lambda q: UNSURE, deadline_s=2)
    assert res.answered_by == CLOUD and r.breaker.state == "closed"
    assert [q["body"]["messages"][0]["content"] for q in cloud.requests()] == ["q9"]


def test_stream_degrades_before_the_first_delta(cloud):
    cloud.control("500")
    s = make_router(cloud).open_stream("hard question", lambda q: UNSURE, deadline_s=2)
    assert s.answered_by == DEGRADED and s.headers()["X-Edgewise-Answered-By"] == "edge-degraded"
    assert "".join(s) == "edge answer" and s.result.answered_by == DEGRADED


def test_stream_broken_midway_keeps_the_part_and_says_so(cloud):
    cloud.control("sse_break")
    r = make_router(cloud)
    s = r.open_stream("hard question", lambda q: UNSURE, deadline_s=2)
    assert s.answered_by == CLOUD
    assert "".join(s) == "cloud:"
    assert s.result.answered_by == CLOUD and "after 6 chars" in s.result.reason
    assert r.breaker.snapshot()["consecutive_failures"] == 1


# --- token log-probs pass through (a scripted transport) -----------------------------------------

def _lp(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": None, "top_logprobs": []}


def scripted(handler, seen: list):
    """A CloudClient whose endpoint is `handler(body) -> httpx.Response`; the request bodies land in `seen`."""
    def respond(request):
        seen.append(json.loads(request.content))
        return handler(seen[-1])

    return CloudClient(CloudConfig(url="http://cloud.test/v1", model="big", **FAST),
                       transport=httpx.MockTransport(respond))


@pytest.mark.parametrize("logprobs", [{"content": [_lp("Hi", -0.5), _lp("!", -1.0)]}, None, "junk", {"content": 3}])
def test_chat_returns_the_clouds_logprobs_or_none(logprobs):
    content = logprobs["content"] if isinstance(logprobs, dict) and isinstance(logprobs["content"], list) else None
    seen = []
    reply = {"choices": [{"message": {"content": "Hi!"}, "finish_reason": "stop", "logprobs": logprobs}]}
    r = Router.from_policy({"router": {"prefer": "cloud"}, "policies": {"privacy": {"mode": "off"}}},
                           cloud_fn=scripted(lambda body: httpx.Response(200, json=reply), seen))
    res = r.route("hello", lambda q: UNSURE, cloud_params={"logprobs": True, "top_logprobs": 0, "max_tokens": 5})
    assert res.answered_by == CLOUD and res.text == "Hi!" and res.cloud.logprobs == content
    assert (seen[0]["logprobs"], seen[0]["top_logprobs"], seen[0]["max_tokens"]) == (True, 0, 5)


def test_stream_deltas_carry_their_logprobs():
    # The second token ends mid-character: empty text, its log-probs ride on the next delta.
    events = [{"delta": {"role": "assistant"}}, {"delta": {"content": "a"}, "logprobs": {"content": [_lp("a", -0.1)]}},
              {"delta": {"content": ""}, "logprobs": {"content": [_lp("\xe2", -0.2)]}},
              {"delta": {"content": "\u20ac"}, "logprobs": {"content": [_lp("\x82\xac", -0.3)]}},
              {"delta": {"content": "b"}}, {"delta": {}, "finish_reason": "stop", "logprobs": None}]
    sse = "".join(f"data: {json.dumps({'choices': [e]})}\n\n" for e in events) + "data: [DONE]\n\n"
    seen = []
    c = scripted(lambda body: httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"}), seen)
    r = Router.from_policy({"router": {"prefer": "cloud"}, "policies": {"privacy": {"mode": "off"}}},
                           cloud_stream_fn=c.stream_fn)
    s = r.open_stream("hello", lambda q: UNSURE, cloud_params={"logprobs": True, "top_logprobs": 0})
    deltas = list(s)
    assert deltas == ["a", "\u20ac", "b"] and seen[0]["logprobs"] is True and seen[0]["stream"] is True
    assert [[e["logprob"] for e in d.logprobs or []] for d in deltas] == [[-0.1], [-0.2, -0.3], []]
    assert [e["logprob"] for e in s.result.cloud.logprobs] == [-0.1, -0.2, -0.3]
