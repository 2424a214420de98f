"""Issue 23 item 7, the loop closed: `edgewise route eval --calibrate-out FILE` on a tiny edge and a small task file
writes a policy; `edgewise serve --policy FILE` loads it and, asked the held-out items, routes each one by the
written threshold and escalates the share that route eval reported for them.

The cloud is a real OpenAI-compatible server on loopback: fake_cloud.py (it echoes the prompt, so it is right
exactly when the reference is in the prompt), and llama.cpp's own server on the packaged SmolLM2 where llamacpp's
server is installed.
"""

import json
import subprocess
import sys
import tomllib

import httpx
import pytest

from edgewise.bench.llamacpp_server import LlamaServer, server_available
from tests.route.conftest import CloudProcess

from .conftest import Server

N_ITEMS = 24  # route eval needs at least 20 answered items; about half are held out


@pytest.fixture(params=["fake", pytest.param("llamacpp", marks=pytest.mark.integration)])
def cloud(request):
    """(base URL, model name) of a running cloud."""
    if request.param == "fake":
        c = CloudProcess().start()
        yield c.url, "fake"
        c.kill()
        return
    why = server_available()
    if why is not None:
        pytest.skip(f"llamacpp: {why}")
    from edgewise.models.packaged import packaged_path

    s = LlamaServer(packaged_path("smollm2-135m"), alias="smollm2-cloud", threads=1, n_ctx=2048).start()
    yield s.url, s.alias
    s.stop()


def route_eval(tmp_path, tiny_llama_dir, url: str, model: str):
    """Run the command; returns (the written policy, its held-out rows from answers.jsonl)."""
    rows = [{"prompt": f"Say the word {'zebra' if i % 2 else 'nothing'} number {i}", "reference": "zebra"}
            for i in range(N_ITEMS)]
    task = tmp_path / "qa.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy, out = tmp_path / "policy.toml", tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "edgewise", "route", "eval", "--edge", str(tiny_llama_dir),
                        "--cloud", url, "--cloud-model", model, "--task", f"qa:{task}", "--embed", "hash",
                        "--out", str(out), "--calibrate-out", str(policy), "--cache", str(tmp_path / "a.sqlite"),
                        "--threads", "1", "--overlap"],  # the cloud answers while the edge does: the mode a
                       capture_output=True, text=True, timeout=600)  # 2-core benchmark runs in
    assert r.returncode == 0, r.stderr[-2000:]
    answers = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
    return policy, [a for a in answers if a["split"] == "held_out"]


def test_route_eval_policy_routes_the_server(tmp_path, tiny_llama_dir, cloud):
    url, model = cloud
    policy, held = route_eval(tmp_path, tiny_llama_dir, url, model)
    assert policy.read_text().startswith("# Routing policy written by `edgewise route eval`")
    doc = tomllib.loads(policy.read_text())
    threshold, written = doc["policies"]["confidence"]["threshold"], doc["calibration"]
    assert written["rows"] == len(held) > 0
    server = Server(str(tiny_llama_dir), "--threads", "1", "--cloud", url, "--cloud-model", model,
                    "--policy", str(policy))
    try:
        mid = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        escalated = 0
        for a in held:
            # The edge's request as route eval made it: greedy, the same answer length, so the same log-probs.
            body = {"model": mid, "messages": [{"role": "user", "content": a["prompt"]}], "temperature": 0,
                    "max_tokens": len(a["edge_logprobs"])}
            r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
            assert r.status_code == 200, r.text
            route = r.json()["edgewise"]
            score = route["scores"]["confidence"]
            assert route["answered_by"] == ("cloud" if score < threshold else "edge"), (score, threshold, route)
            assert r.headers["x-edgewise-answered-by"] == route["answered_by"]
            escalated += route["answered_by"] == "cloud"
        # What route eval said the policy does on these items is what the server did.
        assert escalated / len(held) == pytest.approx(written["escalated_share"], abs=1e-6)
    finally:
        server.stop()
