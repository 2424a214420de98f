"""Built artifacts are keyed by the source's content, the options and the builders' code: rebuild only when one
of them changes."""

import json
import shutil
from pathlib import Path

import pytest

import edgewise
from edgewise.export.cache import cached_build, is_cached
from edgewise.home import BUILDER_PARTS, code_version
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


def _copy_builders(root: Path, dest: Path) -> Path:
    """The builder sources of the package at `root`, copied to `dest`, plus a non-builder module (serve/app.py)."""
    for part in BUILDER_PARTS:
        (shutil.copytree if (root / part).is_dir() else shutil.copy)(root / part, dest / part)
    (dest / "serve").mkdir()
    (dest / "serve" / "app.py").write_text("ROUTES = {}\n")
    return dest


def test_code_version_hashes_the_installed_builders(tmp_path):
    pkg = Path(edgewise.__file__).resolve().parent
    assert code_version() == code_version(pkg)
    # Names are taken relative to the package, so a copy of the same sources has the same version.
    same = _copy_builders(pkg, tmp_path / "same")
    assert code_version(same) == code_version()
    # An edit to a quantizer changes it; an edit outside the builders (the server) does not.
    quant = _copy_builders(pkg, tmp_path / "quant")
    f = quant / "compress" / "methods" / "weight_only.py"
    f.write_text(f.read_text() + "\n# changed rounding\n")
    assert code_version(quant) != code_version()
    serve = _copy_builders(pkg, tmp_path / "serve")
    (serve / "serve" / "app.py").write_text("ROUTES = {'/v2': None}\n")
    assert code_version(serve) == code_version()
    # So do the installed versions of the third-party builders.
    assert code_version(pkg, dists=("onnx",)) != code_version(pkg, dists=("onnxruntime",))


def test_a_new_code_version_builds_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path / "home"))
    pkg = Path(edgewise.__file__).resolve().parent
    old = code_version(_copy_builders(pkg, tmp_path / "old"))
    edited = _copy_builders(pkg, tmp_path / "new")
    (edited / "export" / "genai.py").write_text((edited / "export" / "genai.py").read_text() + "\nFIXED = True\n")
    new = code_version(edited)
    src = tmp_path / "src.txt"
    src.write_text("weights")
    calls = []

    def build(out):
        calls.append(out)
        (out / "artifact").write_text(f"built by {len(calls)}")

    a = cached_build("demo", src, {"p": 1}, build, code=old)
    assert cached_build("demo", src, {"p": 1}, build, code=old) == a and len(calls) == 1  # nothing changed: reused
    assert is_cached("demo", src, {"p": 1}, code=old) and not is_cached("demo", src, {"p": 1}, code=new)
    b = cached_build("demo", src, {"p": 1}, build, code=new)
    assert b != a and len(calls) == 2 and (b / "artifact").read_text() == "built by 2"
    assert json.loads((b / ".complete").read_text())["code"] == new
    # The default is the installed package's version, and `old` is a copy of those very sources: reused.
    assert cached_build("demo", src, {"p": 1}, build) == a and len(calls) == 2
