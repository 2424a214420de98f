"""Benchmarks run in a child process: their own memory, the runtime's own timings, bandwidth from real weight bytes."""

import numpy as np
import pytest

from edgewise.bench import BenchSpec, bench_variant, run_child, with_device
from edgewise.devices import DeviceProfile
from edgewise.formats import decode_weight_bytes

TINY_DEVICE = dict(description="test", cores=1, ram_gb=0.5, usable_ram_gb=0.01, storage_gb=1, bandwidth_gbs=4.0,
                   bandwidth_kind="spec-peak", sources={f: "test" for f in
                                                        ("cores", "ram_gb", "usable_ram_gb", "storage_gb", "bandwidth_gbs")})


@pytest.fixture(scope="module")
def int4_dir(tiny_llama_dir):
    from edgewise.export.genai import build_genai
    from edgewise.models import load

    return build_genai(load(str(tiny_llama_dir)), "int4")


def test_decoder_bench_in_a_child_process(int4_dir):
    ballast = np.ones(300 * 2**20 // 8)  # 300 MiB held here must not show up in the child's peak RSS
    r = run_child(BenchSpec(str(int4_dir), "ort", threads=1, max_tokens=8, passes=1))
    del ballast
    assert "error" not in r, r
    assert r["generation_tps"] > 0 and r["prompt_tps"] > 0 and r["ttft_ms"] > 0
    assert 0 < r["decode_p50_ms"] <= r["decode_p95_ms"]
    assert r["weight_bytes_per_token"] == decode_weight_bytes(int4_dir / "model.onnx")
    assert r["achieved_bandwidth_gbs"] == pytest.approx(r["weight_bytes_per_token"] * r["generation_tps"] / 1e9)
    assert 0 < r["peak_rss_mb"] < 1200 and r["threads"] == 1
    assert "draft" not in r  # no draft spec: plain decode only


def _child(path, draft: str) -> dict:
    r = run_child(BenchSpec(str(path), "ort", threads=1, max_tokens=8, passes=2, draft=draft))
    assert "error" not in r, r
    return r


def _draft_row(path, draft: str) -> dict:
    return _child(path, draft)["draft"]


def test_a_draft_is_timed_beside_plain_decode_in_the_same_child(int4_dir):
    d = _draft_row(int4_dir, "lookup:k=4")
    assert d["source"] == "lookup:k=4" and d["rounds"] == 2 and d["same_tokens"] is True
    assert 0 <= d["accepted"] <= d["proposed"] and d["acceptance"] == pytest.approx(d["accepted"] / d["proposed"])
    # 7 tokens per generation come from verify passes (the prompt's pass chose the first), two rounds of them
    assert d["tokens"] == 14 and d["tokens_per_step"] == pytest.approx(14 / d["steps"]) and d["steps"] <= 14
    assert d["speedup"] == pytest.approx(d["generation_tps"] / d["plain_tps"]) and d["speedup"] > 0


def test_a_model_draft_loads_once_and_a_bad_one_leaves_plain_figures(int4_dir, tiny_bert_dir):
    d = _draft_row(int4_dir, f"model:{int4_dir},k=3")  # the model drafting for itself: it agrees with every token
    assert d["acceptance"] == 1.0 and d["same_tokens"] is True and d["tokens_per_step"] > 1.0
    r = _child(int4_dir, f"model:{tiny_bert_dir}")
    assert r["generation_tps"] > 0 and "causal LM" in r["draft"]["error"] and "\n" not in r["draft"]["error"]


def test_device_fit_and_estimate_are_labelled():
    measured = {"generation_tps": 10.0, "achieved_bandwidth_gbs": 1.0, "peak_rss_mb": 100.0}
    dev = DeviceProfile(name="tiny-board", **TINY_DEVICE)
    out = with_device(measured, dev, host_bandwidth_gbs=8.0)
    assert out["fits_device"] is False  # 100 MB peak vs ~10 MB usable
    assert out["achieved_bandwidth_ratio"] == pytest.approx(1.0 / 8.0)
    assert out["est_device_tps"] == pytest.approx(10.0 * 4.0 / 8.0) and "ESTIMATE" in out["est_device_tps_note"]


def test_encoder_bench_and_errors_come_back_as_data(tiny_bert_dir, tmp_path):
    r = bench_variant(BenchSpec(str(tiny_bert_dir), "torch", repeats=5), device="host")
    assert r["latency_p50_ms"] > 0 and r["throughput_per_s"] > 0 and r["fits_device"] is True
    bad = run_child(BenchSpec(str(tmp_path / "missing"), "ort"))
    assert "no such file" in bad["error"]


def test_bench_cli_compares_backends(tiny_llama_dir, tmp_path):
    from typer.testing import CliRunner

    from edgewise.cli.app import app

    text = tmp_path / "t.txt"
    text.write_text("To be, or not to be, that is the question. " * 20)
    res = CliRunner().invoke(app, ["bench", f"{tiny_llama_dir}@ort", f"{tiny_llama_dir}@torch", "--task",
                                   f"perplexity:{text}", "--max-tokens", "4", "--passes", "1", "--json"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.stdout[res.stdout.index("["):])
    assert [r["backend"] for r in rows] == ["ort", "torch"]
    assert rows[1]["metrics"]["kld"] < 1e-3  # same weights on two engines
    assert all(r["generation_tps"] > 0 for r in rows)


def test_the_bench_verb_lives_in_its_own_module():
    from edgewise.cli.app import app
    from edgewise.cli.bench_cmd import _parse_target

    cmd = next(c for c in app.registered_commands if c.callback.__name__ == "bench")
    assert cmd.callback.__module__ == "edgewise.cli.bench_cmd"
    assert _parse_target("m.gguf@llamacpp:q4_k_m") == ("m.gguf", "llamacpp", "q4_k_m")
    assert _parse_target("smollm2-135m") == ("smollm2-135m", "ort", "fp32")
