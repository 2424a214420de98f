"""The router in front of a real third-party cloud: llama.cpp's own OpenAI-compatible server (llama-cpp-python) on
loopback, serving the packaged SmolLM2. Every request escalates; what the client gets through edgewise must be what
llama.cpp answers directly: the text, the streamed text and the token log-probs.
"""

import json
import math

import httpx
import pytest

from edgewise.bench.llamacpp_server import LlamaServer, server_available
from edgewise.models.packaged import packaged_path

from .conftest import Server

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(server_available() is not None, reason=str(server_available()))]

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"messages": MESSAGES, "temperature": 0, "max_tokens": 12}
LOGPROBS = {"logprobs": True, "top_logprobs": 2}


@pytest.fixture(scope="module")
def stack(tiny_llama_dir, tmp_path_factory):
    """(edgewise server that escalates everything, the llama.cpp server it escalates to)."""
    policy = tmp_path_factory.mktemp("policy") / "cloud.toml"
    # Privacy off: this test is about the cloud link, and a redacted prompt gets no log-probs back.
    policy.write_text('[router]\nprefer = "cloud"\ndeadline_s = 60.0\n\n[policies.privacy]\nmode = "off"\n')
    cloud = LlamaServer(packaged_path("smollm2-135m"), alias="smollm2-cloud", threads=1, n_ctx=2048).start()
    try:
        edge = Server(str(tiny_llama_dir), "--threads", "1", "--max-tokens", "12", "--cloud", cloud.url,
                      "--cloud-model", cloud.alias, "--policy", str(policy))
    except BaseException:
        cloud.stop()
        raise
    edge.model = httpx.get(edge.url + "/v1/models").json()["data"][0]["id"]
    yield edge, cloud
    edge.stop()
    cloud.stop()


def direct(cloud: LlamaServer, **extra) -> dict:
    """llama.cpp's own answer. Asked twice: it reuses the KV cache of a repeated prompt, and a prompt evaluated
    afresh gives log-probs some 0.05 apart from one served from the cache, as the routed request will be."""
    body = {**GREEDY, "model": cloud.alias, **extra}
    for _ in range(2):
        r = httpx.post(cloud.url + "/chat/completions", json=body, timeout=60)
        r.raise_for_status()
    return r.json()["choices"][0]


def routed(edge: Server, **extra) -> httpx.Response:
    return httpx.post(edge.url + "/v1/chat/completions", json={**GREEDY, "model": edge.model, **extra}, timeout=60)


def routed_stream(edge: Server, **extra) -> tuple[httpx.Headers, list]:
    """(headers, the data of each event: a dict, or the string "[DONE]")."""
    body = {**GREEDY, "model": edge.model, "stream": True, **extra}
    with httpx.stream("POST", edge.url + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        events = [line[5:].strip() for line in r.iter_lines() if line.startswith("data:")]
    return r.headers, [e if e == "[DONE]" else json.loads(e) for e in events]


def assert_same_logprobs(got: list, ref: list) -> None:
    assert [e["token"] for e in got] == [e["token"] for e in ref]
    for g, r in zip(got, ref):
        assert math.isfinite(g["logprob"]) and g["logprob"] <= 0
        assert g["logprob"] == pytest.approx(r["logprob"], abs=1e-4)
        assert [t["token"] for t in g["top_logprobs"]] == [t["token"] for t in r["top_logprobs"]]


def test_escalated_answer_is_llamacpps(stack):
    edge, cloud = stack
    ref = direct(cloud)
    assert ref["message"]["content"]
    r = routed(edge)
    assert r.status_code == 200
    assert r.headers["x-edgewise-answered-by"] == "cloud"
    body = r.json()
    assert body["edgewise"]["answered_by"] == "cloud"
    assert body["choices"][0]["message"]["content"] == ref["message"]["content"]
    assert body["choices"][0]["logprobs"] is None  # not asked for


def test_logprobs_pass_through(stack):
    edge, cloud = stack
    ref = direct(cloud, **LOGPROBS)
    r = routed(edge, **LOGPROBS)
    assert r.headers["x-edgewise-answered-by"] == "cloud"
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == ref["message"]["content"]
    lp = choice["logprobs"]["content"]
    assert len(lp) == GREEDY["max_tokens"]  # one per generated token (SmolLM2 does not stop that soon here)
    assert_same_logprobs(lp, ref["logprobs"]["content"])


def test_streaming_with_logprobs(stack):
    edge, cloud = stack
    ref = direct(cloud, **LOGPROBS)
    headers, events = routed_stream(edge, **LOGPROBS)
    assert headers["x-edgewise-answered-by"] == "cloud"
    assert events[-1] == "[DONE]"
    chunks = [e["choices"][0] for e in events[:-1] if e["choices"]]
    assert "".join(c["delta"].get("content") or "" for c in chunks) == ref["message"]["content"]
    lp = [t for c in chunks if c["logprobs"] for t in c["logprobs"]["content"]]
    assert_same_logprobs(lp, ref["logprobs"]["content"])
    assert events[-2]["edgewise"]["answered_by"] == "cloud"


def test_cloud_down_degrades_to_the_edge(stack):
    """Runs last: it stops the cloud."""
    edge, cloud = stack
    cloud.stop()
    r = routed(edge, **LOGPROBS)
    assert r.status_code == 200
    assert r.headers["x-edgewise-answered-by"] == "edge-degraded"
    body = r.json()
    assert "cloud connection failed" in body["edgewise"]["reason"]
    assert body["edgewise"]["latency_ms"]["edge"] > 0
    # The log-probs now are the edge's own, one per token it generated.
    assert len(body["choices"][0]["logprobs"]["content"]) == body["usage"]["completion_tokens"] > 0
