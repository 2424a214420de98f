"""The `edgewise` command as a user runs it: a real subprocess, JSON out, one-line errors with exit code 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EDGEWISE = [sys.executable, "-m", "edgewise"]


def run(*args, env=None):
    return subprocess.run([*EDGEWISE, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_run_json_fields(tiny_llama_dir):
    p = run("run", str(tiny_llama_dir), "hello there", "--max-tokens", "6", "--json", "--threads", "1")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("text", "tokens", "prompt_tps", "generation_tps", "ttft_ms", "peak_rss_mb", "finish_reason",
                "backend", "precision"):
        assert key in out
    assert out["backend"] == "ort" and out["precision"] == "fp32" and 1 <= out["tokens"] <= 6


def test_run_streams_text_to_stdout(tiny_llama_dir):
    p = run("run", str(tiny_llama_dir), "hello", "--max-tokens", "4", "--backend", "torch")
    assert p.returncode == 0, p.stderr
    assert "generated at" in p.stderr


def test_embed_json(tiny_bert_dir):
    p = run("embed", str(tiny_bert_dir), "one", "two", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["dim"] == 32 and len(out["embeddings"]) == 2


def test_models_lists_packaged():
    p = run("models", "--json")
    assert p.returncode == 0, p.stderr
    names = {r["name"] for r in json.loads(p.stdout)}
    assert {"smollm2-135m", "minilm-l6"} <= names


def _cut(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return dst


@pytest.mark.parametrize("case", ["missing", "gguf", "safetensors", "unknown-backend", "bad-precision"])
def test_errors_are_one_line_exit_2(case, tmp_path, tiny_llama_dir):
    import shutil

    if case == "missing":
        args = ["run", str(tmp_path / "nope.gguf"), "hi"]
    elif case == "gguf":
        from edgewise.models import load

        bad = tmp_path / "cut.gguf"
        with open(load("smollm2-135m").path, "rb") as f:
            bad.write_bytes(f.read(5_000_000))
        args = ["run", str(bad), "hi"]
    elif case == "safetensors":
        d = tmp_path / "m"
        shutil.copytree(tiny_llama_dir, d)
        _cut(tiny_llama_dir / "model.safetensors", d / "model.safetensors")
        args = ["run", str(d), "hi"]
    elif case == "unknown-backend":
        args = ["run", str(tiny_llama_dir), "hi", "--backend", "tpu"]
    else:
        args = ["run", str(tiny_llama_dir), "hi", "--precision", "int3"]
    p = run(*args, "--json")
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    assert "Traceback" not in p.stderr


def test_debug_env_brings_back_traceback(tmp_path):
    p = run("run", str(tmp_path / "nope.gguf"), "hi", env={"EDGEWISE_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr
