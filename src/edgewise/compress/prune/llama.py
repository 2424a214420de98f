"""Importance scores and weight surgery on Llama-family models (LlamaForCausalLM: SmolLM2, the keyboard student).

Structured pruning must leave a model every runtime can load, so it keeps the Llama config uniform: the same MLP
width and the same number of query heads per key/value group in every block. Within that constraint each block
keeps its own most important units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgewise.errors import EdgewiseError, UnsupportedModelError

# torch and transformers are imported inside the functions: the search imports pruned_param_count (shape
# arithmetic) without them.

MLP_MULTIPLE = 32  # int4/int8 block size along the down projection's input: a pruned width must stay divisible
LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj")


def load_llama(folder: Path):
    """The model in fp32 (eval mode) and its original dtype name; a clear error for non-Llama architectures."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(folder)
    if getattr(cfg, "model_type", None) not in ("llama",):
        raise UnsupportedModelError(f"{folder}: pruning supports Llama-architecture decoders (model_type 'llama'), "
                                    f"got {getattr(cfg, 'model_type', None)!r}")
    saved = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None) or "float32"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, str(saved).replace("torch.", "")


def head_dim(cfg) -> int:
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def calibration_batches(tok, texts, max_tokens: int, seq_len: int = 256) -> list:
    """Consecutive windows of the calibration text, max_tokens in all."""
    import torch

    ids = [i for t in texts for i in tok.encode(t, add_special_tokens=False)]
    if len(ids) < 16:
        raise EdgewiseError("the calibration text is too short for pruning statistics: pass a longer --calib file")
    ids = ids[:max_tokens]
    return [torch.tensor([ids[i:i + seq_len]]) for i in range(0, len(ids), seq_len) if len(ids[i:i + seq_len]) >= 8]


@dataclass
class Stats:
    """Per block: RMS of every MLP neuron and every attention-output channel, block influence, and (Wanda) the
    input RMS of every linear layer."""

    mlp_rms: list[np.ndarray]
    attn_rms: list[np.ndarray]
    block_influence: np.ndarray
    linear_rms: dict[str, np.ndarray]
    tokens: int


def activation_stats(model, batches, linear_inputs: bool = False) -> Stats:
    import torch

    layers = model.model.layers
    n = len(layers)
    sq_mlp = [None] * n
    sq_attn = [None] * n
    cos_sum = np.zeros(n)
    sq_lin: dict[str, torch.Tensor] = {}
    count = {"tokens": 0}
    hooks = []

    def sumsq(x):
        return x.detach().float().reshape(-1, x.shape[-1]).pow(2).sum(0)

    for i, layer in enumerate(layers):
        def on_down(mod, args, i=i):
            s = sumsq(args[0])
            sq_mlp[i] = s if sq_mlp[i] is None else sq_mlp[i] + s

        def on_o(mod, args, i=i):
            s = sumsq(args[0])
            sq_attn[i] = s if sq_attn[i] is None else sq_attn[i] + s

        def on_block(mod, args, kwargs, out, i=i):
            x_in = args[0] if args else kwargs["hidden_states"]
            x_out = out[0] if isinstance(out, tuple) else out
            cos = torch.nn.functional.cosine_similarity(x_in.float(), x_out.float(), dim=-1)
            cos_sum[i] += float(cos.sum())

        hooks.append(layer.mlp.down_proj.register_forward_pre_hook(on_down))
        hooks.append(layer.self_attn.o_proj.register_forward_pre_hook(on_o))
        hooks.append(layer.register_forward_hook(on_block, with_kwargs=True))
        if linear_inputs:
            for name in LINEARS:
                mod = layer.get_submodule(name)

                def on_lin(mod, args, key=f"{i}.{name}"):
                    s = sumsq(args[0])
                    sq_lin[key] = s if key not in sq_lin else sq_lin[key] + s

                hooks.append(mod.register_forward_pre_hook(on_lin))
    try:
        with torch.no_grad():
            for b in batches:
                model(input_ids=b)
                count["tokens"] += b.numel()
    finally:
        for h in hooks:
            h.remove()
    t = max(count["tokens"], 1)
    return Stats(mlp_rms=[(s / t).sqrt().numpy() for s in sq_mlp], attn_rms=[(s / t).sqrt().numpy() for s in sq_attn],
                 block_influence=1.0 - cos_sum / t,
                 linear_rms={k: (v / t).sqrt().numpy() for k, v in sq_lin.items()}, tokens=t)


def gradient_saliency(model, batches) -> dict[str, np.ndarray]:
    """First-order Taylor saliency |w * dL/dw| of every weight, from the language-model loss on the batches."""
    import torch

    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(True)
    for b in batches:
        out = model(input_ids=b, labels=b)
        (out.loss / len(batches)).backward()
    sal = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.grad is not None and ".layers." in name:
                sal[name] = (p * p.grad).abs().float().numpy()
    model.zero_grad(set_to_none=True)
    return sal


# --- unit scores: higher = more important ---------------------------------------------------------------------

def mlp_scores(model, stats: Stats | None, sal: dict | None) -> list[np.ndarray]:
    out = []
    for i, layer in enumerate(model.model.layers):
        if sal is not None:
            p = f"model.layers.{i}.mlp."
            out.append(sal[p + "gate_proj.weight"].sum(1) + sal[p + "up_proj.weight"].sum(1)
                       + sal[p + "down_proj.weight"].sum(0))
        else:
            w = layer.mlp.down_proj.weight.detach().float().numpy()
            out.append(stats.mlp_rms[i] * np.linalg.norm(w, axis=0))
    return out


def head_scores(model, stats: Stats | None, sal: dict | None) -> list[np.ndarray]:
    hd = head_dim(model.config)
    heads = model.config.num_attention_heads
    out = []
    for i, layer in enumerate(model.model.layers):
        if sal is not None:
            p = f"model.layers.{i}.self_attn."
            q = sal[p + "q_proj.weight"].reshape(heads, hd, -1).sum((1, 2))
            o = sal[p + "o_proj.weight"].reshape(-1, heads, hd).sum((0, 2))
            out.append(q + o)
        else:
            w = layer.self_attn.o_proj.weight.detach().float().numpy().reshape(-1, heads, hd)
            a = stats.attn_rms[i].reshape(heads, hd)
            # Output contribution of head h: its activations times the o_proj columns that read them.
            out.append(np.sqrt(((a[None] * w) ** 2).sum((0, 2))))
    return out


def block_scores(model, stats: Stats | None, sal: dict | None) -> np.ndarray:
    if sal is not None:
        n = len(model.model.layers)
        return np.array([sum(float(v.sum()) for k, v in sal.items() if k.startswith(f"model.layers.{i}."))
                         for i in range(n)])
    return np.asarray(stats.block_influence)


# --- surgery ---------------------------------------------------------------------------------------------------

def mlp_keep_width(width: int, fraction: float) -> int:
    keep = width - round(width * fraction)
    step = 1
    if width % MLP_MULTIPLE == 0:
        step = MLP_MULTIPLE
        keep = max(MLP_MULTIPLE, int(round(keep / MLP_MULTIPLE)) * MLP_MULTIPLE)
    keep = max(1, min(width, keep))
    if fraction and keep >= width:
        raise EdgewiseError(f"mlp={fraction:g} removes no neuron once the width ({width}) is rounded to a multiple of "
                            f"{step}: the smallest step is mlp={step / width:.3g}")
    return keep


def heads_removed_per_group(cfg, fraction: float) -> int:
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    m = min(group - 1, round(group * fraction))
    if fraction and m == 0:
        raise EdgewiseError(f"heads={fraction:g} removes no head: this model has {group} query heads per key/value "
                            f"group, so the smallest step is heads={1 / group:.3g}"
                            + (" (and it has one head per group: head pruning cannot apply)" if group == 1 else ""))
    return m


def pruned_param_count(cfg: dict, prune=None) -> int:
    """Parameters of a Llama config (a config.json dict) after `prune` (a Structured config, or None), computed
    from the shapes alone so a search can rank recipes before building any of them."""
    c = SimpleNamespace(**cfg)
    h, inter, layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    heads, kv = c.num_attention_heads, c.num_key_value_heads
    hd = cfg.get("head_dim") or h // heads
    if prune is not None:
        if getattr(prune, "mlp", 0):
            inter = mlp_keep_width(inter, prune.mlp)
        if getattr(prune, "heads", 0):
            heads -= kv * heads_removed_per_group(c, prune.heads)
        layers -= blocks_removed(layers, getattr(prune, "blocks", 0.0))
    bias = hd * (heads + 2 * kv) + h if cfg.get("attention_bias") else 0
    bias += 2 * inter + h if cfg.get("mlp_bias") else 0
    per_layer = h * hd * (2 * heads + 2 * kv) + bias + 3 * h * inter + 2 * h
    embed = c.vocab_size * h * (1 if cfg.get("tie_word_embeddings", False) else 2)  # LlamaConfig's default
    return int(embed + layers * per_layer + h)


def blocks_removed(n_layers: int, fraction: float) -> int:
    return min(n_layers - 1, max(1, round(n_layers * fraction))) if fraction else 0


def shrink(model, keep_layers: list[int], keep_mlp: list[np.ndarray] | None, keep_heads: list[np.ndarray] | None):
    """A new model of the same class holding only the kept blocks, MLP neurons and query heads."""
    import torch

    cfg = model.config
    hd = head_dim(cfg)
    sd = model.state_dict()
    new_sd = {k: v for k, v in sd.items() if ".layers." not in k}
    for new_i, old_i in enumerate(keep_layers):
        pre, npre = f"model.layers.{old_i}.", f"model.layers.{new_i}."
        for k, v in sd.items():
            if not k.startswith(pre):
                continue
            rest = k[len(pre):]
            if keep_mlp is not None and rest in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
                v = v[torch.as_tensor(keep_mlp[old_i])]
            elif keep_mlp is not None and rest == "mlp.down_proj.weight":
                v = v[:, torch.as_tensor(keep_mlp[old_i])]
            elif keep_heads is not None and rest in ("self_attn.q_proj.weight", "self_attn.q_proj.bias"):
                rows = torch.as_tensor(np.concatenate([np.arange(h * hd, (h + 1) * hd) for h in keep_heads[old_i]]))
                v = v[rows]
            elif keep_heads is not None and rest == "self_attn.o_proj.weight":
                cols = torch.as_tensor(np.concatenate([np.arange(h * hd, (h + 1) * hd) for h in keep_heads[old_i]]))
                v = v[:, cols]
            new_sd[npre + rest] = v.clone()
    d = cfg.to_dict()
    d["num_hidden_layers"] = len(keep_layers)
    d["head_dim"] = hd  # explicit: hidden_size / heads no longer gives it once heads are removed
    if keep_mlp is not None:
        d["intermediate_size"] = int(len(keep_mlp[keep_layers[0]]))
    if keep_heads is not None:
        d["num_attention_heads"] = int(len(keep_heads[keep_layers[0]]))
    if isinstance(d.get("layer_types"), list):
        d["layer_types"] = [d["layer_types"][i] for i in keep_layers]
    new_cfg = type(cfg).from_dict(d)
    new = type(model)(new_cfg)
    missing, unexpected = new.load_state_dict(new_sd, strict=False)
    real_missing = [k for k in missing if not (k == "lm_head.weight" and new_cfg.tie_word_embeddings)]
    if real_missing or unexpected:
        raise RuntimeError(f"pruned state dict does not match the pruned config: missing {real_missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return new.eval()


def keep_top(scores: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the `keep` highest scores, in their original order (so the weights stay in place)."""
    return np.sort(np.argsort(-scores, kind="stable")[:keep])


def keep_heads_per_group(scores: np.ndarray, n_kv: int, remove: int) -> np.ndarray:
    group = len(scores) // n_kv
    kept = []
    for g in range(n_kv):
        idx = np.arange(g * group, (g + 1) * group)
        kept.extend(idx[keep_top(scores[idx], group - remove)])
    return np.asarray(kept)


# --- unstructured ----------------------------------------------------------------------------------------------

def zero_magnitude(model, sparsity: float) -> None:
    import torch

    with torch.no_grad():
        for layer in model.model.layers:
            for name in LINEARS:
                w = layer.get_submodule(name).weight
                k = int(w.numel() * sparsity)
                if k:
                    thresh = w.abs().flatten().kthvalue(k).values
                    w[w.abs() <= thresh] = 0.0


def zero_wanda(model, stats: Stats, sparsity: float) -> None:
    import torch

    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            for name in LINEARS:
                w = layer.get_submodule(name).weight
                score = w.abs() * torch.from_numpy(stats.linear_rms[f"{i}.{name}"]).to(w.dtype)[None, :]
                k = int(w.shape[1] * sparsity)  # per output row, as in the paper
                if k:
                    idx = torch.topk(score, k, dim=1, largest=False).indices
                    w.scatter_(1, idx, 0.0)


def linear_sparsity(model) -> float:
    zeros = total = 0
    for layer in model.model.layers:
        for name in LINEARS:
            w = layer.get_submodule(name).weight
            zeros += int((w == 0).sum())
            total += w.numel()
    return zeros / max(total, 1)
