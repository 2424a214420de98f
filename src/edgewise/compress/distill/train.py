"""The training run: optimizer steps over token windows, checkpointed atomically every `checkpoint_every` steps into
the work folder, resumable, and stopped cleanly by Ctrl-C at the next step boundary after one more checkpoint."""

from __future__ import annotations

import json
import math
import random
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.console import Console
from transformers import LlamaConfig, LlamaForCausalLM

from edgewise.compress.distill.bars import StageBar
from edgewise.compress.distill.config import DistillConfig
from edgewise.compress.distill.eval import word_perplexity
from edgewise.compress.distill.loss import kd_loss
from edgewise.compress.distill.prepare import Prepared, prepare, torch_dtype
from edgewise.errors import EdgewiseError
from edgewise.staging import staged_dir, staged_file


@dataclass
class StepInfo:
    """What a progress callback sees after each optimizer step."""

    step: int
    steps: int
    loss: float
    ce: float
    kl: float | None
    tokens: int  # student training tokens so far (this run and resumed ones)
    tokens_per_s: float


@dataclass
class DistillResult:
    out: Path
    work: Path
    step: int
    tokens: int
    params: int
    train_seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    eval: dict[str, float] | None = None


class _Interrupt:
    """First Ctrl-C asks for a clean stop at the next step boundary; a second one stops at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _save_checkpoint(path: Path, model, opt, step: int, tokens: int, train_s: float, losses, cfg: DistillConfig):
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "tokens": tokens,
             "train_seconds": train_s, "losses": losses, "fingerprint": cfg.fingerprint(),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}
    with staged_file(path) as tmp:  # a crash mid-save leaves the previous checkpoint intact
        torch.save(state, tmp)


def _lr_at(step: int, cfg: DistillConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))  # cosine to 10%


def distill(cfg: DistillConfig, on_step: Callable[[StepInfo], None] | None = None,
            progress: bool = True) -> DistillResult:
    """Run (or resume) a distillation and write the student as an HF folder at cfg.out."""
    console = Console(stderr=True)
    out, work = cfg.out_path, cfg.work_path
    ckpt_path = work / "checkpoint.pt"
    if out.exists() and (out / "model.safetensors").exists() and not (cfg.resume or cfg.force):
        raise EdgewiseError(f"{out} already holds a model: choose a new --out, or pass --force to replace it")
    if ckpt_path.exists() and not (cfg.resume or cfg.force):
        raise EdgewiseError(f"{work} holds a checkpoint of an earlier run: pass --resume to continue it "
                            "or --force to start over")
    if cfg.force and not cfg.resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)

    prep = prepare(cfg, work, console, progress)
    tok, vocab_map = prep.tok, prep.vocab_map
    model = _student(cfg, prep)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))

    step, tokens, train_s, losses = 0, 0, 0.0, []
    if cfg.resume and ckpt_path.exists():
        step, tokens, train_s, losses = _resume(ckpt_path, model, opt, cfg)
    batch_at = _Batches(cfg, prep)

    model.train()
    at_boundary = True  # True whenever the model and optimizer hold a finished step
    t_run, tok_run = time.perf_counter(), 0
    try:
        with _Interrupt() as intr, StageBar(console, progress, "distilling", cfg.steps) as (bar, task):
            bar.update(task, completed=step)
            while step < cfg.steps:
                at_boundary = False
                for g in opt.param_groups:
                    g["lr"] = _lr_at(step, cfg)
                x, y, tv, ti, tl, has = batch_at(step)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
                    logits = model(input_ids=x).logits
                loss, ce, kl = kd_loss(logits.float(), y, tv, ti, has, cfg.alpha, cfg.temperature, tl)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
                tokens += x.numel()
                tok_run += x.numel()
                at_boundary = True
                now = time.perf_counter()
                tps = tok_run / max(now - t_run, 1e-9)
                info = StepInfo(step, cfg.steps, loss.item(), ce.item(), None if kl is None else kl.item(),
                                tokens, tps)
                losses.append((step, round(info.loss, 4)))
                bar.update(task, completed=step, loss=info.loss, tps=tps)
                if not (progress and console.is_terminal) and (step % cfg.log_every == 0 or step == cfg.steps):
                    console.print(f"step {step}/{cfg.steps} loss {info.loss:.3f} ce {info.ce:.3f} "
                                  f"kl {info.kl if info.kl is None else round(info.kl, 3)} {tps:.0f} tok/s",
                                  highlight=False)
                if on_step is not None:
                    on_step(info)
                if step % cfg.checkpoint_every == 0 or intr.requested:
                    _save_checkpoint(ckpt_path, model, opt, step, tokens,
                                     train_s + time.perf_counter() - t_run, losses, cfg)
                if intr.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        # Only a finished step is worth saving; mid-step, the last checkpoint on disk is the consistent one.
        if at_boundary and step > 0:
            _save_checkpoint(ckpt_path, model, opt, step, tokens, train_s + time.perf_counter() - t_run, losses, cfg)
        raise
    train_s += time.perf_counter() - t_run
    _save_checkpoint(ckpt_path, model, opt, step, tokens, train_s, losses, cfg)

    model.eval()
    result = DistillResult(out, work, step, tokens, params, train_s, losses)
    if cfg.eval_text:
        result.eval = word_perplexity(model, tok, Path(cfg.eval_text).read_text(), cfg.seq_len)
    _write_output(model, tok, vocab_map, cfg, result)
    return result


def _student(cfg: DistillConfig, prep: Prepared):
    """A new Llama student of cfg.student's shape, or the pruned model to recover (init_from)."""
    tok, vocab_map = prep.tok, prep.vocab_map
    if cfg.init_from:
        # Recovery after pruning: the student starts from the pruned weights, in the teacher's vocabulary.
        model = LlamaForCausalLM.from_pretrained(Path(cfg.init_from).expanduser(), dtype=torch.float32)
        if model.config.vocab_size != len(vocab_map):
            raise EdgewiseError(f"init_from {cfg.init_from} has a {model.config.vocab_size}-token vocabulary but the "
                                f"teacher has {len(vocab_map)}: recover from the model the pruned one came from")
        return model
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0
    student_kw = {k: v for k, v in cfg.student.items() if k not in ("model_type", "architectures", "vocab_size")}
    student_kw.setdefault("max_position_embeddings", max(cfg.seq_len, 256))
    scfg = LlamaConfig(vocab_size=len(vocab_map), bos_token_id=tok.bos_token_id, eos_token_id=eos,
                       pad_token_id=tok.pad_token_id, **student_kw)
    return LlamaForCausalLM(scfg)


def _resume(ckpt_path: Path, model, opt, cfg: DistillConfig) -> tuple[int, int, float, list]:
    """Load a checkpoint of the same settings into model and optimizer; restore the RNGs. (step, tokens, s, losses)"""
    state = torch.load(ckpt_path, weights_only=False)
    if state["fingerprint"] != cfg.fingerprint():
        diff = sorted(k for k in cfg.fingerprint() if state["fingerprint"].get(k) != cfg.fingerprint()[k])
        raise EdgewiseError(f"the checkpoint in {ckpt_path.parent} was made with other settings ({', '.join(diff)}): "
                            "resume with the same settings, or pass --force to start over")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return state["step"], state["tokens"], state["train_seconds"], state["losses"]


class _Batches:
    """batch_at(step) -> (inputs, labels, teacher top-k values, ids, logsumexp, has-teacher-targets mask)."""

    def __init__(self, cfg: DistillConfig, prep: Prepared):
        self.cfg, self.wins, self.kd_ids, self.cache = cfg, prep.wins, prep.kd_ids, prep.cache
        self.kd_rows = prep.cache.row_of if prep.cache is not None else {}
        self.n_kd_batch = (round(cfg.batch * cfg.kd_batch_frac)
                           if prep.cache is not None and len(prep.kd_ids) < len(prep.wins) else 0)

    def __call__(self, s: int):
        cfg, cache, kd_rows, n_kd_batch = self.cfg, self.cache, self.kd_rows, self.n_kd_batch
        # The batch is a pure function of (seed, step): a resumed run sees exactly the batches it would have.
        rng = np.random.default_rng([cfg.seed, s])
        ids = np.concatenate([self.kd_ids[rng.integers(0, len(self.kd_ids), n_kd_batch)] if n_kd_batch
                              else np.zeros(0, int),
                              rng.integers(0, len(self.wins), cfg.batch - n_kd_batch)])
        x = torch.as_tensor(self.wins[ids]).long()
        has = torch.tensor([int(i) in kd_rows for i in ids])
        k = cfg.top_k
        tv = torch.zeros(len(ids), cfg.seq_len, k, dtype=torch.float16)
        ti = torch.zeros(len(ids), cfg.seq_len, k, dtype=torch.int32)
        tl = torch.zeros(len(ids), cfg.seq_len, dtype=torch.float32)
        for j, i in enumerate(ids):
            r = kd_rows.get(int(i))
            if r is not None:
                tv[j], ti[j] = torch.from_numpy(np.asarray(cache.vals[r])), torch.from_numpy(np.asarray(cache.idx[r]))
                tl[j] = torch.from_numpy(np.asarray(cache.lse[r]))
        return x[:, :-1], x[:, 1:], tv, ti, tl, has


def _write_output(model, tok, vocab_map, cfg: DistillConfig, result: DistillResult) -> None:
    with staged_dir(cfg.out_path) as tmp:  # a run's output replaces an earlier one (--force) whole or not at all
        model.to(torch_dtype(cfg.save_dtype)).save_pretrained(tmp)
        model.float()
        tok.save_pretrained(tmp)
        summary = {"teacher": cfg.teacher, "params": result.params, "steps": result.step,
                   "train_tokens": result.tokens, "train_seconds": round(result.train_seconds, 1),
                   "final_loss": result.losses[-1][1], "eval": result.eval, "student_vocab": len(vocab_map),
                   "saved_dtype": cfg.save_dtype,
                   "config": {k: v for k, v in asdict(cfg).items() if k not in ("resume", "force", "work_dir")}}
        (tmp / "distill.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
