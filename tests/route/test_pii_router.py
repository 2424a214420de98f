"""Privacy through the real router: a possible phone number never reaches the (loopback) cloud, and a router whose
privacy relies on the PII tagger refuses to start without it (fail closed)."""

import re
import shutil

import pytest

from edgewise.errors import EdgewiseError
from edgewise.privacy.tagger import packaged_model_dir
from edgewise.route import CLOUD, CloudClient, CloudConfig, Router
from edgewise.route.config import check_privacy
from edgewise.runtime.types import GenerationResult

EDGE_ANSWER = GenerationResult(text="edge answer", token_ids=[1], logprobs=[-0.1], prompt_tokens=1,
                               generation_tokens=1, prompt_tps=0.0, generation_tps=0.0, ttft_ms=0.0, peak_rss_mb=0.0,
                               finish_reason="stop")
REDACT_TO_CLOUD = {"router": {"prefer": "cloud"}, "policies": {"privacy": {"mode": "redact"}}}


def cloud_router(cloud, doc=REDACT_TO_CLOUD) -> Router:
    c = CloudClient(CloudConfig(url=cloud.url, model="big", connect_timeout_s=0.5, max_retries=0))
    return Router.from_policy(doc, cloud_fn=c, cloud_stream_fn=c.stream_fn)


# --- a possible number is redacted, not only a valid one ------------------------------------------

# 555 is no US area code, so libphonenumber calls 555.123.4567 possible (right length) but not valid.
NUMBER = "555.123.4567"


@pytest.mark.parametrize("prompt", [
    f"call me at {NUMBER}",  # the reported miss
    f"I'm on {NUMBER} after six",  # no phone word: redacted because possible
    f"{NUMBER}",
])
def test_possible_phone_never_reaches_the_cloud(cloud, prompt):
    r = cloud_router(cloud)
    res = r.route([{"role": "user", "content": prompt}], lambda q: EDGE_ANSWER)
    assert res.answered_by == CLOUD and res.redacted and res.pii == {"phone": 1}
    assert res.text == f"cloud: {prompt}"  # the echo comes back with the number restored
    s = r.open_stream(prompt, lambda q: EDGE_ANSWER)
    assert "".join(s) == f"cloud: {prompt}" and s.answered_by == CLOUD
    sent = cloud.requests()
    assert len(sent) == 2
    for req in sent:  # no digits of it in any spelling: "555.123.4567", "5551234567", "555 123 4567"
        assert "4567" not in req["raw"] and "[PHONE_1]" in req["raw"]


# --- fail closed ---------------------------------------------------------------------------------

def refusal(tmp_path_or_folder, mode="redact") -> str:
    return (f"privacy mode {mode} needs the PII tagger at {tmp_path_or_folder} (no tagger.json there): reinstall "
            "edgewise, point EDGEWISE_PII_MODEL at a tagger folder, or set EDGEWISE_PII_MODEL=off to accept "
            "patterns only")


def test_redact_router_refuses_to_start_without_the_tagger(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEWISE_PII_MODEL", str(tmp_path))  # an empty folder
    with pytest.raises(EdgewiseError) as e:
        Router.from_policy({})  # no policy file: privacy redacts by default
    assert str(e.value) == refusal(tmp_path)


def test_local_only_policy_file_refuses_too(monkeypatch, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[policies.privacy]\nmode = "local-only"\n')
    monkeypatch.setenv("EDGEWISE_PII_MODEL", str(tmp_path / "gone"))
    with pytest.raises(EdgewiseError, match=re.escape(f"privacy mode local-only needs the PII tagger at "
                                                      f"{tmp_path / 'gone'} (not found)")):
        Router.from_policy_file(policy)


def test_a_tagger_that_does_not_load_refuses_too(monkeypatch, tmp_path):
    broken = tmp_path / "tagger"
    shutil.copytree(packaged_model_dir(), broken)
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    monkeypatch.setenv("EDGEWISE_PII_MODEL", str(broken))
    with pytest.raises(EdgewiseError) as e:
        Router.from_policy({})
    msg = str(e.value)
    assert msg.startswith(f"privacy mode redact needs the PII tagger at {broken} (") and "\n" not in msg
    assert "INVALID_PROTOBUF" in msg and msg.endswith("set EDGEWISE_PII_MODEL=off to accept patterns only")


def test_kinds_that_need_the_tagger_refuse_and_others_start(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEWISE_PII_MODEL", str(tmp_path))
    with pytest.raises(EdgewiseError, match="needs the PII tagger"):
        Router.from_policy({"policies": {"privacy": {"kinds": ["email", "person"]}}})
    # What relies on no tagger starts: pattern kinds only, privacy off, or the privacy policy disabled.
    Router.from_policy({"policies": {"privacy": {"kinds": ["email", "phone"]}}})
    Router.from_policy({"policies": {"privacy": {"mode": "off"}}})
    Router.from_policy({"policies": {"privacy": {"enabled": False}}})


def test_the_servers_early_check_reads_the_policy_document_as_the_router_does(monkeypatch, tmp_path):
    """`edgewise serve --cloud` runs check_privacy(doc) before it loads the model: it must refuse exactly when
    building the router would."""
    monkeypatch.setenv("EDGEWISE_PII_MODEL", str(tmp_path))
    for doc in ({}, {"policies": {"privacy": {"mode": "local-only"}}}, {"router": {"order": ["privacy"]}}):
        with pytest.raises(EdgewiseError, match="needs the PII tagger"):
            check_privacy(doc)
    for doc in ({"router": {"order": ["connectivity"]}}, {"policies": {"privacy": {"enabled": False}}},
                {"policies": {"privacy": {"mode": "off"}}}, {"policies": {"privacy": {"kinds": ["iban"]}}}):
        check_privacy(doc)
        Router.from_policy(doc)


def test_off_is_the_explicit_patterns_only_choice(monkeypatch, cloud):
    monkeypatch.setenv("EDGEWISE_PII_MODEL", "off")
    r = cloud_router(cloud)
    prompt = "Please forward the minutes to Chiara Bianchi at chiara@example.org"
    res = r.route(prompt, lambda q: EDGE_ANSWER)
    assert res.answered_by == CLOUD and res.pii == {"email": 1}  # the name goes through: the user chose that
    (req,) = cloud.requests()
    assert "Chiara Bianchi" in req["raw"] and "chiara@example.org" not in req["raw"]
    monkeypatch.delenv("EDGEWISE_PII_MODEL")  # back to the packaged tagger: the name is caught again
    cloud.clear()
    assert cloud_router(cloud).route(prompt, lambda q: EDGE_ANSWER).pii == {"email": 1, "person": 1}
    assert "Chiara Bianchi" not in cloud.requests()[0]["raw"]
