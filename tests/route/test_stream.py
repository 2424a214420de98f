"""Router.open_stream on the real runtime (a tiny random-init Llama) and the loopback fake cloud (fake_cloud.py, a
real HTTP process): the edge streams token by token when no policy read its answer; a policy that reads it holds it
back, so an escalation shows the client one answer; a client that leaves is recorded once; a cloud that breaks
midway keeps what it sent and says so."""

import json
import math
import threading

import pytest

from edgewise.route import CLOUD, EDGE, CloudClient, CloudConfig, Router
from edgewise.route.decision_log import DecisionLog
from edgewise.runtime import GenerationConfig, generate, load_model

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
# ignore_eos: a random-init model may pick its end token early; these tests need an answer several tokens long.
CFG = GenerationConfig(max_tokens=12, temperature=0.0, ignore_eos=True)


@pytest.fixture(scope="module")
def lm(tiny_llama_dir):
    return load_model(str(tiny_llama_dir), backend="ort", threads=1)


def edge_fns(lm, cfg=CFG):
    """(edge_fn, edge_stream_fn) on the runtime, as the server passes them."""
    return (lambda r: generate(lm, r, cfg),
            lambda r, on_step=None, cancel=None: generate(lm, r, cfg, on_step=on_step, cancel=cancel))


def make_router(doc: dict, cloud=None, **kw) -> Router:
    doc = {**doc, "policies": {"privacy": {"mode": "off"}, **doc.get("policies", {})}}
    c = CloudClient(CloudConfig(url=cloud.url, model="big", connect_timeout_s=0.5, max_retries=0)) if cloud else None
    return Router.from_policy(doc, cloud_fn=c, cloud_stream_fn=c.stream_fn if c else None, **kw)


def confidence(threshold: float) -> dict:
    return {"router": {"prefer": "edge"}, "policies": {"confidence": {"threshold": threshold, "method": "mean"}}}


def read_log(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_edge_streams_token_by_token(lm):
    whole = generate(lm, PROMPT, CFG)
    edge_fn, edge_stream_fn = edge_fns(lm)
    first_read = threading.Event()

    def paced(r, on_step=None, cancel=None):
        # After its first text the edge waits until the reader holds a chunk: an edge sent as one chunk at the end
        # would only reach the reader after this wait had run out, and after the edge had finished.
        def step(resp):
            on_step(resp)
            if resp.text and not first_read.is_set():
                first_read.wait(10)
        return edge_stream_fn(r, on_step=step, cancel=cancel)

    r = make_router({"router": {"prefer": "edge"}})
    s = r.open_stream(PROMPT, edge_fn, edge_stream_fn=paced)
    assert s.answered_by == EDGE and s.edge_streams and s.headers()["X-Edgewise-Answered-By"] == "edge"
    chunks, done_at_chunk = [], []
    for piece in s:
        chunks.append(piece)
        done_at_chunk.append(s.ctx.edge_done)
        first_read.set()
    assert len(chunks) > 1 and "".join(chunks) == whole.text
    assert done_at_chunk[0] is False  # the first chunk reached the reader while the edge was still generating
    res = s.result
    assert res.answered_by == EDGE and res.text == whole.text
    assert res.edge.token_ids == whole.token_ids and res.edge.finish_reason == "length"
    assert r.counts == {EDGE: 1, CLOUD: 0, "edge-degraded": 0}


def test_an_edge_without_a_stream_fn_answers_in_one_chunk(lm):
    edge_fn, _ = edge_fns(lm)
    s = make_router({"router": {"prefer": "edge"}}).open_stream(PROMPT, edge_fn)
    assert not s.edge_streams and s.ctx.edge_done
    assert list(s) == [generate(lm, PROMPT, CFG).text]


def test_a_policy_that_reads_the_edge_holds_it_back(lm):
    """Confidence on the edge's log-probs decides after the whole answer; kept on the edge, it goes out at once."""
    edge_fn, edge_stream_fn = edge_fns(lm)
    r = make_router(confidence(-math.inf))
    s = r.open_stream(PROMPT, edge_fn, edge_stream_fn=edge_stream_fn)
    assert s.ctx.edge_done and not s.edge_streams  # generated before the decision, before any byte
    assert s.answered_by == EDGE and s.reason.startswith("confident")
    assert list(s) == [generate(lm, PROMPT, CFG).text]
    assert s.result.scores["confidence"] == pytest.approx(sum(s.result.edge.logprobs) / len(s.result.edge.logprobs))


def test_escalation_after_buffering_is_one_coherent_cloud_answer(lm, cloud):
    edge_fn, edge_stream_fn = edge_fns(lm)
    edge_text = generate(lm, PROMPT, CFG).text
    r = make_router(confidence(math.inf), cloud)
    s = r.open_stream(PROMPT, edge_fn, edge_stream_fn=edge_stream_fn)
    assert s.answered_by == CLOUD and s.reason.startswith("low confidence")  # known before the first byte
    assert s.ctx.edge_done  # the edge had finished, and none of it was sent
    chunks = list(s)
    assert len(chunks) > 1 and "".join(chunks) == "cloud: " + PROMPT[0]["content"]
    assert edge_text not in "".join(chunks)
    assert s.result.answered_by == CLOUD and s.result.edge.text == edge_text
    assert len(cloud.requests()) == 1


def test_client_leaving_early_is_recorded_once_and_stops_the_edge(lm, tmp_path):
    edge_fn, edge_stream_fn = edge_fns(lm)
    r = make_router({"router": {"prefer": "edge"}}, log=DecisionLog(tmp_path / "d.jsonl"))
    s = r.open_stream(PROMPT, edge_fn, edge_stream_fn=edge_stream_fn, request_id="r1")
    it = iter(s)
    first = next(it)
    it.close()  # the client went away after one chunk
    s.close()  # the server closes it again on its way out: no second record
    res = s.result
    assert res.answered_by == EDGE and res.text == first and f"client left after {len(first)} chars" in res.reason
    assert res.edge.finish_reason == "cancelled" and res.edge.generation_tokens < CFG.max_tokens
    assert sum(r.counts.values()) == 1
    assert [(x["request_id"], x["answered_by"]) for x in read_log(tmp_path / "d.jsonl")] == [("r1", EDGE)]
    with pytest.raises(RuntimeError, match="read once"):
        iter(s)


def test_client_leaving_a_cloud_stream_is_recorded_once(lm, cloud, tmp_path):
    edge_fn, edge_stream_fn = edge_fns(lm)
    r = make_router({"router": {"prefer": "cloud"}}, cloud, log=DecisionLog(tmp_path / "d.jsonl"))
    s = r.open_stream(PROMPT, edge_fn, edge_stream_fn=edge_stream_fn)
    assert s.answered_by == CLOUD and not s.ctx.edge_done  # the edge never ran
    it = iter(s)
    assert next(it) == "clo"  # fake_cloud sends 3-character chunks
    s.close()
    assert s.result.answered_by == CLOUD and s.result.text == "clo" and "client left after 3 chars" in s.result.reason
    assert sum(r.counts.values()) == 1 and len(read_log(tmp_path / "d.jsonl")) == 1


def test_cloud_failing_mid_stream_keeps_the_partial_answer_and_says_so(lm, cloud):
    cloud.control("sse_break")
    edge_fn, edge_stream_fn = edge_fns(lm)
    r = make_router({"router": {"prefer": "cloud"}}, cloud)
    s = r.open_stream(PROMPT, edge_fn, edge_stream_fn=edge_stream_fn)
    assert s.answered_by == CLOUD
    assert "".join(s) == "cloud:"  # two 3-character chunks, then the connection is reset
    res = s.result
    assert res.answered_by == CLOUD and res.text == "cloud:" and "after 6 chars" in res.reason
    assert res.edge is None  # not swapped for the edge's answer: half an answer cannot be taken back
    assert r.breaker.snapshot()["consecutive_failures"] == 1
