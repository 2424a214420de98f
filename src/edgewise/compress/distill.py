"""Knowledge distillation of a causal LM into a small Llama-style student: `distill(DistillConfig(...)) -> Path`.

The loss at each position mixes the hard-label cross-entropy with the KL divergence to the teacher's
temperature-softened distribution (Hinton et al. 2015), scaled by T^2 so its gradient does not shrink with T:

    loss = alpha * CE(student, next token) + (1 - alpha) * T^2 * KL(teacher_T || student_T)

The teacher's top-k logits are computed once per window and cached (a 135M teacher costs ~100x the student per
token on a CPU), so `teacher_windows` sets how much of the data gets soft targets; windows without them train on
the hard labels alone. Optional sequence-level KD first extends the data with text sampled from the teacher.

Runs are resumable: model, optimizer, step and RNG state are checkpointed atomically every `checkpoint_every`
steps into the work folder, and Ctrl-C stops at the next step boundary after saving one more checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgewise.compress.distill_data import (TeacherCache, atomic_write_text, read_texts, reduce_tokenizer,
                                            sample_teacher, tokenize_to_stream, windows)
from edgewise.errors import EdgewiseError
from edgewise.home import edgewise_home

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class DistillConfig:
    """One distillation run. Paths may be relative to the current folder (or to the recipe file's folder)."""

    teacher: str  # any model reference edgewise.models.load accepts
    student: dict[str, Any]  # transformers LlamaConfig fields; vocab_size is set from the tokenizer
    data: list[str]  # text files
    out: str  # the final HF folder
    steps: int = 1000
    seq_len: int = 128
    batch: int = 16
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.01
    alpha: float = 0.5  # weight of the hard-label loss; 1 - alpha goes to the KD term
    temperature: float = 2.0
    top_k: int = 32  # teacher logits kept per position
    teacher_windows: int | None = None  # windows given teacher targets; None = every window
    kd_batch_frac: float = 0.5  # share of each batch drawn from windows with teacher targets
    teacher_samples: int = 0  # sequence-level KD: continuations sampled from the teacher
    sample_tokens: int = 96
    vocab_size: int | None = None  # None: the teacher's vocabulary; N: its N most used tokens
    teacher_dtype: str = "bfloat16"
    autocast_bf16: bool = False  # student matmuls in bf16 (fast on CPUs with AMX/AVX512-BF16)
    save_dtype: str = "float32"
    checkpoint_every: int = 50
    log_every: int = 25
    seed: int = 0
    threads: int | None = None
    eval_text: str | None = None  # held-out text: word perplexity reported in distill.json
    work_dir: str | None = None  # checkpoints and caches; default under $EDGEWISE_HOME/distill/
    resume: bool = False
    force: bool = False  # start over even if the output or a checkpoint exists
    init_from: str | None = None  # an HF folder whose weights start the student (pruning recovery); its config wins

    def __post_init__(self) -> None:
        if self.init_from:
            self._student_from_init()
        self._validate()

    def _student_from_init(self) -> None:
        folder = Path(self.init_from).expanduser()
        if not (folder / "config.json").is_file():
            raise EdgewiseError(f"init_from {folder}: not a Hugging Face folder (no config.json)")
        if self.vocab_size is not None:
            raise EdgewiseError("init_from keeps the initial model's vocabulary: leave vocab_size unset")
        self.student = json.loads((folder / "config.json").read_text())

    def _validate(self) -> None:
        if not self.teacher:
            raise EdgewiseError("no teacher: pass --teacher MODEL (e.g. smollm2-135m)")
        if not isinstance(self.student, dict) or not self.student:
            raise EdgewiseError("no student architecture: pass --student-config FILE (a LlamaConfig .json or recipe)")
        if not self.data:
            raise EdgewiseError("no training text: pass --data FILE [FILE ...]")
        self.data = [str(d) for d in self.data]
        for name in ("steps", "seq_len", "batch", "top_k", "checkpoint_every", "log_every", "sample_tokens"):
            if int(getattr(self, name)) < 1:
                raise EdgewiseError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "teacher_samples"):
            if int(getattr(self, name)) < 0:
                raise EdgewiseError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise EdgewiseError(f"alpha must be in [0, 1] (1 = hard labels only), got {self.alpha}")
        if not 0.0 <= self.kd_batch_frac <= 1.0:
            raise EdgewiseError(f"kd_batch_frac must be in [0, 1], got {self.kd_batch_frac}")
        if self.temperature <= 0:
            raise EdgewiseError(f"temperature must be > 0 (try 2.0), got {self.temperature}")
        if self.lr <= 0:
            raise EdgewiseError(f"lr must be > 0 (try 3e-3 for a small student), got {self.lr}")
        if self.teacher_windows is not None and self.teacher_windows < 0:
            raise EdgewiseError(f"teacher_windows must be >= 0 or unset, got {self.teacher_windows}")
        if self.vocab_size is not None and self.vocab_size < 300:
            raise EdgewiseError(f"vocab_size {self.vocab_size} is too small: use >= 300 (e.g. 8192) or leave unset")
        for name in ("teacher_dtype", "save_dtype"):
            if getattr(self, name) not in DTYPES:
                raise EdgewiseError(f"{name} must be one of {', '.join(DTYPES)}, got {getattr(self, name)!r}")
        if self.student.get("model_type", "llama") != "llama":
            raise EdgewiseError(f"the student must be a llama config (model_type 'llama'), got "
                                f"{self.student['model_type']!r}: the ort exporter builds llama students")

    @property
    def out_path(self) -> Path:
        return Path(self.out).expanduser()

    @property
    def work_path(self) -> Path:
        if self.work_dir:
            return Path(self.work_dir).expanduser()
        key = hashlib.sha256(str(self.out_path.resolve()).encode()).hexdigest()[:8]
        return edgewise_home() / "distill" / f"{self.out_path.name}-{key}"

    def fingerprint(self) -> dict[str, Any]:
        """The settings that make a checkpoint meaningful; a resume with other values would mix two runs."""
        skip = {"steps", "checkpoint_every", "log_every", "threads", "eval_text", "work_dir", "resume", "force",
                "out", "save_dtype"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def load_recipe(path: str | Path, **overrides: Any) -> DistillConfig:
    """A TOML recipe: a [distill] table of DistillConfig fields and a [student] table of LlamaConfig fields.

    Relative paths in the recipe are taken from the folder the command runs in (the repository root)."""
    path = Path(path)
    if not path.is_file():
        raise EdgewiseError(f"{path}: no such recipe file")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise EdgewiseError(f"{path}: not valid TOML ({e})") from None
    if "distill" not in doc or "student" not in doc:
        raise EdgewiseError(f"{path}: a recipe needs a [distill] and a [student] table")
    kw = dict(doc["distill"])
    kw["student"] = dict(doc["student"])
    if "data" in kw:
        kw["data"] = expand_data(kw["data"])
    if str(kw.get("eval_text", "")).startswith("corpus:"):
        from edgewise.data.corpora import keyboard_eval_text

        kw["eval_text"] = str(keyboard_eval_text(kw["eval_text"].split(":", 1)[1]))
    known = {f.name for f in fields(DistillConfig)}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise EdgewiseError(f"{path}: unknown [distill] keys {', '.join(unknown)}: see docs/distill.md")
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return DistillConfig(**kw)


def expand_data(items: list[str]) -> list[str]:
    """Data entries are file paths, or `corpus:NAME` for a packaged corpus (edgewise.data.corpora)."""
    out: list[str] = []
    for item in items:
        if item.startswith("corpus:"):
            from edgewise.data.corpora import training_texts

            out += [str(p) for p in training_texts((item.split(":", 1)[1],))]
        else:
            out.append(item)
    return out


def student_config_from_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise EdgewiseError(f"{path}: no such student config: pass a LlamaConfig .json or a recipe .toml")
    if path.suffix == ".toml":
        doc = tomllib.loads(path.read_text())
        if "student" not in doc:
            raise EdgewiseError(f"{path}: no [student] table")
        return dict(doc["student"])
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EdgewiseError(f"{path}: not valid JSON ({e})") from None


# ---------------------------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------------------------

def kd_loss(logits, labels, t_vals, t_idx, has_kd, alpha: float, temperature: float, t_lse=None):
    """Mixed hard/soft loss. logits (B, S, V); labels (B, S); t_vals/t_idx (B, S, k); has_kd (B,) bool;
    t_lse (B, S): the teacher's logsumexp over its whole vocabulary at `temperature`.

    With t_lse the KL is exact over k + 1 buckets: the teacher's top-k tokens and one bucket for everything else,
    so a student equal to its teacher scores 0. (Renormalising the top-k alone, the fallback without t_lse, gives
    a flat teacher a KL floor of -log(top-k mass) and pushes the student to squeeze all its mass into k tokens:
    self-distilling the keyboard student that way raised its cross-entropy from 5.9 to 7.4 in 30 steps.)
    """
    import torch
    import torch.nn.functional as F

    B, S, V = logits.shape
    ce_w = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), reduction="none").view(B, S).mean(1)  # (B,)
    ce = ce_w.mean()
    if not bool(has_kd.any()) or alpha >= 1.0:
        return ce, ce, None
    s = logits[has_kd] / temperature  # (b, S, V)
    logq = torch.log_softmax(s, dim=-1).gather(-1, t_idx[has_kd].long())  # (b, S, k)
    tv = t_vals[has_kd].float() / temperature
    if t_lse is None:
        logp = torch.log_softmax(tv, dim=-1)
        kl = (logp.exp() * (logp - logq)).sum(-1)
    else:
        logp = tv - t_lse[has_kd].float().unsqueeze(-1)  # true log-probabilities of the top-k
        p_tail = (1 - logp.exp().sum(-1)).clamp_min(1e-6)
        q_tail = (1 - logq.exp().sum(-1)).clamp_min(1e-6)
        kl = (logp.exp() * (logp - logq)).sum(-1) + p_tail * (p_tail.log() - q_tail.log())
    kl_w = kl.mean(1) * temperature ** 2  # (b,)
    # Windows without teacher targets take the hard-label loss alone.
    per_w = ce_w.clone()
    per_w[has_kd] = alpha * ce_w[has_kd] + (1 - alpha) * kl_w
    return per_w.mean(), ce, kl_w.mean()


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------

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


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class _Teacher:
    """The teacher's tokenizer at once; its weights only if a sample or a target is still to be computed."""

    def __init__(self, ref: str, dtype: str):
        from transformers import AutoConfig, AutoTokenizer

        from edgewise.export.hf_folder import hf_folder_for
        from edgewise.models import load

        self.folder, self.dtype = hf_folder_for(load(ref)), dtype
        self.tok = AutoTokenizer.from_pretrained(self.folder)
        self.vocab_size = AutoConfig.from_pretrained(self.folder).vocab_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM

            self._model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=_dtype(self.dtype)).eval()
        return self._model


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
    import torch

    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "tokens": tokens,
             "train_seconds": train_s, "losses": losses, "fingerprint": cfg.fingerprint(),
             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-save leaves the previous checkpoint intact


def _lr_at(step: int, cfg: DistillConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))  # cosine to 10%


@dataclass
class _Prepared:
    tok: Any  # the student's tokenizer
    vocab_map: np.ndarray  # student id -> teacher id
    wins: np.ndarray  # (n, seq_len + 1) token windows
    kd_ids: np.ndarray  # windows with teacher targets
    cache: TeacherCache | None


def _prepare(cfg: DistillConfig, work: Path, console, progress: bool) -> _Prepared:
    """Teacher samples, student tokenizer, token windows and teacher targets: each built once in `work`."""
    from transformers import AutoTokenizer

    teacher = _Teacher(cfg.teacher, cfg.teacher_dtype)
    teacher_tok = teacher.tok
    texts = read_texts([Path(d) for d in cfg.data])

    # Sequence-level KD first: the samples become ordinary training text.
    if cfg.teacher_samples:
        sample_file = work / "teacher_samples.txt"
        with _bar(console, progress, "teacher samples", cfg.teacher_samples) as (bar, task):
            have = len(sample_file.read_text().splitlines()) if sample_file.exists() else 0
            bar.update(task, completed=have)
            if have < cfg.teacher_samples:
                sample_teacher(teacher.model, teacher_tok, texts, cfg.teacher_samples, cfg.sample_tokens,
                               sample_file, cfg.seed, batch=32, on_batch=lambda n: bar.update(task, advance=n))
        texts.append(sample_file.read_text())

    # Student vocabulary: the teacher's, or its most used tokens.
    tok_dir = work / "tokenizer"
    if cfg.vocab_size and cfg.vocab_size < len(teacher_tok):
        if not (work / "vocab_map.npy").exists():
            vocab_map = reduce_tokenizer(teacher_tok, texts, cfg.vocab_size, tok_dir)
            np.save(work / "vocab_map.npy", vocab_map)
        vocab_map = np.load(work / "vocab_map.npy")
        tok = AutoTokenizer.from_pretrained(tok_dir)
    else:
        teacher_tok.save_pretrained(tok_dir)
        tok = teacher_tok
        vocab_map = np.arange(teacher.vocab_size, dtype=np.int64)
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0

    stream_path = work / "tokens.npy"
    if not stream_path.exists():
        np.save(work / "tokens.tmp.npy", tokenize_to_stream(tok, texts, eos))
        os.replace(work / "tokens.tmp.npy", stream_path)
    wins = windows(np.load(stream_path), cfg.seq_len)

    # Teacher targets for a fixed random subset of windows (all of them by default).
    n_kd = len(wins) if cfg.teacher_windows is None else min(cfg.teacher_windows, len(wins))
    kd_ids = np.random.default_rng(cfg.seed).permutation(len(wins))[:n_kd]
    cache = (TeacherCache(work / "teacher_topk", kd_ids, cfg.seq_len, cfg.top_k, cfg.temperature)
             if n_kd and cfg.alpha < 1 else None)
    if cache is not None and cache.done < n_kd:
        with _bar(console, progress, "teacher targets", n_kd) as (bar, task):
            bar.update(task, completed=cache.done)
            cache.fill(teacher.model, wins, vocab_map, batch=8, on_batch=lambda n: bar.update(task, advance=n))
    return _Prepared(tok, vocab_map, wins, kd_ids, cache)


def distill(cfg: DistillConfig, on_step: Callable[[StepInfo], None] | None = None,
            progress: bool = True) -> DistillResult:
    """Run (or resume) a distillation and write the student as an HF folder at cfg.out."""
    import torch
    from rich.console import Console
    from transformers import LlamaConfig, LlamaForCausalLM

    console = Console(stderr=True)
    out, work = cfg.out_path, cfg.work_path
    ckpt_path = work / "checkpoint.pt"
    if out.exists() and (out / "model.safetensors").exists() and not (cfg.resume or cfg.force):
        raise EdgewiseError(f"{out} already holds a model: choose a new --out, or pass --force to replace it")
    if ckpt_path.exists() and not (cfg.resume or cfg.force):
        raise EdgewiseError(f"{work} holds a checkpoint of an earlier run: pass --resume to continue it "
                            "or --force to start over")
    if cfg.force and not cfg.resume and work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)

    prep = _prepare(cfg, work, console, progress)
    tok, vocab_map, wins, kd_ids, cache = prep.tok, prep.vocab_map, prep.wins, prep.kd_ids, prep.cache
    n_kd = len(kd_ids)
    eos = tok.eos_token_id if tok.eos_token_id is not None else 0

    if cfg.init_from:
        # Recovery after pruning: the student starts from the pruned weights, in the teacher's vocabulary.
        model = LlamaForCausalLM.from_pretrained(Path(cfg.init_from).expanduser(), dtype=torch.float32)
        if model.config.vocab_size != len(vocab_map):
            raise EdgewiseError(f"init_from {cfg.init_from} has a {model.config.vocab_size}-token vocabulary but the "
                                f"teacher has {len(vocab_map)}: recover from the model the pruned one came from")
    else:
        student_kw = {k: v for k, v in cfg.student.items() if k not in ("model_type", "architectures", "vocab_size")}
        student_kw.setdefault("max_position_embeddings", max(cfg.seq_len, 256))
        scfg = LlamaConfig(vocab_size=len(vocab_map), bos_token_id=tok.bos_token_id, eos_token_id=eos,
                           pad_token_id=tok.pad_token_id, **student_kw)
        model = LlamaForCausalLM(scfg)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))

    step, tokens, train_s, losses = 0, 0, 0.0, []
    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        if state["fingerprint"] != cfg.fingerprint():
            diff = sorted(k for k in cfg.fingerprint() if state["fingerprint"].get(k) != cfg.fingerprint()[k])
            raise EdgewiseError(f"the checkpoint in {work} was made with other settings ({', '.join(diff)}): "
                                "resume with the same settings, or pass --force to start over")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, tokens, train_s, losses = state["step"], state["tokens"], state["train_seconds"], state["losses"]
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])

    kd_rows = cache.row_of if cache is not None else {}
    n_kd_batch = round(cfg.batch * cfg.kd_batch_frac) if cache is not None and n_kd < len(wins) else 0

    def batch_at(s: int):
        # The batch is a pure function of (seed, step): a resumed run sees exactly the batches it would have.
        rng = np.random.default_rng([cfg.seed, s])
        ids = np.concatenate([kd_ids[rng.integers(0, n_kd, n_kd_batch)] if n_kd_batch else np.zeros(0, int),
                              rng.integers(0, len(wins), cfg.batch - n_kd_batch)])
        x = torch.as_tensor(wins[ids]).long()
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

    model.train()
    at_boundary = True  # True whenever the model and optimizer hold a finished step
    t_run, tok_run = time.perf_counter(), 0
    try:
        with _Interrupt() as intr, _bar(console, progress, "distilling", cfg.steps) as (bar, task):
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


def _write_output(model, tok, vocab_map, cfg: DistillConfig, result: DistillResult) -> None:
    import shutil

    out = cfg.out_path
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.to(_dtype(cfg.save_dtype)).save_pretrained(tmp)
    model.float()
    tok.save_pretrained(tmp)
    summary = {"teacher": cfg.teacher, "params": result.params, "steps": result.step, "train_tokens": result.tokens,
               "train_seconds": round(result.train_seconds, 1), "final_loss": result.losses[-1][1],
               "eval": result.eval, "student_vocab": len(vocab_map), "saved_dtype": cfg.save_dtype,
               "config": {k: v for k, v in asdict(cfg).items() if k not in ("resume", "force", "work_dir")}}
    atomic_write_text(tmp / "distill.json", json.dumps(summary, indent=1, default=str) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


class _bar:
    """A rich progress bar with loss and tokens/s columns; off a terminal (nohup, CI) a line per ~10% instead."""

    def __init__(self, console, enabled: bool, label: str, total: int):
        self.console, self.enabled, self.label, self.total = console, enabled, label, total

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        if not (self.enabled and self.console.is_terminal):
            self.p = _LogProgress(self.console, self.label, self.total, quiet=not self.enabled)
            return self.p, 0
        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("{task.fields[tps]:.0f} tok/s"),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=self.console)
        self.p.__enter__()
        task = self.p.add_task(self.label, total=self.total, loss=float("nan"), tps=0.0)
        return self.p, task

    def __exit__(self, *exc):
        return self.p.__exit__(*exc)


class _LogProgress:
    def __init__(self, console, label: str, total: int, quiet: bool):
        self.console, self.label, self.total, self.quiet = console, label, total, quiet
        self.n, self.next_pct, self.t0 = 0, 10, time.perf_counter()

    def update(self, task, completed: int | None = None, advance: int = 0, **fields) -> None:
        self.n = completed if completed is not None else self.n + advance
        pct = 100 * self.n / max(self.total, 1)
        if not self.quiet and pct >= self.next_pct and self.label != "distilling":  # training logs its own lines
            self.console.print(f"{self.label}: {self.n}/{self.total} ({time.perf_counter() - self.t0:.0f} s)",
                               highlight=False)
            self.next_pct = (int(pct) // 10 + 1) * 10

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: perplexity per word, comparable across tokenizers (teacher 49k vs a reduced student vocabulary)
# ---------------------------------------------------------------------------------------------------------------

def word_perplexity(model, tok, text: str, window: int = 256) -> dict[str, float]:
    """Total NLL of `text` in non-overlapping windows, per word (exp) and per character (bits).

    Also the top-1/top-3 accuracy on the first token of each next word (a byte-level token starting with a
    space): a cheap proxy for next-word prediction that needs no beam search.
    """
    import torch
    import torch.nn.functional as F

    ids = []
    for line in tok(text.splitlines(keepends=True), add_special_tokens=False)["input_ids"]:
        ids.extend(line)
    starts = torch.tensor([t.startswith("\u0120") for t in tok.convert_ids_to_tokens(list(range(len(tok))))])
    ids_t = torch.tensor(ids)
    nll, n, hit1, hit3, n_words = 0.0, 0, 0, 0, 0
    with torch.inference_mode():
        for s in range(0, len(ids) - 1, window):
            x = ids_t[s:s + window + 1]
            if len(x) < 2:
                break
            logits = model(input_ids=x[None, :-1]).logits[0].float()
            nll += float(F.cross_entropy(logits, x[1:], reduction="sum"))
            n += len(x) - 1
            at = starts[x[1:]]  # positions whose next token begins a word
            top3 = logits[at].topk(3, dim=-1).indices
            y = x[1:][at]
            hit1 += int((top3[:, 0] == y).sum())
            hit3 += int((top3 == y[:, None]).any(-1).sum())
            n_words += int(at.sum())
    words, chars = len(text.split()), len(text)
    return {"tokens": n, "words": words, "ppl_token": math.exp(nll / n), "ppl_word": math.exp(nll / words),
            "bits_per_char": nll / chars / math.log(2), "word_start_top1": hit1 / max(n_words, 1),
            "word_start_top3": hit3 / max(n_words, 1)}
