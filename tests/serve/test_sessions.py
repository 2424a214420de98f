"""The server's sessions: concurrent chats each on a session of their own (a real `edgewise serve` on loopback, the
official openai client), and the pool that keeps a conversation's KV cache for its follow-up turn."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from edgewise.runtime import GenerationConfig, generate, load_model, prompt_ids
from edgewise.serve.sessions import SessionPool

from .conftest import Server

CHATS = ([{"role": "user", "content": "To be, or not to be"}], [{"role": "user", "content": "Tell me a story"}])


def _metric(server, name):
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture(scope="module")
def server(tiny_llama_dir):
    s = Server(str(tiny_llama_dir), "--threads", "1", "--max-tokens", "16")
    yield s
    s.stop()


def test_two_concurrent_chats_run_on_separate_sessions_and_answer_as_alone(server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    mid = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
    # 160 tokens: long enough (hundreds of ms on the tiny model) that two streams overlap on a busy machine too
    kw = dict(model=mid, max_tokens=160, temperature=0)
    alone = [c.chat.completions.create(messages=m, **kw).choices[0].message.content for m in CHATS]
    created = _metric(server, "edgewise_sessions_created_total")
    start, got, times = threading.Barrier(2), [None, None], [[], []]

    def chat(i):
        start.wait()
        parts = []
        for ch in c.chat.completions.create(messages=CHATS[i], stream=True, **kw):
            if ch.choices and ch.choices[0].delta.content:
                parts.append(ch.choices[0].delta.content)
                times[i].append(time.perf_counter())
        got[i] = "".join(parts)

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert got == alone and all(len(a) > 10 for a in alone)
    # Both were streaming at once: each one's first token came before the other's last.
    assert max(t[0] for t in times) < min(t[-1] for t in times)
    # The two alone runs made a session each; the two at once found them (each its own prefix), or made more.
    assert _metric(server, "edgewise_sessions") >= 2 and created >= 2
    assert _metric(server, "edgewise_queue_depth") == 0


def test_a_follow_up_turn_reuses_its_conversations_session_while_another_chat_runs(server):
    mid = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]

    def post(messages):
        r = httpx.post(server.url + "/v1/chat/completions", timeout=120, json={
            "model": mid, "messages": messages, "max_tokens": 8, "temperature": 0})
        assert r.status_code == 200, r.text
        return r.json()

    first = [{"role": "user", "content": "Count to ten"}]
    one = post(first)
    post([{"role": "user", "content": "Something else entirely, a different conversation"}])
    follow = first + [{"role": "assistant", "content": one["choices"][0]["message"]["content"]},
                      {"role": "user", "content": "And then?"}]
    two = post(follow)
    # At least the first turn's prompt came from the cache: the other chat did not take this conversation's session.
    assert two["usage"]["prompt_tokens_details"]["cached_tokens"] >= one["usage"]["prompt_tokens"]


@pytest.fixture(scope="module")
def tiny_lm(tiny_llama_dir):
    return load_model(str(tiny_llama_dir), backend="torch", threads=1)


def test_the_pool_picks_by_prefix_makes_room_for_new_conversations_and_evicts_the_least_recent(tiny_lm):
    pool, cfg = SessionPool(tiny_lm, size=2), GenerationConfig(max_tokens=4, ignore_eos=True)
    a_ids = prompt_ids(tiny_lm, "To be, or not to be")
    b_ids = prompt_ids(tiny_lm, "The quick brown fox")

    def run(ids):
        s = pool.checkout(ids)
        try:
            r = generate(tiny_lm, ids, cfg, session=s)
        finally:
            pool.checkin(s)
        return s, r

    sa, ra = run(a_ids)
    sb, _ = run(b_ids)  # shares only the chat template's opening with A: a new session, A's cache stays
    assert sb is not sa and len(pool) == 2 and pool.created == 2
    sa2, ra2 = run(a_ids + ra.token_ids)  # A's follow-up lands on A's session
    assert sa2 is sa and ra2.cached_tokens == len(a_ids) + len(ra.token_ids) - 1
    s1, s2 = pool.checkout(a_ids), pool.checkout(b_ids)  # two at once: each its own
    assert {id(s1), id(s2)} == {id(sa), id(sb)}
    pool.checkin(s1)
    pool.checkin(s2)
    c_ids = prompt_ids(tiny_lm, "Edge devices run small language models")
    sc, _ = run(c_ids)  # full pool: the least recently used free session (A, given back before B)
    assert sc is sa and len(pool) == 2
    held = [pool.checkout(a_ids), pool.checkout(b_ids)]
    with pytest.raises(Exception, match="sessions are busy"):
        pool.checkout(c_ids)
    for s in held:
        pool.checkin(s, ok=False)  # a failed engine call: the session is dropped, not reused
    assert len(pool) == 0
