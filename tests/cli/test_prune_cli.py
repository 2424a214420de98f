"""`edgewise prune` as a user runs it: a real subprocess, JSON out, --out copied atomically, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CORPUS

EDGEWISE = [sys.executable, "-m", "edgewise"]


def run(*args, env=None):
    return subprocess.run([*EDGEWISE, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_structured_prune_with_recovery_to_out_json(tiny_llama_dir, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text(" ".join(CORPUS))
    out = tmp_path / "pruned"
    args = ["prune", tiny_llama_dir, "--method", "structured:mlp=0.25,heads=0.5,recover_steps=2,recover_batch=2",
            "--recover-data", "calib", "--calib", calib, "--out", out, "--threads", "1"]
    home = {"EDGEWISE_HOME": str(tmp_path / "home")}  # a fresh cache, so the first run builds
    p = run(*args, "--json", env=home)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["out"] == str(out.resolve()) and res["cached"] is False
    assert res["params_after"] < res["params_before"]
    assert res["removed"] == {"mlp_width": [128, 96], "query_heads": [4, 2]}
    assert res["recovery"]["steps"] == 2 and res["recovery"]["data"] == [str(calib)]
    assert res["config"]["recovery"]["data"] is None  # `calib`: recover on the calibration text
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]) == (96, 2, 2)
    for name in ("model.safetensors", "tokenizer.json", "prune.json"):
        assert (out / name).is_file()
    assert not (out / ".complete").exists()  # the cache marker stays in the cache
    assert "edgewise bench" in p.stderr and "@torch" in p.stderr  # the table and hint go to stderr with --json
    assert sorted(f.name for f in tmp_path.iterdir()) == ["calib.txt", "home", "pruned"]  # no temp folder left

    again = run(*args, env=home)
    assert again.returncode == 2 and "not empty" in again.stderr and "--force" in again.stderr
    forced = run(*args, "--force", env=home)
    assert forced.returncode == 0, forced.stderr
    assert "(cached)" in forced.stdout and str(out.resolve()) in forced.stdout
    assert json.loads((out / "config.json").read_text()) == cfg


@pytest.mark.parametrize("extra", [
    ["--method", "prunezilla:mlp=0.5"],
    ["--method", "structured:mlp=2"],
    ["--method", "wanda:sparsity=0.5", "--recover-data", "calib"],
    ["--method", "structured:mlp=0.25", "--recover-data", "no-such-file.txt"],
])
def test_bad_input_is_one_line_exit_2(tiny_llama_dir, extra):
    p = run("prune", tiny_llama_dir, *extra)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in p.stderr
