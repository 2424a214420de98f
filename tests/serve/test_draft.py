"""`edgewise serve --draft`: speculative decoding behind the OpenAI API gives the answers of a server without it, token
for token (fp32 ort: a k-row pass rounds like k one-row passes, docs/speculative.md "Limits"), and reports its
totals in `usage.draft`."""

import contextlib
import subprocess
import sys
import threading
import time

import openai
import pytest
import uvicorn

from edgewise.errors import EdgewiseError
from edgewise.runtime import load_model
from edgewise.serve import ServerState, create_app

from .conftest import free_port

# Repeats itself, so lookup finds n-grams to propose.
PROMPTS = ("To be, or not to be, that is the question. To be, or not to be, that is",
           "The quick brown fox jumps over the lazy dog. The quick brown fox")


@pytest.fixture(scope="module")
def lm(tiny_llama_dir):
    m = load_model(str(tiny_llama_dir), backend="ort", threads=1)
    assert m.precision == "fp32"
    return m


@contextlib.contextmanager
def serving(state: ServerState):
    """The real app on a loopback port, in this process (the state's drafts stay inspectable)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
    finally:
        server.should_exit = True
        th.join(30)
        state.pool.shutdown(wait=True)


def state_for(lm, draft=None, parallel=2) -> ServerState:
    return ServerState(generator=lm, encoder=None, default_max_tokens=24, max_queue=4, parallel=parallel,
                       max_sessions=4, draft=draft, threads=1)


def ask(c, lm, prompt: str, stream: bool):
    """(the answer's text, its usage as a dict) for one greedy chat request."""
    kw = dict(model=lm.name, messages=[{"role": "user", "content": prompt}], max_tokens=24, temperature=0)
    if not stream:
        r = c.chat.completions.create(**kw)
        return r.choices[0].message.content, r.usage.model_dump()
    chunks = list(c.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices), chunks[-1].usage.model_dump()


@pytest.fixture(scope="module")
def plain(lm):
    """The answers of a server without a draft: {(prompt, stream): (text, completion_tokens)}."""
    with serving(state_for(lm)) as c:
        out = {}
        for p in PROMPTS:
            for stream in (False, True):
                text, u = ask(c, lm, p, stream)
                assert "draft" not in u
                out[p, stream] = (text, u["completion_tokens"])
        return out


@pytest.mark.parametrize("spec", ["lookup", "lookup:adapt=no", "model:{dir},k=3,adapt=no"])
def test_greedy_answers_equal_a_server_without_a_draft(lm, plain, tiny_llama_dir, spec):
    """Every answer equals the plain server's. With adapt=no each answer proposes (the prompts repeat themselves:
    lookup finds n-grams too). The default measured k may settle on plain steps for a tiny model, whose steps cost
    almost nothing, and a lookup that finds no match in the first steps costs what a plain step does, so whether it
    proposes at all then depends on timing: only the answers are checked."""
    spec = spec.format(dir=tiny_llama_dir)
    with serving(state_for(lm, spec)) as c:
        for p in PROMPTS:
            for stream in (False, True):
                text, u = ask(c, lm, p, stream)
                assert (text, u["completion_tokens"]) == plain[p, stream], (spec, p, stream)
                d = u["draft"]
                assert set(d) == {"proposed", "accepted", "steps", "acceptance"}
                assert 0 <= d["accepted"] <= d["proposed"] and 1 <= d["steps"] <= u["completion_tokens"]
                if "adapt=no" in spec:
                    assert d["proposed"] > 0
                if spec.startswith("model:"):  # the model drafting for itself: every proposal is kept
                    assert d["accepted"] == d["proposed"]
                    assert d["steps"] < u["completion_tokens"]  # several tokens per forward pass


def test_completions_report_the_draft(lm):
    with serving(state_for(lm, "lookup")) as c:
        r = c.completions.create(model=lm.name, prompt=PROMPTS[0], max_tokens=16, temperature=0)
        d = r.usage.model_dump()["draft"]
        assert d["steps"] >= 1 and d["accepted"] <= d["proposed"]


def test_parallel_streams_each_get_their_own_model_draft(lm, plain, tiny_llama_dir):
    state = state_for(lm, f"model:{tiny_llama_dir},k=3,adapt=no", parallel=2)
    out: dict = {}
    with serving(state) as c:
        start = threading.Barrier(len(PROMPTS))

        def one(p):
            start.wait()
            out[p] = ask(c, lm, p, stream=True)

        threads = [threading.Thread(target=one, args=(p,)) for p in PROMPTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    for p in PROMPTS:
        text, u = out[p]
        assert (text, u["completion_tokens"]) == plain[p, True]
        assert u["draft"]["accepted"] == u["draft"]["proposed"] > 0
    # One draft per slot, sharing the draft model's weights, each on a session (KV cache) of its own.
    with state.drafts.take() as a, state.drafts.take() as b:
        assert a is not b and a.model is b.model
        assert a._session is not None and b._session is not None and a._session is not b._session


def test_a_bad_draft_stops_the_start(lm, tiny_llama_dir, tiny_bert_dir):
    for spec, words in [("lookup:k=0", "positive integer"), ("lookup:size=3", "unknown option"),
                        (f"model:{tiny_bert_dir}", "causal LM")]:
        with pytest.raises(EdgewiseError, match=words) as e:
            state_for(lm, spec)
        assert "\n" not in str(e.value)
    # The CLI: an unknown source fails before the model loads, one line, exit 2.
    r = subprocess.run([sys.executable, "-m", "edgewise", "serve", str(tiny_llama_dir), "--draft", "nope",
                        "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown draft source 'nope'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_serve_command_passes_its_draft_on(tiny_llama_dir):
    # The whole CLI path: `edgewise serve --draft lookup` builds the draft and every answer reports its totals.
    from .conftest import Server

    s = Server(str(tiny_llama_dir), "--threads", "1", "--max-tokens", "24", "--draft", "lookup")
    try:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="x")
        r = client.chat.completions.create(model=tiny_llama_dir.name, max_tokens=24, temperature=0,
                                           messages=[{"role": "user", "content": PROMPTS[0]}])
        draft = r.usage.model_extra["draft"]
        assert draft["steps"] >= 1 and draft["proposed"] >= draft["accepted"] >= 0
    finally:
        s.stop()
    r = subprocess.run([sys.executable, "-m", "edgewise", "serve", str(tiny_llama_dir), "--draft", "lookup:k=0",
                        "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "positive integer" in r.stderr and len(r.stderr.strip().splitlines()) == 1
