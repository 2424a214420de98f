"""Everything a run needs before its first step, each piece built once in the work folder and reused on resume:
teacher samples (sequence-level KD), the student's tokenizer, the token windows and the teacher's top-k targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from edgewise.compress.distill.bars import StageBar
from edgewise.compress.distill.config import DistillConfig
from edgewise.compress.distill.data import (TeacherCache, read_texts, reduce_tokenizer, sample_teacher, vocab_map_of,
                                            tokenize_to_stream, windows)
from edgewise.export.hf_folder import hf_folder_for
from edgewise.models import load
from edgewise.staging import staged_file

def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class Teacher:
    """The teacher's tokenizer at once; its weights only if a sample or a target is still to be computed."""

    def __init__(self, ref: str, dtype: str):
        self.folder, self.dtype = hf_folder_for(load(ref)), dtype
        self.tok = AutoTokenizer.from_pretrained(self.folder)
        self.vocab_size = AutoConfig.from_pretrained(self.folder).vocab_size
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=torch_dtype(self.dtype)).eval()
        return self._model


@dataclass
class Prepared:
    tok: Any  # the student's tokenizer
    vocab_map: np.ndarray  # student id -> teacher id
    wins: np.ndarray  # (n, seq_len + 1) token windows
    kd_ids: np.ndarray  # windows with teacher targets
    cache: TeacherCache | None


def prepare(cfg: DistillConfig, work: Path, console, progress: bool) -> Prepared:
    """Teacher samples, student tokenizer, token windows and teacher targets: each built once in `work`."""
    teacher = Teacher(cfg.teacher, cfg.teacher_dtype)
    teacher_tok = teacher.tok
    texts = read_texts([Path(d) for d in cfg.data])

    # Sequence-level KD first: the samples become ordinary training text.
    if cfg.teacher_samples:
        sample_file = work / "teacher_samples.txt"
        with StageBar(console, progress, "teacher samples", cfg.teacher_samples) as (bar, task):
            have = len(sample_file.read_text().splitlines()) if sample_file.exists() else 0
            bar.update(task, completed=have)
            if have < cfg.teacher_samples:
                sample_teacher(teacher.model, teacher_tok, texts, cfg.teacher_samples, cfg.sample_tokens,
                               sample_file, cfg.seed, batch=32, on_batch=lambda n: bar.update(task, advance=n))
        texts.append(sample_file.read_text())

    # Student vocabulary: the teacher's, or its most used tokens.
    tok_dir = work / "tokenizer"
    init_tok = AutoTokenizer.from_pretrained(cfg.init_from) if cfg.init_from else None
    if init_tok is not None and len(init_tok) < len(teacher_tok):
        # Continuing a student with a reduced vocabulary: keep its tokenizer, map its ids to the teacher's.
        init_tok.save_pretrained(tok_dir)
        tok, vocab_map = init_tok, vocab_map_of(init_tok, teacher_tok)
    elif cfg.vocab_size and cfg.vocab_size < len(teacher_tok):
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
        with staged_file(stream_path) as tmp, open(tmp, "wb") as f:
            np.save(f, tokenize_to_stream(tok, texts, eos))
    wins = windows(np.load(stream_path), cfg.seq_len)

    # Teacher targets for a fixed random subset of windows (all of them by default).
    n_kd = len(wins) if cfg.teacher_windows is None else min(cfg.teacher_windows, len(wins))
    kd_ids = np.random.default_rng(cfg.seed).permutation(len(wins))[:n_kd]
    cache = (TeacherCache(work / "teacher_topk", kd_ids, cfg.seq_len, cfg.top_k, cfg.temperature)
             if n_kd and cfg.alpha < 1 else None)
    if cache is not None and cache.done < n_kd:
        with StageBar(console, progress, "teacher targets", n_kd) as (bar, task):
            bar.update(task, completed=cache.done)
            cache.fill(teacher.model, wins, vocab_map, batch=8, on_batch=lambda n: bar.update(task, advance=n))
    return Prepared(tok, vocab_map, wins, kd_ids, cache)
