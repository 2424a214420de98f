"""End-to-end leak test: the hand-written PII set through `edgewise serve --cloud` against a recording cloud.

The cloud is tests/route/fake_cloud.py, a real HTTP server on loopback that records every request. A gold
value leaks when any of its letters or digits reaches the cloud un-redacted (the same rule as recall in
edgewise.privacy.evaluate): the recorded text is aligned with the prompt around its placeholders.

What it asserts (docs/routing.md quotes this): in redact mode no structured value reaches the cloud, at most
MAX_LEAKED["person"] of the 119 names and MAX_LEAKED["street_address"] of the 37 addresses do; in local-only mode
no prompt with detected PII leaves the device, and at most MAX_LOCAL_ONLY_MISSED prompts with gold PII do (the
detector found nothing in them, so they went out whole). The bounds are the counts measured with the shipped
tagger plus one per tagger kind, the margin tests/privacy/test_tagger.py allows for int8 kernels on other CPUs.
Without the tagger the server does not start at all (the last test).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edgewise.privacy import pii
from edgewise.privacy.evaluate import group, load_labelled
from tests.route.conftest import CloudProcess

from .conftest import Server, free_port

HAND = Path(__file__).resolve().parents[1] / "data" / "pii_handwritten.jsonl"
STRUCTURED_GROUPS = {"email", "phone", "credit_card", "iban", "ip", "national_id"}
# Measured (`pytest tests/serve/test_pii_leak.py -s`): 5 of 119 names, 1 of 37 addresses, 0 of 147 prompts.
MAX_LEAKED = {"person": 6, "street_address": 2}
MAX_LOCAL_ONLY_MISSED = 2


def policy(tmp_path, mode: str) -> str:
    p = tmp_path / f"policy-{mode}.toml"
    p.write_text(f'[router]\nprefer = "cloud"\ndeadline_s = 60.0\n\n[policies.privacy]\nmode = "{mode}"\n')
    return str(p)


def ask(client: httpx.Client, server: Server, model: str, text: str) -> httpx.Response:
    r = client.post(server.url + "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 4,
                          "temperature": 0})
    r.raise_for_status()
    return r


_PH = re.compile(r"\[[A-Z][A-Z0-9_]*_\d+\]")


def redacted_positions(original: str, sent: str) -> set[int]:
    """Character positions of `original` that the cloud did not receive: `sent` is `original` with some
    spans replaced by placeholders, so it matches `original` with each placeholder as a wildcard."""
    pieces = _PH.split(sent)
    m = re.fullmatch("(.*?)".join(re.escape(p) for p in pieces), original, re.DOTALL)
    if m is None:  # the cloud got text that is not the prompt with placeholders: treat all as seen
        return set()
    return {i for g in range(1, len(pieces)) for i in range(m.start(g), m.end(g))}


@pytest.fixture(scope="module")
def rows():
    return load_labelled(HAND)


@pytest.fixture(scope="module")
def fake_cloud():
    c = CloudProcess().start()
    yield c
    c.kill()
    c.http.close()


def run_mode(mode, rows, fake_cloud, tiny_llama_dir, tmp_path):
    edge = Server(str(tiny_llama_dir), "--threads", "1", "--cloud", fake_cloud.url, "--cloud-model", "big",
                  "--policy", policy(tmp_path, mode))
    sent = []
    try:
        with httpx.Client(timeout=120) as client:
            model = client.get(edge.url + "/v1/models").json()["data"][0]["id"]
            for row in rows:
                fake_cloud.clear()
                who = ask(client, edge, model, row.text).headers["x-edgewise-answered-by"]
                got = fake_cloud.requests()
                sent.append((who, [m["content"] for r in got for m in r["body"]["messages"]]))
    finally:
        edge.stop()
    return sent


def test_redact_mode_leaks(rows, fake_cloud, tiny_llama_dir, tmp_path, capsys):
    sent = run_mode("redact", rows, fake_cloud, tiny_llama_dir, tmp_path)
    total: dict[str, int] = {}
    leaked: dict[str, list[str]] = {}
    for row, (who, contents) in zip(rows, sent):
        assert who == "cloud" and len(contents) == 1, "prefer = cloud: every prompt is escalated once"
        hidden = redacted_positions(row.text, contents[0])
        for a, b, kind in row.gold:
            g = group(kind)
            total[g] = total.get(g, 0) + 1
            if any(row.text[i].isalnum() and i not in hidden for i in range(a, b)):
                leaked.setdefault(g, []).append(row.text[a:b])
    with capsys.disabled():
        print("\nredact mode, values reaching the cloud: "
              + ", ".join(f"{g} {len(leaked.get(g, []))}/{n}" for g, n in sorted(total.items())))
    for g in STRUCTURED_GROUPS:
        assert not leaked.get(g), f"{g} values reached the cloud: {leaked[g]}"
    for g, bound in MAX_LEAKED.items():
        assert len(leaked.get(g, [])) <= bound, f"{g}: {len(leaked[g])} of {total[g]} leaked: {leaked[g]}"


def test_local_only_mode_keeps_detected_pii_home(rows, fake_cloud, tiny_llama_dir, tmp_path, capsys):
    sent = run_mode("local-only", rows, fake_cloud, tiny_llama_dir, tmp_path)
    detected = [bool(pii.detect(row.text)) for row in rows]
    left = [row.text for row, d, (_, c) in zip(rows, detected, sent) if d and c]
    missed = [row.text for row, (_, c) in zip(rows, sent) if row.gold and c]
    clean_escalated = sum(1 for row, (_, c) in zip(rows, sent) if not row.gold and c)
    with capsys.disabled():
        print(f"\nlocal-only: {sum(detected)} prompts with detected PII, {len(left)} of them reached the cloud; "
              f"{len(missed)} of {sum(1 for r in rows if r.gold)} prompts with gold PII reached it; "
              f"{clean_escalated} of {sum(1 for r in rows if not r.gold)} PII-free prompts went to the cloud")
    assert not left
    for (who, contents), d in zip(sent, detected):
        assert (who == "edge") == d and bool(contents) == (not d)
    # A prompt whose PII the detector missed entirely goes out whole: counted, not only printed.
    assert len(missed) <= MAX_LOCAL_ONLY_MISSED, f"{len(missed)} prompts with PII reached the cloud: {missed}"


def test_server_refuses_to_start_without_the_tagger(tiny_llama_dir, tmp_path):
    """Fail closed: EDGEWISE_PII_MODEL at an empty folder, privacy redact (the default with --cloud)."""
    env = {**os.environ, "EDGEWISE_PII_MODEL": str(tmp_path)}
    env.pop("EDGEWISE_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "edgewise", "serve", str(tiny_llama_dir), "--threads", "1",
                        "--cloud", f"http://127.0.0.1:{free_port()}/v1", "--cloud-model", "big",
                        "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        f"error: privacy mode redact needs the PII tagger at {tmp_path} (no tagger.json there): reinstall edgewise, "
        "point EDGEWISE_PII_MODEL at a tagger folder, or set EDGEWISE_PII_MODEL=off to accept patterns only")


def test_alignment_helper():
    original = "Hi Anna Lee, mail a@b.io"
    sent = "Hi [PERSON_1], mail [EMAIL_1]"
    hidden = redacted_positions(original, sent)
    assert {original[i] for i in hidden} == set("Anna Lee") | set("a@b.io")
    assert redacted_positions("no pii", "no pii") == set()
