"""The hybrid router inside `edgewise serve`, against a second real server process acting as the cloud.

The cloud is itself `edgewise serve` (another tiny model) with --request-log, so the test reads exactly
what reached it. Faults (hang, 500, reset) use the scriptable loopback cloud from tests/route.
"""

import time

import httpx
import openai
import pytest

from tests.route.conftest import CloudProcess

from .conftest import Server

PII = {
    "email": "jane.doe@example.com",
    "phone": "+1 415 555 0134",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ip": "192.168.12.34",
}
PII_PROMPT = ("Please draft a reply to {email}, call {phone}, charge card {card}, wire to IBAN {iban}, "
              "and whitelist {ip}.").format(**PII)


def write_policy(tmp_path, privacy: str, **extra) -> str:
    p = tmp_path / f"policy-{privacy}.toml"
    lines = ['[router]', 'prefer = "cloud"', 'deadline_s = 60.0', '', '[policies.privacy]', f'mode = "{privacy}"',
             '', '[policies.connectivity]', f'fail_max = {extra.get("fail_max", 2)}',
             f'reset_timeout_s = {extra.get("reset_timeout_s", 60.0)}']
    p.write_text("\n".join(lines) + "\n")
    return str(p)


@pytest.fixture(scope="module")
def cloud(tiny_llama_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("cloud") / "requests.jsonl"
    s = Server(str(tiny_llama_dir), "--threads", "1", "--backend", "torch", "--request-log", str(log))
    s.log = log
    yield s
    s.stop()


def cloud_bodies(cloud) -> str:
    return cloud.log.read_text() if cloud.log.exists() else ""


def chat(server, content, stream=False, **kw):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
    mid = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
    return c.chat.completions.with_raw_response.create(
        model=mid, messages=[{"role": "user", "content": content}], max_tokens=8, temperature=0, stream=stream, **kw)


def test_redact_mode_cloud_never_sees_pii(cloud, tiny_llama_dir, tmp_path):
    cloud_id = httpx.get(cloud.url + "/v1/models").json()["data"][0]["id"]
    edge = Server(str(tiny_llama_dir), "--threads", "1", "--cloud", cloud.url, "--cloud-model", cloud_id,
                  "--policy", write_policy(tmp_path, "redact"))
    try:
        before = cloud_bodies(cloud)
        raw = chat(edge, PII_PROMPT)
        body = raw.parse()
        assert raw.headers["x-edgewise-answered-by"] == "cloud"
        assert raw.http_response.json()["edgewise"]["redacted"] is True
        sent = cloud_bodies(cloud)[len(before):]
        assert sent, "the cloud should have been asked"
        for value in PII.values():
            assert value not in sent and value.replace(" ", "") not in sent
        assert "[EMAIL_1]" in sent
        assert body.choices[0].message.content is not None
        # streaming goes through the same decision
        s = chat(edge, "Summarise: contact " + PII["email"], stream=True)
        assert s.headers["x-edgewise-answered-by"] == "cloud"
        text = "".join(ch.choices[0].delta.content or "" for ch in s.parse() if ch.choices)
        assert isinstance(text, str)
        assert PII["email"] not in cloud_bodies(cloud)[len(before):]
    finally:
        edge.stop()


def test_local_only_mode_sends_nothing(cloud, tiny_llama_dir, tmp_path):
    cloud_id = httpx.get(cloud.url + "/v1/models").json()["data"][0]["id"]
    edge = Server(str(tiny_llama_dir), "--threads", "1", "--cloud", cloud.url, "--cloud-model", cloud_id,
                  "--policy", write_policy(tmp_path, "local-only"))
    try:
        before = cloud_bodies(cloud)
        raw = chat(edge, PII_PROMPT)
        assert raw.headers["x-edgewise-answered-by"] == "edge"
        assert cloud_bodies(cloud) == before
        # a request without PII still escalates (prefer = cloud)
        assert chat(edge, "What is a lighthouse?").headers["x-edgewise-answered-by"] == "cloud"
    finally:
        edge.stop()


def _metric(server, name):
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_cloud_killed_mid_run_every_request_answered_and_breaker_recovers(tiny_llama_dir, tmp_path):
    fake = CloudProcess().start()
    edge = Server(str(tiny_llama_dir), "--threads", "1", "--cloud", fake.url, "--cloud-model", "big",
                  "--policy", write_policy(tmp_path, "redact", fail_max=2, reset_timeout_s=2.0))
    try:
        who = [chat(edge, f"question {i}").headers["x-edgewise-answered-by"] for i in range(2)]
        assert who == ["cloud", "cloud"]
        port = fake.port
        fake.kill()
        t0 = time.time()
        who = [chat(edge, f"question {i}").headers["x-edgewise-answered-by"] for i in range(4)]
        assert who == ["edge-degraded"] * 4 and time.time() - t0 < 60
        assert _metric(edge, "edgewise_cloud_circuit_open") == 1
        fake = CloudProcess().start(port=port)
        time.sleep(2.2)  # half-open after reset_timeout_s
        assert chat(edge, "after restart").headers["x-edgewise-answered-by"] == "cloud"
        assert _metric(edge, "edgewise_cloud_circuit_open") == 0
    finally:
        edge.stop()
        fake.kill()


@pytest.mark.parametrize("mode", ["hang", "500", "reset"])
def test_cloud_faults_degrade_within_budget(tiny_llama_dir, tmp_path, mode):
    fake = CloudProcess().start()
    policy = tmp_path / "p.toml"
    policy.write_text('[router]\nprefer = "cloud"\ndeadline_s = 4.0\n')
    edge = Server(str(tiny_llama_dir), "--threads", "1", "--cloud", fake.url, "--cloud-model", "big",
                  "--policy", str(policy))
    try:
        fake.control(mode, times=10, delay=30.0)
        t0 = time.time()
        raw = chat(edge, "hello")
        took = time.time() - t0
        assert raw.status_code == 200
        assert raw.headers["x-edgewise-answered-by"] == "edge-degraded"
        assert raw.parse().choices[0].message.content is not None
        assert took < 4.0 + 3.0, f"{mode}: took {took:.1f}s for a 4 s budget"
    finally:
        edge.stop()
        fake.kill()


# --- streaming behind the router (docs/routing.md, "Streaming behind the router") ------------------------------------

def streamed(server, content, **kw) -> tuple[str, list[str]]:
    """(the answered_by header, the content of each chunk that carried text), read with the openai client."""
    s = chat(server, content, stream=True, **kw)
    chunks = [ch.choices[0].delta.content for ch in s.parse() if ch.choices and ch.choices[0].delta.content]
    return s.headers["x-edgewise-answered-by"], chunks


def test_edge_answer_streams_token_by_token_behind_the_router(tiny_llama_dir, tmp_path):
    fake = CloudProcess().start()
    edge_policy, held_policy = tmp_path / "edge.toml", tmp_path / "held.toml"
    edge_policy.write_text('[router]\nprefer = "edge"\n')
    # Confidence on the edge's log-probs, below any threshold: the policy reads the edge's whole answer, escalates.
    held_policy.write_text('[router]\nprefer = "edge"\n\n[policies.confidence]\nthreshold = inf\n')
    servers = []
    try:
        for policy in (edge_policy, held_policy):
            servers.append(Server(str(tiny_llama_dir), "--threads", "1", "--cloud", fake.url, "--cloud-model", "big",
                                  "--policy", str(policy)))
        edge, held = servers
        prompt = "What is the capital of France?"
        whole = chat(edge, prompt)
        assert whole.headers["x-edgewise-answered-by"] == "edge"
        text = whole.parse().choices[0].message.content
        who, chunks = streamed(edge, prompt)
        assert who == "edge" and len(chunks) > 1 and "".join(chunks) == text
        assert fake.requests() == []
        # A client that leaves stops the streaming edge: one cancelled generation, counted once, the slot freed.
        before = _metric(edge, "edgewise_cancelled_total") or 0.0
        body = {"model": httpx.get(edge.url + "/v1/models").json()["data"][0]["id"], "stream": True,
                "messages": [{"role": "user", "content": "go"}], "max_tokens": 200, "temperature": 1.0, "seed": 1}
        with httpx.stream("POST", edge.url + "/v1/chat/completions", json=body, timeout=60) as r:
            for i, _ in enumerate(r.iter_lines()):
                if i >= 3:
                    break
        deadline = time.time() + 20
        while time.time() < deadline and (_metric(edge, "edgewise_cancelled_total") or 0.0) <= before:
            time.sleep(0.1)
        time.sleep(0.5)
        assert _metric(edge, "edgewise_cancelled_total") == before + 1
        assert _metric(edge, "edgewise_queue_depth") == 0
        # Held back, then escalated: the client sees the cloud's answer alone, none of the edge's.
        who, chunks = streamed(held, prompt)
        assert who == "cloud" and "".join(chunks) == "cloud: " + prompt
        assert len(fake.requests()) == 1
    finally:
        for s in servers:
            s.stop()
        fake.kill()
