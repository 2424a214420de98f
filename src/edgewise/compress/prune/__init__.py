"""Pruning: `prune(model, Structured(mlp=0.25))` -> PruneResult, a smaller (or sparser) Hugging Face folder.

    from edgewise.compress.prune import prune, Structured, Wanda
    r = prune("smollm2-135m", Structured(mlp=0.25, blocks=0.1))    # importance, surgery, distillation recovery
    r.path                                                         # load / quantize / bench it like any HF folder

Each method is a config dataclass plus one `@register_pruner` function; results are cached by content hash.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgewise.compress.configs import config_dict
from edgewise.compress.context import Calibration
from edgewise.compress.prune import llama as L
from edgewise.compress.prune.configs import (PRUNE_METHODS, Magnitude, PruneConfig, Recovery, Structured, Wanda,
                                             parse_prune)
from edgewise.compress.registry import TypeRegistry
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build, is_cached
from edgewise.export.hf_folder import hf_folder_for
from edgewise.home import edgewise_home
from edgewise.models import ModelSource, load
from edgewise.models.source import CAUSAL_LM

# torch, transformers and the distillation trainer (which imports both, seconds in all) are imported inside the
# functions that prune: `edgewise optimize` imports this package for its configs and parser before any model work.
PRUNERS = TypeRegistry("pruner")
register_pruner = PRUNERS.register
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
              "chat_template.jinja", "generation_config.json")


@dataclass
class PruneResult:
    name: str
    config: object
    path: Path  # an HF folder: edgewise.models.load / runtime.load_model / compress.quantize all take it
    source: str
    params_before: int
    params_after: int
    sparsity: float  # zeros among the block linears' weights (structured: 0)
    size_bytes: int
    compressed_bytes: int | None  # zlib level 6 of the weights (unstructured only): what zeros save once compressed
    dense_compressed_bytes: int | None
    removed: dict = field(default_factory=dict)
    prune_seconds: float = 0.0
    recovery: dict | None = None
    cached: bool = False

    @property
    def param_ratio(self) -> float:
        return self.params_after / max(self.params_before, 1)

    def as_dict(self) -> dict:
        return {"name": self.name, "config": config_dict(self.config), "method": self.config.describe(),
                "path": str(self.path), "source": self.source, "params_before": self.params_before,
                "params_after": self.params_after, "param_ratio": round(self.param_ratio, 4),
                "sparsity": round(self.sparsity, 4), "size_bytes": self.size_bytes,
                "compressed_bytes": self.compressed_bytes, "dense_compressed_bytes": self.dense_compressed_bytes,
                "removed": self.removed, "prune_seconds": round(self.prune_seconds, 1), "recovery": self.recovery}


def weights_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))


def compressed_weights_bytes(folder: Path) -> int:
    """Size of the safetensors once deflated (zlib level 6), streamed so a large model needs no extra memory."""
    total = 0
    for f in sorted(Path(folder).glob("*.safetensors")):
        c = zlib.compressobj(6)
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                total += len(c.compress(chunk))
        total += len(c.flush())
    return total


def _copy_side_files(src: Path, dst: Path) -> None:
    for name in SIDE_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)


def _params(model) -> int:
    # Tied embeddings count once, as the runtime stores them.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


class PruneJob:
    """What a pruner works from: the unpruned HF folder, its model in fp32, calibration batches, and `say`."""

    def __init__(self, ref: str, folder: Path, calibration: Calibration, say: Callable[[str], None]):
        from transformers import AutoTokenizer

        self.ref, self.folder, self.calibration, self.say = ref, folder, calibration, say
        self.model, self.saved_dtype = L.load_llama(folder)
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.params_before = _params(self.model)

    def batches(self, max_tokens: int):
        return L.calibration_batches(self.tok, self.calibration.texts, max_tokens)

    def save(self, model, out: Path) -> None:
        import torch

        dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(self.saved_dtype, torch.float32)
        model.to(dtype).save_pretrained(out)
        model.float()
        _copy_side_files(self.folder, out)


@register_pruner(Structured)
def _structured(cfg: Structured, job: PruneJob, out: Path) -> dict:
    model, mcfg = job.model, job.model.config
    n = mcfg.num_hidden_layers
    # Validate the step sizes before spending any compute.
    n_heads_rm = L.heads_removed_per_group(mcfg, cfg.heads) if cfg.heads else 0
    n_blocks_rm = L.blocks_removed(n, cfg.blocks)
    batches = job.batches(cfg.calib_tokens)
    t0 = time.perf_counter()
    if cfg.importance == "gradient":
        stats, sal = None, L.gradient_saliency(model, batches)
    else:
        stats, sal = L.activation_stats(model, batches), None
    job.say(f"importance ({cfg.importance}) from {sum(b.numel() for b in batches)} calibration tokens "
            f"({time.perf_counter() - t0:.0f} s)")
    keep_layers = list(range(n))
    removed: dict = {}
    if n_blocks_rm:
        b = L.block_scores(model, stats, sal)
        keep_layers = sorted(L.keep_top(b, n - n_blocks_rm).tolist())
        removed["blocks"] = sorted(set(range(n)) - set(keep_layers))
    keep_mlp = keep_heads = None
    if cfg.mlp:
        width = L.mlp_keep_width(mcfg.intermediate_size, cfg.mlp)
        keep_mlp = [L.keep_top(s, width) for s in L.mlp_scores(model, stats, sal)]
        removed["mlp_width"] = [mcfg.intermediate_size, width]
    if n_heads_rm:
        keep_heads = [L.keep_heads_per_group(s, mcfg.num_key_value_heads, n_heads_rm)
                      for s in L.head_scores(model, stats, sal)]
        removed["query_heads"] = [mcfg.num_attention_heads, len(keep_heads[0])]
    pruned = L.shrink(model, keep_layers, keep_mlp, keep_heads)
    job.save(pruned, out)
    return {"removed": removed, "params_after": _params(pruned), "sparsity": 0.0}


@register_pruner(Magnitude)
def _magnitude(cfg: Magnitude, job: PruneJob, out: Path) -> dict:
    L.zero_magnitude(job.model, cfg.sparsity)
    job.save(job.model, out)
    return {"removed": {}, "params_after": job.params_before, "sparsity": L.linear_sparsity(job.model)}


@register_pruner(Wanda)
def _wanda(cfg: Wanda, job: PruneJob, out: Path) -> dict:
    stats = L.activation_stats(job.model, job.batches(cfg.calib_tokens), linear_inputs=True)
    L.zero_wanda(job.model, stats, cfg.sparsity)
    job.save(job.model, out)
    return {"removed": {}, "params_after": job.params_before, "sparsity": L.linear_sparsity(job.model)}


def _recover(rec: Recovery, teacher_ref: str, raw: Path, out: Path, work: Path, calibration: Calibration,
             dtype: str, threads: int | None, progress: bool) -> dict:
    from edgewise.compress.distill import DistillConfig, distill, expand_data

    if rec.data is None:
        work.mkdir(parents=True, exist_ok=True)
        calib_file = work / "calibration.txt"
        calib_file.write_text("\n\n".join(calibration.texts))
        data = [str(calib_file)]
    else:
        data = expand_data(list(rec.data))
    dcfg = DistillConfig(teacher=teacher_ref, student={}, data=data, out=str(out), steps=rec.steps,
                         seq_len=rec.seq_len, batch=rec.batch, lr=rec.lr, warmup=max(1, rec.steps // 10),
                         alpha=rec.alpha, temperature=rec.temperature, teacher_windows=rec.teacher_windows,
                         kd_batch_frac=0.5 if rec.teacher_windows else 0.0, autocast_bf16=rec.autocast_bf16,
                         save_dtype=dtype if dtype in ("float32", "float16", "bfloat16") else "float32",
                         checkpoint_every=max(10, rec.steps // 4), log_every=max(1, rec.steps // 10),
                         threads=threads, work_dir=str(work / "distill"), resume=True, init_from=str(raw))
    r = distill(dcfg, progress=progress)
    first = r.losses[0][1] if r.losses else None
    return {"steps": r.step, "tokens": r.tokens, "seconds": round(r.train_seconds, 1), "first_loss": first,
            "final_loss": r.losses[-1][1] if r.losses else None,
            "data": list(rec.data) if rec.data else [calibration.source]}


def prune(model, config: PruneConfig, *, calibration: Calibration | None = None, say: Callable[[str], None] = print,
          threads: int | None = None, progress: bool = False) -> PruneResult:
    """Prune `model` (a reference or ModelSource of a Llama-architecture causal LM); cached by content hash."""
    pruner = PRUNERS.for_config(config)
    source = model if isinstance(model, ModelSource) else load(str(model))
    if source.task != CAUSAL_LM:
        raise EdgewiseError(f"{source.ref}: pruning supports causal language models (Llama architecture)")
    calibration = calibration or Calibration.default()
    folder = hf_folder_for(source)
    name = config.label
    options = {"config": config_dict(config), "calibration": calibration.digest, "v": 2}  # v2: exact-tail KD loss
    kind = f"prune-{name}"
    cached = is_cached(kind, folder, options)
    info: dict = {}

    def build(out: Path) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        job = PruneJob(source.ref, folder, calibration, say)
        rec = getattr(config, "recovery", None)
        raw = Path(tempfile.mkdtemp(prefix=".raw-", dir=out.parent)) if rec else out
        try:
            info.update(pruner(config, job, raw))
            info["prune_seconds"] = time.perf_counter() - t0
            info["params_before"] = job.params_before
            dtype = job.saved_dtype
            del job
            if rec:
                say(f"{name}: {info['params_after']:,} of {info['params_before']:,} parameters kept; recovering by "
                    f"{rec.steps} distillation steps from the unpruned model")
                work = edgewise_home() / "prune-work" / out.name.lstrip(".")
                info["recovery"] = _recover(rec, str(folder), raw, out, work, calibration, dtype, threads, progress)
        finally:
            # Recovery is minutes, not hours: a failed one starts over, so its checkpoints are not kept.
            if rec:
                shutil.rmtree(edgewise_home() / "prune-work" / out.name.lstrip("."), ignore_errors=True)
            if raw != out:
                shutil.rmtree(raw, ignore_errors=True)
        if info.get("sparsity"):
            # Zeros only pay off once compressed: measure that against the dense weights, once, here.
            info["compressed_bytes"] = compressed_weights_bytes(out)
            info["dense_compressed_bytes"] = compressed_weights_bytes(folder)
        (out / "prune.json").write_text(json.dumps({"source": source.ref, "config": options["config"],
                                                    **{k: v for k, v in info.items()}}, indent=1, default=str))

    path = cached_build(kind, folder, options, build)
    meta = json.loads((path / "prune.json").read_text())
    res = PruneResult(name=name, config=config, path=path, source=source.ref, params_before=meta["params_before"],
                      params_after=meta["params_after"], sparsity=meta["sparsity"], size_bytes=weights_bytes(path),
                      compressed_bytes=meta.get("compressed_bytes"),
                      dense_compressed_bytes=meta.get("dense_compressed_bytes"), removed=meta.get("removed", {}),
                      prune_seconds=meta.get("prune_seconds", 0.0), recovery=meta.get("recovery"), cached=cached)
    say(f"{name}: {res.params_after:,} parameters ({res.param_ratio:.1%} of {res.params_before:,})"
        + (f", {res.sparsity:.1%} zeros in the block weights" if res.sparsity else "")
        + (" (cached)" if cached else ""))
    return res


__all__ = ["prune", "PruneResult", "Structured", "Magnitude", "Wanda", "Recovery", "PRUNE_METHODS", "PRUNERS",
           "parse_prune", "register_pruner", "compressed_weights_bytes"]
