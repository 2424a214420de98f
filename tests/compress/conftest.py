import pytest

from edgewise.compress import Calibration, CompressContext
from edgewise.models import load

CALIB = Calibration(("Now is the winter of our discontent made glorious summer by this sun of York. " * 40,), "test")


@pytest.fixture(scope="session")
def llm_ctx(tiny_llama_dir):
    return CompressContext(load(str(tiny_llama_dir)), CALIB)


@pytest.fixture(scope="session")
def enc_ctx(tiny_bert_dir):
    return CompressContext(load(str(tiny_bert_dir)), CALIB)
