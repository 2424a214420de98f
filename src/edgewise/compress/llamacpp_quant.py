"""llama.cpp quant types (Q8_0, Q6_K, Q4_K_M, Q4_0, ...) as comparators, through the optional extra.

Two steps, because neither llama-cpp-python nor gguf-py ships llama.cpp's HF converter:
1. `write_gguf`: a Llama-architecture HF folder -> an F32 (or F16) GGUF, written with gguf-py. It
   mirrors convert_hf_to_gguf.py for plain Llama: same keys, tensor names, Q/K rope permutation and
   BPE vocabulary.
2. `quantize_gguf`: that GGUF -> a llama.cpp type with `llama_cpp.llama_model_quantize`.

`llamacpp_quantize(folder, out, LlamaCppQuant("Q4_K_M"))` (compress.methods.llamacpp) runs both and reports bits per weight.
Note: K-quants need rows that are a multiple of 256; llama.cpp quantizes other rows with a fallback
type (for SmolLM2-135M, hidden size 576, most of "Q4_K_M" is really Q5_0), and the bits per weight
reported here are read from the written file, so they show it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Protocol

import numpy as np

from edgewise.errors import EdgewiseError, UnsupportedModelError
from edgewise.formats import LLAMA_FTYPES as FTYPES
from edgewise.formats import gguf_scan
from edgewise.runtime.llamacpp_backend import _quiet, import_llama_cpp

log = logging.getLogger(__name__)
# gguf, safetensors and transformers are imported inside the functions that write a GGUF: the llamacpp method's
# module imports this one whenever a registry lookup loads the methods.

# llama_ftype values (llama.h). Names are the ones llama.cpp's `llama-quantize` accepts.
BASE_TYPES = ("f32", "f16")


class QuantSpec(Protocol):
    """What the steps below read of a config (compress.methods.llamacpp.LlamaCppQuant)."""

    qtype: str  # a key of FTYPES
    base: str  # one of BASE_TYPES: the intermediate GGUF
    threads: int | None


@dataclass(frozen=True)
class QuantizedGGUF:
    path: Path
    qtype: str
    size_bytes: int
    n_params: int
    bits_per_weight: float  # over every tensor in the file, norms included
    seconds: float
    tensor_types: dict[str, int]  # ggml type -> tensor count: shows K-quant fallbacks


# --- step 1: HF folder -> F32/F16 GGUF ------------------------------------------------------------

# The string llama.cpp hashes (after tokenizing) to recognise a BPE pre-tokenizer; from
# convert_hf_to_gguf.py (MIT). Only Llama-architecture tokenizers are listed; others get "default".
_CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 "
    "333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на "
    "Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll "
    "make it, 'D you like some tea? We'Ve a'lL"
)
_PRE_BY_HASH = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
}
_HF_TO_GGUF = {  # per-layer HF name -> GGUF name (llama.cpp's tensor_mapping for LLM_ARCH_LLAMA)
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    # HF stores q/k rows as [first halves | second halves] per head (rotate_half); llama.cpp's rope
    # pairs adjacent rows, so interleave them back, exactly as convert_hf_to_gguf.py does.
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_name(hf: str) -> str | None:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    if parts[:2] == ["model", "layers"] and parts[-1] == "weight":
        key = ".".join(parts[3:-1])
        if key in _HF_TO_GGUF:
            return f"blk.{parts[2]}.{_HF_TO_GGUF[key]}.weight"
    return None


def _load_config(folder: Path) -> dict:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise EdgewiseError(f"{folder}: no config.json; pass a Hugging Face model folder")
    cfg = json.loads(cfg_path.read_text())
    arch = (cfg.get("architectures") or ["?"])[0]
    if cfg.get("model_type") != "llama" or arch != "LlamaForCausalLM":
        raise UnsupportedModelError(f"{folder}: the GGUF writer handles LlamaForCausalLM only, not {arch}")
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if rope.get("rope_type", "default") != "default":
        raise UnsupportedModelError(f"{folder}: rope type {rope.get('rope_type')!r} is not handled by the GGUF writer")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        raise UnsupportedModelError(f"{folder}: biased Llama layers are not handled by the GGUF writer")
    return cfg


def _read_tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise EdgewiseError(f"{folder}: no .safetensors weights")
    out = {}
    for f in files:
        # torch, not numpy: safetensors' numpy path cannot read bf16 checkpoints.
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():
                out[k] = st.get_tensor(k).float().numpy()
    return out


def _add_vocab(w, folder: Path, vocab_size: int) -> None:
    import gguf
    from transformers import AutoTokenizer

    if not (folder / "tokenizer.json").is_file():
        raise UnsupportedModelError(f"{folder}: the GGUF writer needs a fast tokenizer (tokenizer.json)")
    tok = AutoTokenizer.from_pretrained(str(folder))
    if max(tok.vocab.values()) >= vocab_size:
        raise UnsupportedModelError(f"{folder}: tokenizer ids exceed the model's vocab_size {vocab_size}")
    reverse = {i: t for t, i in tok.vocab.items()}
    added = tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(reverse[i])
            if i in added:
                types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
            else:
                types.append(gguf.TokenType.NORMAL)
    chkhsh = sha256(str(tok.encode(_CHKTXT)).encode()).hexdigest()
    pre = _PRE_BY_HASH.get(chkhsh, "default")
    if pre == "default":
        # Edgewise feeds token ids to llama.cpp, so this only matters to other GGUF consumers.
        log.warning("unrecognised BPE pre-tokenizer (hash %s): writing tokenizer.ggml.pre=default", chkhsh[:12])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(str(folder), load_merges=True, n_vocab=vocab_size).add_to_gguf(w, quiet=True)


def write_gguf(folder: Path, out: Path, dtype: str = "f32") -> Path:
    """Write a Llama HF folder (safetensors + tokenizer.json) as a GGUF that llama.cpp loads."""
    import gguf

    folder, out = Path(folder), Path(out)
    if dtype not in BASE_TYPES:
        raise EdgewiseError(f"dtype must be one of {BASE_TYPES}, got {dtype!r}")
    cfg = _load_config(folder)
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hidden, n_layer = cfg["hidden_size"], cfg["num_hidden_layers"]
    head_dim = cfg.get("head_dim") or hidden // n_head
    rope = cfg.get("rope_parameters") or {}
    theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))

    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(str(cfg.get("_model_name_or_path") or cfg.get("_name_or_path") or folder.name))
    w.add_block_count(n_layer)
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(float(theta))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(head_dim)
    if head_dim != hidden // n_head:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_file_type(FTYPES[dtype.upper()])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_vocab(w, folder, cfg["vocab_size"])

    tensors = _read_tensors(folder)
    if cfg.get("tie_word_embeddings"):
        tensors.pop("lm_head.weight", None)  # llama.cpp reads token_embd when output.weight is absent
    expected = 2 + 9 * n_layer + (0 if cfg.get("tie_word_embeddings") else 1)
    written = 0
    for hf_name, t in tensors.items():
        name = _gguf_name(hf_name)
        if name is None:
            if "rotary_emb" in hf_name:
                continue
            raise UnsupportedModelError(f"{folder}: unexpected tensor {hf_name} for a plain Llama model")
        if name.endswith("attn_q.weight"):
            t = _permute(t, n_head)
        elif name.endswith("attn_k.weight"):
            t = _permute(t, n_kv)
        # Norm vectors stay f32, as in llama.cpp's converter; 2-D weights take the chosen type.
        t = t.astype(np.float16 if dtype == "f16" and t.ndim > 1 else np.float32)
        w.add_tensor(name, np.ascontiguousarray(t))
        written += 1
    if written != expected:
        raise UnsupportedModelError(f"{folder}: wrote {written} tensors, a Llama of this config needs {expected}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    except BaseException:
        out.unlink(missing_ok=True)  # never leave a half-written GGUF behind (disk full, Ctrl-C)
        raise
    finally:
        w.close()
    return out


# --- step 2: GGUF -> llama.cpp type -------------------------------------------------------------

def _result(path: Path, qtype: str, seconds: float) -> QuantizedGGUF:
    n, nbytes, types = gguf_scan(path)
    return QuantizedGGUF(path, qtype, path.stat().st_size, n, 8.0 * nbytes / n, seconds, types)


def quantize_gguf(src: Path, out: Path, config: QuantSpec) -> QuantizedGGUF:
    llama_cpp = import_llama_cpp()
    src, out = Path(src), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[config.qtype]
    params.nthread = config.threads or 0  # 0: llama.cpp uses every core
    params.allow_requantize = False  # re-quantizing an already quantized GGUF compounds the error
    t0 = time.perf_counter()
    with _quiet():  # llama.cpp logs every tensor to stdout/stderr
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), params)
    if rc != 0:
        out.unlink(missing_ok=True)
        raise EdgewiseError(
            f"llama.cpp could not quantize {src} to {config.qtype} (code {rc}); the input must be an F32/F16 "
            "GGUF: write one from the HF folder with write_gguf"
        )
    return _result(out, config.qtype, time.perf_counter() - t0)


def llamacpp_quantize(model: Path, out: Path, config: QuantSpec) -> QuantizedGGUF:
    """HF Llama folder (or an F32/F16 GGUF) -> `out`, a GGUF of config.qtype. Logs bits per weight."""
    model, out = Path(model), Path(out)
    if model.is_dir():
        base = out.with_name(out.stem + f".{config.base}.gguf")
        write_gguf(model, base, config.base)
    elif model.suffix.lower() == ".gguf":
        base = model
    else:
        raise EdgewiseError(f"{model}: pass a Hugging Face Llama folder or an F32/F16 .gguf")
    try:
        if config.qtype == config.base.upper():
            if base != out:
                if model.is_dir():
                    base.replace(out)  # our own intermediate: move it
                else:
                    shutil.copyfile(base, out)  # the caller's file: never move it
            res = _result(out, config.qtype, 0.0)
        else:
            res = quantize_gguf(base, out, config)
    finally:
        if model.is_dir() and base.exists() and base != out:
            base.unlink()
    log.info("%s: %s, %.2f bits per weight, %.1f MB, tensor types %s", out.name, res.qtype, res.bits_per_weight,
             res.size_bytes / 1e6, res.tensor_types)
    return res
