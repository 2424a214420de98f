"""The data side of distillation: a reduced student vocabulary, token windows, teacher targets and samples.

Everything here is written once into the run's work folder and reused on resume, so an interrupted run never
pays for the teacher twice.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from edgewise.errors import EdgewiseError
from edgewise.staging import write_text_atomic


def read_texts(files: list[Path]) -> list[str]:
    texts = []
    for f in files:
        if not f.is_file():
            raise EdgewiseError(f"{f}: no such data file: pass existing text files to --data")
        texts.append(f.read_text(encoding="utf-8", errors="replace"))
    if not any(t.strip() for t in texts):
        raise EdgewiseError("the --data files are empty: pass some English text")
    return texts


# ---------------------------------------------------------------------------------------------------------------
# Reduced vocabulary: the teacher's own byte-level BPE cut to the N tokens the data uses most. The student's ids
# are a subset of the teacher's, so logit KD stays exact on the kept tokens (teacher logits gathered at
# `vocab_map`), while the student's embedding and softmax shrink 6x for a 49k -> 8k cut.
# ---------------------------------------------------------------------------------------------------------------

def reduce_tokenizer(teacher_tok, texts: list[str], size: int, out: Path) -> np.ndarray:
    """Write a reduced copy of `teacher_tok` (a fast BPE tokenizer) to `out`; return vocab_map[student_id] = teacher_id."""
    spec = json.loads(teacher_tok.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "BPE":
        raise EdgewiseError(f"--vocab-size needs a BPE teacher tokenizer, not {model.get('type')}: drop --vocab-size")
    vocab: dict[str, int] = model["vocab"]
    inv = {i: t for t, i in vocab.items()}
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    parents: dict[str, tuple[str, str]] = {}
    for a, b in merges:
        parents.setdefault(a + b, (a, b))

    counts: Counter[int] = Counter()
    for t in texts:
        for line_ids in teacher_tok(t.splitlines(keepends=True), add_special_tokens=False)["input_ids"]:
            counts.update(line_ids)

    keep: set[str] = {t for t in vocab if len(t) == 1}  # the byte alphabet: any text still encodes
    keep |= {a["content"] for a in spec["added_tokens"] if a["content"] in vocab}

    def missing(tok: str) -> set[str]:
        # A BPE token is only reachable if both halves of its merge are kept too.
        need, stack = set(), [tok]
        while stack:
            t = stack.pop()
            if t not in keep and t not in need:
                need.add(t)
                stack.extend(parents.get(t, ()))
        return need

    if size <= len(keep):
        raise EdgewiseError(f"--vocab-size {size} is below the {len(keep)} base tokens: use at least {len(keep) + 256}")
    for tid, _ in counts.most_common():
        need = missing(inv[tid])
        if len(keep) + len(need) <= size:
            keep |= need
        if len(keep) >= size:
            break
    vocab_map = np.array(sorted(vocab[t] for t in keep), dtype=np.int64)
    new_id = {inv[int(t)]: i for i, t in enumerate(vocab_map)}
    model["vocab"] = new_id
    model["merges"] = [[a, b] for a, b in merges if a in new_id and b in new_id and a + b in new_id]
    for a in spec["added_tokens"]:
        a["id"] = new_id[a["content"]]
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                  **{k: v for k, v in teacher_tok.special_tokens_map.items() if isinstance(v, str)})
    tok.save_pretrained(out)
    return vocab_map


def vocab_map_of(student_tok, teacher_tok) -> np.ndarray:
    """vocab_map of a student tokenizer that reduce_tokenizer made earlier (a committed student continued with
    init_from): each student token's teacher id, found by its string."""
    teacher_vocab = teacher_tok.get_vocab()
    student_vocab = student_tok.get_vocab()
    out = np.zeros(len(student_vocab), dtype=np.int64)
    for t, i in student_vocab.items():
        if t not in teacher_vocab:
            raise EdgewiseError(f"the student's token {t!r} is not in the teacher's vocabulary: the student was not "
                                "reduced from this teacher's tokenizer; pick the teacher it was distilled from")
        out[i] = teacher_vocab[t]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Token windows
# ---------------------------------------------------------------------------------------------------------------

def tokenize_to_stream(tok, texts: list[str], eos_id: int) -> np.ndarray:
    """All texts as one int32 stream, an end-of-text token between files."""
    ids: list[int] = []
    for t in texts:
        for line_ids in tok(t.splitlines(keepends=True), add_special_tokens=False)["input_ids"]:
            ids.extend(line_ids)
        ids.append(eos_id)
    return np.asarray(ids, dtype=np.int32)


def windows(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """(n, seq_len + 1) non-overlapping windows: inputs are [:, :-1], labels [:, 1:]."""
    n = (len(stream) - 1) // seq_len
    if n < 1:
        raise EdgewiseError(f"the data has {len(stream)} tokens, fewer than one window of --seq-len {seq_len}: "
                            "add text or lower --seq-len")
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return stream[idx]


# ---------------------------------------------------------------------------------------------------------------
# Teacher targets: top-k logits per position, computed once and memory-mapped
# ---------------------------------------------------------------------------------------------------------------

class TeacherCache:
    """Top-k teacher logits (over the student vocabulary) for a fixed set of windows, filled incrementally.

    vals: (W, S, k) float16 raw logits; idx: (W, S, k) int32 student ids; lse: (W, S) float32 logsumexp of the
    logits at the KD temperature; `done` counts filled windows, so a killed fill resumes where it stopped.
    """

    def __init__(self, folder: Path, window_ids: np.ndarray, seq_len: int, k: int, temperature: float = 1.0):
        self.folder, self.window_ids, self.k, self.temperature = folder, window_ids, k, temperature
        folder.mkdir(parents=True, exist_ok=True)
        shape = (len(window_ids), seq_len, k)
        # v2 adds lse: the teacher's full log-normaliser at the KD temperature, so the loss knows the tail's mass.
        meta = {"windows": window_ids.tolist(), "seq_len": seq_len, "k": k, "temperature": temperature, "v": 2}
        meta_path = folder / "meta.json"
        fresh = not meta_path.exists() or json.loads(meta_path.read_text()) != meta
        mode = "w+" if fresh else "r+"
        self.vals = np.lib.format.open_memmap(folder / "vals.npy", mode=mode, dtype=np.float16, shape=shape)
        self.idx = np.lib.format.open_memmap(folder / "idx.npy", mode=mode, dtype=np.int32, shape=shape)
        self.lse = np.lib.format.open_memmap(folder / "lse.npy", mode=mode, dtype=np.float32, shape=shape[:2])
        if fresh:
            write_text_atomic(folder / "done", "0")
            write_text_atomic(meta_path, json.dumps(meta))
        self.done = int((folder / "done").read_text())
        self.row_of = {int(w): r for r, w in enumerate(window_ids)}

    def fill(self, teacher, wins: np.ndarray, vocab_map, batch: int, on_batch: Callable[[int], None]) -> None:
        vmap = torch.as_tensor(vocab_map)
        while self.done < len(self.window_ids):
            rows = slice(self.done, min(self.done + batch, len(self.window_ids)))
            x = torch.as_tensor(wins[self.window_ids[rows], :-1]).long()
            with torch.inference_mode():
                logits = teacher(input_ids=vmap[x]).logits.float()[..., vmap]  # (B, S, V_student)
                v, i = logits.topk(self.k, dim=-1)
                lse = torch.logsumexp(logits / self.temperature, dim=-1)
            self.vals[rows], self.idx[rows], self.lse[rows] = v.half().numpy(), i.int().numpy(), lse.numpy()
            self.vals.flush(), self.idx.flush(), self.lse.flush()
            self.done = rows.stop
            write_text_atomic(self.folder / "done", str(self.done))
            on_batch(rows.stop - rows.start)


# ---------------------------------------------------------------------------------------------------------------
# Sequence-level KD: extend the data with the teacher's own continuations of data prompts
# ---------------------------------------------------------------------------------------------------------------

def sample_teacher(teacher, teacher_tok, texts: list[str], n: int, new_tokens: int, out: Path, seed: int,
                   batch: int, on_batch: Callable[[int], None]) -> Path:
    """Append `n` sampled continuations (one paragraph per line) to `out`; resumes from the lines already there."""
    lines = [ln for t in texts for ln in t.splitlines() if len(ln.split()) >= 8]
    if not lines:
        raise EdgewiseError("--teacher-samples needs data lines of 8+ words to use as prompts")
    rng = random.Random(seed)
    prompts = [" ".join(rng.choice(lines).split()[:5]) for _ in range(n)]
    have = len(out.read_text().splitlines()) if out.exists() else 0
    if teacher_tok.pad_token is None:
        teacher_tok.pad_token = teacher_tok.eos_token  # batched prompts need padding; masked out anyway
    pad = teacher_tok.pad_token_id
    teacher_tok.padding_side = "left"  # generation continues from the right end of every row
    torch.manual_seed(seed + have)
    for start in range(have, n, batch):
        chunk = prompts[start:start + batch]
        enc = teacher_tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            gen = teacher.generate(**enc, do_sample=True, temperature=0.8, top_p=0.95, max_new_tokens=new_tokens,
                                   pad_token_id=pad)
        texts_out = teacher_tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        with open(out, "a", encoding="utf-8") as f:
            for p, c in zip(chunk, texts_out):
                f.write(" ".join((p + c).split()) + "\n")
            f.flush()
            os.fsync(f.fileno())
        on_batch(len(chunk))
    return out
