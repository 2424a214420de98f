"""HF Llama folder -> KV-cached .tflite decoder. Runs inside the converter venv (`make litert-converter`), as a script.

    .bench/litert-venv/bin/python litert_convert_script.py --src HF_FOLDER --out DIR [--quantize int8]

It imports no edgewise (the converter venv does not have it) and nothing beyond torch and safetensors at the top,
so the main venv can import `CachedLlama` too, to check it against transformers. The steps:

1. `CachedLlama`: our own small Llama forward (RMSNorm, RoPE, GQA attention, SiLU MLP, tied or untied head) over
   explicit cache tensors, loaded from the folder's safetensors;
2. checked against transformers' LlamaForCausalLM (when transformers is importable) through chunked cache appends;
3. converted by litert_torch, one signature `decode_T` per chunk length T;
4. weights quantized by ai_edge_quantizer when asked (int8 dynamic-range or fp16 weight-only);
5. the .tflite's logits checked against the torch module, and `litert_lm.json` written with what the runtime
   needs (signatures, cache shape, tensor names) and the measured differences.

Signature `decode_T`, inputs:
    tokens (1, T) int32, input_pos (T,) int32 (consecutive), k_cache / v_cache (n_layers, max_len, n_kv, head_dim)
outputs:
    logits (1, T, V), k_new / v_new (n_layers, T, n_kv, head_dim): the keys/values of the T new tokens.
The caller owns the cache: it writes k_new/v_new at rows input_pos. Slot j of the cache is attended to iff
j < input_pos[0], so rewinding is moving the position back, and padding a short chunk to T costs nothing but
compute (its rows are never written).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

FORMAT = "edgewise-litert-lm"
VERSION = 1
META = "litert_lm.json"
MODEL_FILE = "model.tflite"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "tokenizer.model", "vocab.json", "merges.txt", "generation_config.json")
QUANTIZE = ("none", "fp16", "int8")
# Where the decode/cache tensors' attention is masked out: large enough to vanish in softmax, finite so that a
# stale cache row never makes a NaN.
MASKED = -1e9


@dataclass(frozen=True)
class Spec:
    vocab: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv: int
    head_dim: int
    ffn: int
    eps: float
    rope_theta: float
    tied: bool
    max_pos: int

    @classmethod
    def from_config(cls, cfg: dict) -> "Spec":
        if cfg.get("model_type") != "llama":
            raise ValueError(f"only Llama models convert to .tflite here, not {cfg.get('model_type')!r}")
        rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise ValueError(f"RoPE scaling {rope.get('rope_type')!r} is not supported: only the default RoPE")
        if cfg.get("hidden_act", "silu") != "silu" or cfg.get("attention_bias") or cfg.get("mlp_bias"):
            raise ValueError("only SiLU Llamas without attention/MLP biases are supported")
        dim, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        return cls(vocab=int(cfg["vocab_size"]), dim=dim, n_layers=int(cfg["num_hidden_layers"]), n_heads=heads,
                   n_kv=int(cfg.get("num_key_value_heads") or heads),
                   head_dim=int(cfg.get("head_dim") or dim // heads), ffn=int(cfg["intermediate_size"]),
                   eps=float(cfg.get("rms_norm_eps", 1e-6)),
                   rope_theta=float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))),
                   tied=bool(cfg.get("tie_word_embeddings", False)),
                   max_pos=int(cfg.get("max_position_embeddings", 2048)))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope(x, cos, sin):
    # x (T, nh, hs); cos/sin (T, 1, hs). Llama's rotate_half pairs dimension i with i + hs/2.
    h = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * sin


class Block(nn.Module):
    def __init__(self, s: Spec):
        super().__init__()
        self.s = s
        self.ln1, self.ln2 = RMSNorm(s.dim, s.eps), RMSNorm(s.dim, s.eps)
        self.q = nn.Linear(s.dim, s.n_heads * s.head_dim, bias=False)
        self.k = nn.Linear(s.dim, s.n_kv * s.head_dim, bias=False)
        self.v = nn.Linear(s.dim, s.n_kv * s.head_dim, bias=False)
        self.o = nn.Linear(s.n_heads * s.head_dim, s.dim, bias=False)
        self.gate = nn.Linear(s.dim, s.ffn, bias=False)
        self.up = nn.Linear(s.dim, s.ffn, bias=False)
        self.down = nn.Linear(s.ffn, s.dim, bias=False)

    def forward(self, x, cos, sin, k_cache, v_cache, mask):
        # x (1, T, D); k_cache/v_cache (L, nkv, hs); mask (T, L + T) additive
        s, T = self.s, x.shape[1]
        g = s.n_heads // s.n_kv  # query heads per kv head: head h reads kv head h // g, as HF's repeat_kv
        h = self.ln1(x)
        q = rope(self.q(h).view(T, s.n_heads, s.head_dim), cos, sin)
        k = rope(self.k(h).view(T, s.n_kv, s.head_dim), cos, sin)
        v = self.v(h).view(T, s.n_kv, s.head_dim)
        keys = torch.cat([k_cache, k], dim=0).permute(1, 2, 0)  # (nkv, hs, L+T)
        vals = torch.cat([v_cache, v], dim=0).permute(1, 0, 2)  # (nkv, L+T, hs)
        qg = q.view(T, s.n_kv, g, s.head_dim).permute(1, 2, 0, 3).reshape(s.n_kv, g * T, s.head_dim)
        att = (qg @ keys) * (1.0 / math.sqrt(s.head_dim))  # (nkv, g*T, L+T)
        att = torch.softmax(att.view(s.n_kv, g, T, -1) + mask, dim=-1).view(s.n_kv, g * T, -1)
        y = (att @ vals).view(s.n_kv, g, T, s.head_dim).permute(2, 0, 1, 3).reshape(1, T, -1)
        x = x + self.o(y)
        h = self.ln2(x)
        x = x + self.down(nn.functional.silu(self.gate(h)) * self.up(h))
        return x, k, v


class CachedLlama(nn.Module):
    """A Llama decoder whose KV cache is the caller's: forward(tokens, input_pos, k_cache, v_cache) ->
    {logits, k_new, v_new} (shapes in the module docstring)."""

    def __init__(self, s: Spec):
        super().__init__()
        self.s = s
        self.wte = nn.Embedding(s.vocab, s.dim)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layers))
        self.norm = RMSNorm(s.dim, s.eps)
        self.head = nn.Linear(s.dim, s.vocab, bias=False)
        if s.tied:
            self.head.weight = self.wte.weight
        inv = 1.0 / (s.rope_theta ** (torch.arange(0, s.head_dim, 2, dtype=torch.int64).float() / s.head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, tokens, input_pos, k_cache, v_cache):
        T, L = tokens.shape[1], k_cache.shape[1]
        x = self.wte(tokens)  # (1, T, D)
        freqs = input_pos.float()[:, None] * self.inv_freq[None, :]  # (T, hs/2)
        emb = torch.cat([freqs, freqs], dim=-1)[:, None, :]  # (T, 1, hs)
        cos, sin = emb.cos(), emb.sin()
        # Cache slot j is visible iff j < input_pos[0]; among the new tokens, causal.
        slots = torch.arange(L, dtype=torch.int32)[None, :]
        cached = torch.where(slots < input_pos[:1, None], 0.0, MASKED).expand(T, L)
        causal = torch.triu(torch.full((T, T), MASKED), diagonal=1)
        mask = torch.cat([cached, causal], dim=-1)  # (T, L+T)
        ks, vs = [], []
        for i, blk in enumerate(self.blocks):
            x, k, v = blk(x, cos, sin, k_cache[i], v_cache[i], mask)
            ks.append(k)
            vs.append(v)
        logits = self.head(self.norm(x))
        return {"logits": logits, "k_new": torch.stack(ks), "v_new": torch.stack(vs)}

    @classmethod
    def from_folder(cls, folder: Path) -> "CachedLlama":
        from safetensors.torch import load_file

        s = Spec.from_config(json.loads((Path(folder) / "config.json").read_text()))
        sd = {}
        for f in sorted(Path(folder).glob("*.safetensors")):
            sd.update(load_file(str(f)))
        if not sd:
            raise ValueError(f"{folder}: no *.safetensors weights")
        names = {"wte.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight"}
        if not s.tied:
            names["head.weight"] = "lm_head.weight"
        hf = {"ln1": "input_layernorm", "ln2": "post_attention_layernorm", "q": "self_attn.q_proj",
              "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj", "gate": "mlp.gate_proj",
              "up": "mlp.up_proj", "down": "mlp.down_proj"}
        for i in range(s.n_layers):
            for ours, theirs in hf.items():
                names[f"blocks.{i}.{ours}.weight"] = f"model.layers.{i}.{theirs}.weight"
        missing = [v for v in names.values() if v not in sd]
        if missing:
            raise ValueError(f"{folder}: weights missing from the safetensors: {', '.join(missing[:3])}")
        m = cls(s)
        m.load_state_dict({ours: sd[theirs].float() for ours, theirs in names.items()}, strict=False)
        return m.eval()

    def empty_cache(self, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.s.n_layers, max_len, self.s.n_kv, self.s.head_dim)
        return torch.zeros(shape), torch.zeros(shape)


def run_chunks(step, ids: list[int], chunks: list[int], k, v, start: int = 0):
    """Feed `ids` from position `start` through `step(T, tokens, pos, k, v) -> (logits, k_new, v_new)`, in the
    chunk lengths available (padding the last one), writing the caches in place; returns all logits (n, V).
    The same plan as the runtime's (edgewise.runtime.litert_lm), kept here so the script needs no edgewise."""
    out, i, L = [], 0, k.shape[1]
    while i < len(ids):
        n = len(ids) - i
        pos = start + i
        fit = [T for T in chunks if T >= n and pos + T <= L]
        T = min(fit) if fit else max(T for T in chunks if T <= n)
        take = min(n, T)
        toks = ids[i:i + take] + [0] * (T - take)
        logits, kn, vn = step(T, toks, list(range(pos, pos + T)), k, v)
        k[:, pos:pos + take] = kn[:, :take]
        v[:, pos:pos + take] = vn[:, :take]
        out.append(logits[0, :take])
        i += take
    return torch.cat([torch.as_tensor(o) for o in out])


def torch_step(model: CachedLlama):
    def step(T, toks, pos, k, v):
        with torch.no_grad():
            r = model(torch.tensor([toks], dtype=torch.int32), torch.tensor(pos, dtype=torch.int32), k, v)
        return r["logits"], r["k_new"], r["v_new"]
    return step


def check_against_hf(model: CachedLlama, folder: Path, ids: list[int], chunks: list[int], max_len: int) -> float | None:
    """Max |logit difference| between our module (chunked through the cache) and transformers, or None when
    transformers is not importable."""
    try:
        from transformers import LlamaForCausalLM
    except ImportError:
        return None
    hf = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor([ids])).logits[0]
    k, v = model.empty_cache(max_len)
    ours = run_chunks(torch_step(model), ids, chunks, k, v)
    return float((ours - ref).abs().max())


def convert(model: CachedLlama, chunks: list[int], max_len: int, path: Path) -> None:
    import litert_torch

    conv = litert_torch.Converter()
    k, v = model.empty_cache(max_len)
    for T in chunks:
        sample = {"tokens": torch.zeros((1, T), dtype=torch.int32),
                  "input_pos": torch.arange(T, dtype=torch.int32), "k_cache": k, "v_cache": v}
        conv.add_signature(f"decode_{T}", model, sample_kwargs=sample)
    conv.convert().export(str(path))


def quantize(src: Path, dst: Path, how: str) -> None:
    from ai_edge_quantizer import quantizer, recipe, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    if how == "int8":  # dynamic range: int8 weights per channel, activations quantized on the fly
        rp = recipe.dynamic_wi8_afp32()
    else:  # fp16 weights, dequantized to fp32 for compute
        rm = recipe_manager.RecipeManager()
        rm.add_weight_only_config(regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=AlgorithmName.FLOAT_CASTING)
        rp = rm.get_quantization_recipe()
    qt = quantizer.Quantizer(str(src), rp)
    qt.quantize(enable_progress_report=False).export_model(str(dst), overwrite=True)


def litert_step(path: Path):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    runners = {}

    def step(T, toks, pos, k, v):
        r = runners.get(T) or runners.setdefault(T, it.get_signature_runner(f"decode_{T}"))
        out = r(tokens=np.asarray([toks], dtype=np.int32), input_pos=np.asarray(pos, dtype=np.int32),
                k_cache=k.numpy(), v_cache=v.numpy())
        return torch.from_numpy(out["logits"]), torch.from_numpy(out["k_new"]), torch.from_numpy(out["v_new"])
    return it, step


def check_tflite(model: CachedLlama, path: Path, ids: list[int], chunks: list[int], max_len: int) -> dict:
    """Logit differences between the .tflite and our torch module, fed the same chunks, then after a rewind."""
    it, step = litert_step(path)
    sigs = it.get_signature_list()
    for T in chunks:
        got = sigs.get(f"decode_{T}", {})
        if sorted(got.get("inputs", [])) != ["input_pos", "k_cache", "tokens", "v_cache"] or \
                sorted(got.get("outputs", [])) != ["k_new", "logits", "v_new"]:
            raise RuntimeError(f"unexpected signature decode_{T}: {got}")
    kt, vt = model.empty_cache(max_len)
    kl, vl = model.empty_cache(max_len)
    ref = run_chunks(torch_step(model), ids, chunks, kt, vt)
    got = run_chunks(step, ids, chunks, kl, vl)
    # Rewind to half way and run a different tail: the stale rows past the rewind point must not matter.
    half, tail = len(ids) // 2, list(reversed(ids[len(ids) // 2:]))
    ref2 = run_chunks(torch_step(model), tail, chunks, kt, vt, start=half)
    got2 = run_chunks(step, tail, chunks, kl, vl, start=half)
    return {"max_abs_logit_diff": float(max((got - ref).abs().max(), (got2 - ref2).abs().max())),
            "top1_agreement": float(torch.cat([got.argmax(-1) == ref.argmax(-1),
                                               got2.argmax(-1) == ref2.argmax(-1)]).float().mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True, help="HF Llama folder (config.json + safetensors)")
    ap.add_argument("--out", type=Path, required=True, help="folder to write (must not exist or be empty)")
    ap.add_argument("--quantize", choices=QUANTIZE, default="none")
    ap.add_argument("--max-len", type=int, default=0, help="KV cache length (default: the model's context)")
    ap.add_argument("--chunks", default="1,4,16", help="token counts with their own signature")
    ap.add_argument("--check-tokens", type=int, default=40, help="tokens in the logit checks")
    a = ap.parse_args(argv)

    torch.manual_seed(0)
    model = CachedLlama.from_folder(a.src)
    s = model.s
    max_len = a.max_len or s.max_pos
    chunks = sorted({int(c) for c in a.chunks.split(",")})
    if 1 not in chunks or max(chunks) > max_len:
        raise ValueError(f"--chunks must include 1 and stay within --max-len {max_len}, got {chunks}")
    ids = torch.randint(0, s.vocab, (min(a.check_tokens, max_len),)).tolist()
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    hf_diff = check_against_hf(model, a.src, ids, chunks, max_len)
    print(f"torch vs transformers: max |logit diff| {hf_diff}", file=sys.stderr)
    fp32 = a.out / (MODEL_FILE if a.quantize == "none" else ".model-fp32.tflite")
    convert(model, chunks, max_len, fp32)
    if a.quantize != "none":
        quantize(fp32, a.out / MODEL_FILE, a.quantize)
        fp32.unlink()
        (a.out / MODEL_FILE).chmod(0o644)  # the quantizer writes it executable
    check = check_tflite(model, a.out / MODEL_FILE, ids, chunks, max_len)
    print(f"tflite vs torch: {check}", file=sys.stderr)
    for name in TOKENIZER_FILES:
        if (a.src / name).is_file():
            shutil.copy(a.src / name, a.out / name)
    meta = {
        "format": FORMAT, "version": VERSION, "task": "causal-lm", "arch": "llama", "model_file": MODEL_FILE,
        "source": str(a.src), "weights": {"none": "fp32", "fp16": "fp16", "int8": "int8"}[a.quantize],
        "max_len": max_len, "vocab_size": s.vocab, "n_layers": s.n_layers, "n_kv_heads": s.n_kv,
        "head_dim": s.head_dim, "signatures": {f"decode_{T}": T for T in chunks},
        "bos_token_id": json.loads((a.src / "config.json").read_text()).get("bos_token_id"), "spec": asdict(s),
        "check": {"tokens": len(ids), "torch_vs_transformers": hf_diff, **check},
        "convert_seconds": round(time.perf_counter() - t0, 1),
    }
    (a.out / META).write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({"out": str(a.out), "bytes": (a.out / MODEL_FILE).stat().st_size, **meta["check"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
