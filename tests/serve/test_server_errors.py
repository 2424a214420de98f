"""The server in process (a real tiny model, the real app): every 5xx is logged with its traceback and says where;
a request without sampling settings gets the model's recommended ones; follow-up turns reuse the prompt cache.

The engine failure is injected by replacing the session's forward pass with one that raises, as a broken
onnxruntime or llama.cpp build would: nothing in the server can produce a 5xx on purpose any more.
"""

import json
import shutil

import pytest
from starlette.testclient import TestClient

from edgewise.runtime import load_model
from edgewise.serve.app import create_app
from edgewise.serve.errors import configure_logging, log
from edgewise.serve.state import ServerState


@pytest.fixture(scope="module")
def tiny_lm(tiny_llama_dir):
    return load_model(str(tiny_llama_dir), backend="torch", threads=1)


@pytest.fixture
def served(tiny_lm, tmp_path):
    logfile = tmp_path / "server.log"
    handler = configure_logging(str(logfile))
    state = ServerState(generator=tiny_lm, encoder=None, default_max_tokens=8, queue_timeout_s=0.2)
    try:
        with TestClient(create_app(state)) as client:
            yield client, state, logfile
    finally:
        log.removeHandler(handler)
        handler.close()
        state.pool.shutdown(wait=True)


def chat_body(lm, **kw):
    return {"model": lm.name, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, **kw}


def engine_failure(*_a, **_k):
    raise RuntimeError("engine exploded")


def test_a_500_is_logged_with_its_traceback_and_says_where(served, tiny_lm, monkeypatch):
    client, _, logfile = served
    monkeypatch.setattr(tiny_lm.decoder.engine, "append", engine_failure)
    r = client.post("/v1/chat/completions", json=chat_body(tiny_lm))
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "server_error" and err["code"] == "internal_error"
    assert "POST /v1/chat/completions" in err["message"] and "RuntimeError at test_server_errors.py:" in err["message"]
    rid = err["message"].rsplit("request ", 1)[1]
    text = logfile.read_text()
    assert f"request {rid}" in text and "Traceback (most recent call last)" in text and "engine exploded" in text
    monkeypatch.undo()
    assert client.post("/v1/chat/completions", json=chat_body(tiny_lm, temperature=0)).status_code == 200


def test_a_failure_mid_stream_is_an_error_event_and_logged(served, tiny_lm, monkeypatch):
    client, _, logfile = served
    monkeypatch.setattr(tiny_lm.decoder.engine, "append", engine_failure)
    r = client.post("/v1/completions", json={"model": tiny_lm.name, "prompt": "The quick", "max_tokens": 4,
                                              "stream": True})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert r.status_code == 200 and events[-1]["error"]["type"] == "server_error"
    assert "/v1/completions stream" in events[-1]["error"]["message"] and r.text.rstrip().endswith("[DONE]")
    assert "Traceback" in logfile.read_text()


def test_a_503_is_logged_too(served, tiny_lm):
    client, state, logfile = served
    for _ in range(state.parallel):  # other generations hold every slot past the queue timeout
        state.gate.acquire_model()
    try:
        r = client.post("/v1/chat/completions", json=chat_body(tiny_lm))
    finally:
        for _ in range(state.parallel):
            state.gate.release_model()
    assert r.status_code == 503 and r.json()["error"]["code"] == "queue_timeout"
    assert "answered 503" in logfile.read_text()


def test_a_request_without_sampling_gets_the_models_recommended_settings(tiny_llama_dir, tmp_path):
    folder = tmp_path / "greedy-by-default"
    shutil.copytree(tiny_llama_dir, folder)
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    lm = load_model(str(folder), backend="torch", threads=1)
    state = ServerState(generator=lm, encoder=None, default_max_tokens=12)
    try:
        with TestClient(create_app(state)) as client:
            sampling = client.get("/v1/models").json()["data"][0]["sampling"]
            assert sampling["temperature"] == 0.0 and sampling["source"].endswith("generation_config.json")
            body = {"model": lm.name, "messages": [{"role": "user", "content": "To be"}]}
            texts = {client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
                     for _ in range(3)}
            greedy = client.post("/v1/chat/completions", json={**body, "temperature": 0})
            assert texts == {greedy.json()["choices"][0]["message"]["content"]}
            hot = [client.post("/v1/chat/completions", json={**body, "temperature": 2.0, "seed": s}).json()
                   for s in range(4)]
            assert len({h["choices"][0]["message"]["content"] for h in hot}) > 1  # an explicit setting still wins
            # The same prompt again: its KV entries come from the cache (all but the last token).
            assert greedy.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == \
                greedy.json()["usage"]["prompt_tokens"] - 1
    finally:
        state.pool.shutdown(wait=True)
