"""`edgewise serve` against the official openai client and raw HTTP: compatibility, strictness, resilience."""

import json
import threading
import time

import httpx
import openai
import pytest

from .conftest import Server


def client(server, key="unused"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


def model_id(server):
    return httpx.get(server.url + "/v1/models").json()["data"][0]["id"]


def test_models_health_metrics(tiny_server):
    models = httpx.get(tiny_server.url + "/v1/models").json()
    assert models["object"] == "list" and len(models["data"]) == 2
    assert httpx.get(tiny_server.url + "/health").json()["status"] == "ok"
    metrics = httpx.get(tiny_server.url + "/metrics")
    assert metrics.status_code == 200 and "# TYPE edgewise_requests_total counter" in metrics.text


def test_openai_client_chat_non_streaming(tiny_server):
    c = client(tiny_server)
    r = c.chat.completions.create(model=model_id(tiny_server), messages=[{"role": "user", "content": "hello"}],
                                  max_tokens=8, temperature=0, logprobs=True)
    choice = r.choices[0]
    assert choice.finish_reason in ("stop", "length") and r.usage.completion_tokens >= 1
    assert len(choice.logprobs.content) == r.usage.completion_tokens
    raw = httpx.post(tiny_server.url + "/v1/chat/completions", json={
        "model": model_id(tiny_server), "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8,
        "temperature": 0})
    assert raw.headers["x-edgewise-answered-by"] == "edge"
    assert raw.json()["edgewise"]["answered_by"] == "edge"
    assert raw.json()["choices"][0]["message"]["content"] == choice.message.content


def test_openai_client_chat_streaming_matches_non_streaming(tiny_server):
    c = client(tiny_server)
    kw = dict(model=model_id(tiny_server), messages=[{"role": "user", "content": "To be"}], max_tokens=10, temperature=0)
    full = c.chat.completions.create(**kw).choices[0].message.content
    chunks = list(c.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full
    assert any(ch.choices and ch.choices[0].finish_reason for ch in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_completions_logprobs_and_echo_score_text(tiny_server):
    c = client(tiny_server)
    r = c.completions.create(model=model_id(tiny_server), prompt="The quick brown fox", max_tokens=0, echo=True,
                             logprobs=2)
    lp = r.choices[0].logprobs
    assert r.choices[0].text.endswith("The quick brown fox")
    assert lp.token_logprobs[0] is None and all(x <= 0 for x in lp.token_logprobs[1:])
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs)
    g = c.completions.create(model=model_id(tiny_server), prompt="The quick", max_tokens=5, temperature=0, logprobs=1)
    assert len(g.choices[0].logprobs.token_logprobs) >= 1


def test_embeddings(tiny_server):
    enc = [m["id"] for m in httpx.get(tiny_server.url + "/v1/models").json()["data"]][1]
    r = client(tiny_server).embeddings.create(model=enc, input=["one", "two"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 32


@pytest.mark.parametrize("body,status,param", [
    (b"{not json", 400, None),
    (b"[]", 400, None),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), 400, "model"),
    (json.dumps({"model": "M", "messages": []}).encode(), 400, "messages"),
    (json.dumps({"model": "M", "messages": [{"role": "wizard", "content": "x"}]}).encode(), 400, "messages[0].role"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}).encode(), 400, "temperature"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": "x"}], "max_tokens": -3}).encode(), 400, "max_tokens"),
    (json.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}).encode(), 404, "model"),
    # Found by fuzzing: an unhashable role was a TypeError 500; a non-string text part too.
    (json.dumps({"model": "M", "messages": [{"role": {}, "content": "x"}]}).encode(), 400, "messages[0].role"),
    (json.dumps({"model": "M", "messages": [{"role": ["user"], "content": "x"}]}).encode(), 400, "messages[0].role"),
    (json.dumps({"model": "M", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}).encode(),
     400, "messages[0].content"),
    (b'{"model": "M", "messages": [{"role": "user", "content": "\\ud800"}]}', 400, "messages[0].content"),
    (b"[" * 100_000 + b"]" * 100_000, 400, None),
])
def test_malformed_requests_get_4xx_openai_errors(tiny_server, body, status, param):
    body = body.replace(b'"M"', json.dumps(model_id(tiny_server)).encode())
    r = httpx.post(tiny_server.url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] and err["param"] == param
    assert tiny_server.alive()


@pytest.mark.parametrize("prompt,needle", [
    # The issue's [1007, 194, 182812531, 194] on SmolLM2 was a RuntimeError 500 (1007 is past this tiny vocabulary).
    ([107, 194, 182812531, 194], "182812531 is outside"),
    ([5, 2**40], "is outside"),
    ("", "gives no tokens"),
])
def test_bad_completion_prompts_are_400_naming_the_prompt(tiny_server, prompt, needle):
    r = httpx.post(tiny_server.url + "/v1/completions", json={"model": model_id(tiny_server), "prompt": prompt,
                                                                "max_tokens": 2})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "prompt" and needle in r.json()["error"]["message"]
    assert tiny_server.alive()


def test_models_show_the_sampling_defaults_and_openapi_is_published(tiny_server):
    gen = httpx.get(tiny_server.url + "/v1/models").json()["data"][0]
    assert gen["sampling"] == {"temperature": 1.0, "top_p": 1.0, "top_k": 0,
                               "source": "OpenAI defaults (the model names none)"}
    spec = httpx.get(tiny_server.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"} <= set(spec["paths"])
    chat = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert chat["required"] == ["model", "messages"] and gen["id"] in chat["properties"]["model"]["examples"]


def test_prompt_over_context_is_400_naming_the_limit(tiny_server):
    r = httpx.post(tiny_server.url + "/v1/chat/completions", json={
        "model": model_id(tiny_server), "messages": [{"role": "user", "content": "word " * 600}]})
    assert r.status_code == 400 and "256" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_unknown_route_and_method(tiny_server):
    assert httpx.get(tiny_server.url + "/v1/nothing").status_code == 404
    assert httpx.get(tiny_server.url + "/v1/chat/completions").status_code == 405


def _long_stream(server, stop_after: int):
    """Open a long streaming request and drop the connection after a few chunks."""
    body = {"model": model_id(server), "messages": [{"role": "user", "content": "go"}], "max_tokens": 100,
            "temperature": 1.0, "seed": 1, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i >= stop_after:
                break


def _metric(server, name):
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_client_disconnect_cancels_generation(tiny_server):
    before = _metric(tiny_server, "edgewise_cancelled_total")
    _long_stream(tiny_server, stop_after=3)
    deadline = time.time() + 20
    while time.time() < deadline and _metric(tiny_server, "edgewise_cancelled_total") <= before:
        time.sleep(0.1)
    assert _metric(tiny_server, "edgewise_cancelled_total") > before
    assert _metric(tiny_server, "edgewise_queue_depth") == 0
    r = client(tiny_server).chat.completions.create(model=model_id(tiny_server), max_tokens=2,
                                                    messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message is not None


def test_full_queue_answers_429_and_nothing_hangs(tiny_llama_dir):
    s = Server(str(tiny_llama_dir), "--max-queue", "1", "--threads", "1", "--backend", "torch")
    try:
        mid = model_id(s)
        results = {}

        def slow():
            results["slow"] = httpx.post(s.url + "/v1/chat/completions", timeout=120, json={
                "model": mid, "messages": [{"role": "user", "content": "go"}], "max_tokens": 100, "temperature": 1.0,
                "seed": 3, "stop": ["\u2603"]})

        t = threading.Thread(target=slow)
        t.start()
        deadline = time.time() + 20
        while _metric(s, "edgewise_queue_depth") < 1 and time.time() < deadline:
            time.sleep(0.02)
        busy = httpx.post(s.url + "/v1/chat/completions", timeout=10, json={
            "model": mid, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        t.join(120)
        assert results["slow"].status_code == 200
        if _metric(s, "edgewise_rejected_busy_total") == 0:
            pytest.skip("the first request finished before the second arrived")
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "queue_full"
    finally:
        s.stop()


def test_api_key_and_non_loopback_warning(tiny_llama_dir):
    s = Server(str(tiny_llama_dir), "--api-key-env", "EW_TEST_KEY", "--host", "0.0.0.0", "--threads", "1",
               env={"EW_TEST_KEY": "s3cret"})
    try:
        s.url = f"http://127.0.0.1:{s.port}"
        assert httpx.get(s.url + "/v1/models").status_code == 401
        assert httpx.get(s.url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(s.url + "/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        r = client(s, key="s3cret").chat.completions.create(model=ok.json()["data"][0]["id"], max_tokens=2,
                                                            messages=[{"role": "user", "content": "hi"}])
        assert r.usage.completion_tokens >= 1
    finally:
        err = s.stop()
    assert "warning: binding to 0.0.0.0" in err


def test_load_every_request_answered_or_429_and_server_survives(tiny_server):
    """Bounded burst: 16 concurrent clients; each gets a 200 or a quick 429, never a 5xx or a hang."""
    from concurrent.futures import ThreadPoolExecutor

    mid = model_id(tiny_server)

    def one(i):
        t0 = time.time()
        r = httpx.post(tiny_server.url + "/v1/chat/completions", timeout=120, json={
            "model": mid, "messages": [{"role": "user", "content": f"request {i}"}], "max_tokens": 6,
            "temperature": 0})
        return r.status_code, time.time() - t0, r

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    codes = [c for c, _, _ in results]
    assert set(codes) <= {200, 429}, codes
    assert codes.count(200) >= 2
    for c, took, r in results:
        if c == 429:
            assert took < 10 and r.json()["error"]["type"] == "rate_limit_error"
        else:
            assert r.json()["choices"][0]["message"]["content"] is not None
    assert tiny_server.alive() and _metric(tiny_server, "edgewise_queue_depth") == 0
