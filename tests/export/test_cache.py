"""Built artifacts are keyed by the source's content and the options: rebuild only when either changes."""

import shutil

import pytest

from edgewise.export.cache import cached_build, is_cached
from edgewise.export.genai import build_genai
from edgewise.models import load


def test_rebuild_only_when_source_or_options_change(tmp_path, monkeypatch):
    # A home of its own: the key is the content "v1", so a shared home would hold it from an earlier run.
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path / "home"))
    src = tmp_path / "src.txt"
    src.write_text("v1")
    calls = []

    def build(out):
        calls.append(out)
        (out / "artifact").write_text(src.read_text())

    a = cached_build("demo", src, {"p": 1}, build)
    assert cached_build("demo", src, {"p": 1}, build) == a and len(calls) == 1
    b = cached_build("demo", src, {"p": 2}, build)
    assert b != a and len(calls) == 2
    src.write_text("v2")
    c = cached_build("demo", src, {"p": 1}, build)
    assert c not in (a, b) and (c / "artifact").read_text() == "v2" and len(calls) == 3


def test_failed_build_leaves_nothing(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("x")

    def boom(out):
        (out / "half").write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cached_build("demo", src, {}, boom)
    assert not is_cached("demo", src, {})
    from edgewise.home import edgewise_home

    assert not [p for p in (edgewise_home() / "artifacts").glob("*demo*") if "half" in {q.name for q in p.iterdir()}]


def test_genai_export_is_cached_per_precision(tiny_llama_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, d)
    src = load(str(d))
    fp32 = build_genai(src, "fp32")
    assert (fp32 / "genai_config.json").is_file() and (fp32 / "model.onnx").is_file()
    assert build_genai(src, "fp32") == fp32
    int4 = build_genai(src, "int4")
    assert int4 != fp32
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*.onnx*"))  # noqa: E731
    assert size(int4) < size(fp32)
