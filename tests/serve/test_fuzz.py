"""Property-based fuzz of every endpoint against a real `edgewise serve` on a tiny random-init model.

Bodies are drawn per endpoint: each field of its OpenAPI schema is left out, given a plausible value (a served model
name, short messages, in-range numbers, token ids in and out of the vocabulary) or any JSON at all, and some bodies
are not JSON. The server must answer every one with a status below 500 (a stream must carry no server_error event),
log no error, and still be healthy afterwards. Deterministic by default (the same ~600 requests each run); set
EDGEWISE_FUZZ_EXAMPLES=N for N random examples per endpoint.
"""

import json
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Server

EXAMPLES = int(os.environ.get("EDGEWISE_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=EXAMPLES or 200, derandomize=not EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fuzzed(tiny_llama_dir, tiny_bert_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    s = Server(str(tiny_llama_dir), "--embed-model", str(tiny_bert_dir), "--threads", "1", "--max-queue", "4",
               "--max-tokens", "8", "--log", str(log))
    models = [m["id"] for m in httpx.get(s.url + "/v1/models").json()["data"]]
    s.client = httpx.Client(base_url=s.url, timeout=60)
    s.log, s.models, s.seen = log, models, {}
    yield s
    s.client.close()
    s.stop()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
TEXT = st.text(max_size=40) | st.sampled_from(["", "hello", "caf\u00e9 \u20ac \U0001F600", "\ud800", "word " * 300])


def field(plausible):
    return plausible | JSON


@st.composite
def mutated(draw, valid, fields: dict):
    """A valid body with up to three of its fields dropped, replaced by any JSON, or redrawn from `fields`."""
    b = dict(draw(valid))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(fields) + ["unknown_field"]))
        how = draw(st.sampled_from(["drop", "junk", "other"]))
        if how == "drop":
            b.pop(key, None)
        else:
            b[key] = draw(JSON if how == "junk" or key not in fields else fields[key])
    return b


def models(server, kind):
    return st.sampled_from(server.models[:1] if kind == "generate" else server.models[1:])


SHORT = st.text(max_size=30)
NUMBER = st.integers(-3, 40) | st.floats(-1, 3) | st.sampled_from([0, 1, 2.0, 1e20, -0.0])
ROLE = st.sampled_from(["system", "user", "assistant", "tool", "developer"])
SAMPLING = {"max_tokens": st.integers(1, 8), "temperature": st.floats(0, 2), "top_p": st.floats(0.05, 1),
            "top_k": st.integers(0, 50), "seed": st.integers(0, 2**32), "stop": st.lists(st.text(min_size=1,
                                                                                            max_size=3), max_size=2),
            "stream": st.booleans()}
WEIRD = {"max_tokens": NUMBER, "max_completion_tokens": NUMBER, "temperature": NUMBER, "top_p": NUMBER,
         "top_k": NUMBER, "seed": st.integers(-2**64, 2**64), "stop": TEXT | st.lists(TEXT, max_size=5), "n": NUMBER,
         "model": st.sampled_from(["nope", "", "\ud800"])}
PART = st.fixed_dictionaries({"type": field(st.just("text")), "text": field(TEXT)})
MESSAGE = st.fixed_dictionaries({"role": ROLE, "content": SHORT})
# Unhashable and other non-string roles first: `"role": {}` was a TypeError 500 (issue 14).
ODD_ROLE = st.sampled_from([{}, [], ["user"], {"role": "user"}, 1, None, "User"]) | field(ROLE)
ODD_MESSAGE = st.fixed_dictionaries({}, optional={"role": ODD_ROLE, "content": field(TEXT | st.lists(PART, max_size=3)),
                                                  "name": JSON})
TOKEN_IDS = st.lists(st.integers(-2, 400) | st.sampled_from([182812531, 2**40]), min_size=0, max_size=12)


def chat_body(server):
    valid = st.fixed_dictionaries({"model": models(server, "generate"), "messages": st.lists(MESSAGE, min_size=1,
                                                                                             max_size=2)},
                                  optional={**SAMPLING, "logprobs": st.booleans(),
                                            "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()})})
    return mutated(valid, {**WEIRD, "messages": st.lists(ODD_MESSAGE | MESSAGE, max_size=3),
                           "logprobs": JSON, "stream_options": JSON})


def completion_body(server):
    valid = st.fixed_dictionaries({"model": models(server, "generate"), "prompt": SHORT.filter(bool) | TOKEN_IDS},
                                  optional={**SAMPLING, "echo": st.booleans(), "logprobs": st.integers(0, 5)})
    return mutated(valid, {**WEIRD, "prompt": TEXT | TOKEN_IDS | st.lists(TEXT, max_size=2),
                           "max_tokens": st.integers(-1, 300), "echo": JSON, "logprobs": st.integers(-1, 6)})


def embeddings_body(server):
    valid = st.fixed_dictionaries({"model": models(server, "embed"), "input": SHORT.filter(bool) |
                                   st.lists(SHORT.filter(bool), min_size=1, max_size=3)},
                                  optional={"encoding_format": st.sampled_from(["float", "base64"])})
    return mutated(valid, {"model": WEIRD["model"] | models(server, "generate"),
                           "input": TEXT | st.lists(TEXT, max_size=4) | TOKEN_IDS,
                           "encoding_format": st.sampled_from(["int8", ""]) | JSON})


def send(server, path: str, payload) -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = server.client.post(path, content=raw, headers={"content-type": "application/json"})
    server.seen[r.status_code] = server.seen.get(r.status_code, 0) + 1
    assert r.status_code < 500, f"{path} {raw[:300]!r} -> {r.status_code} {r.text[:500]}"
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        assert '"server_error"' not in r.text, f"{path} {raw[:300]!r} -> {r.text[-500:]}"
    elif r.status_code >= 400:
        err = r.json()["error"]
        assert err["message"] and err["type"]
    return r


def test_chat_completions(fuzzed):
    @SETTINGS
    @given(st.data())
    def run(data):
        send(fuzzed, "/v1/chat/completions", data.draw(chat_body(fuzzed) | st.binary(max_size=30)))

    run()


def test_completions(fuzzed):
    @SETTINGS
    @given(st.data())
    def run(data):
        send(fuzzed, "/v1/completions", data.draw(completion_body(fuzzed) | JSON))

    run()


def test_embeddings_and_the_read_only_endpoints(fuzzed):
    @settings(SETTINGS, max_examples=EXAMPLES or 120)
    @given(st.data())
    def run(data):
        send(fuzzed, "/v1/embeddings", data.draw(embeddings_body(fuzzed) | JSON))

    run()
    for path in ("/v1/models", "/health", "/metrics", "/openapi.json"):
        assert fuzzed.client.get(path).status_code == 200
    assert fuzzed.client.post("/v1/models", json={}).status_code == 405


def test_server_survived_and_logged_no_error(fuzzed):
    print("fuzz status counts:", dict(sorted(fuzzed.seen.items())))
    assert fuzzed.alive()
    assert sum(fuzzed.seen.values()) >= 500 and fuzzed.seen.get(200, 0) >= 20, fuzzed.seen
    log = fuzzed.log.read_text() if fuzzed.log.exists() else ""
    assert "ERROR" not in log, log[-3000:]
    queue = [ln for ln in fuzzed.client.get("/metrics").text.splitlines() if ln.startswith("edgewise_queue_depth ")]
    assert queue == ["edgewise_queue_depth 0"]
