"""What a distillation run is: `DistillConfig`, validated on construction, and the TOML recipe that fills it."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edgewise.data.corpora import CORPUS_MIXES, training_texts
from edgewise.data.eval_texts import keyboard_eval_text
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
        kw["eval_text"] = str(keyboard_eval_text(kw["eval_text"].split(":", 1)[1]))
    known = {f.name for f in fields(DistillConfig)}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise EdgewiseError(f"{path}: unknown [distill] keys {', '.join(unknown)}: see docs/distill.md")
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return DistillConfig(**kw)


def expand_data(items: list[str]) -> list[str]:
    """Data entries are file paths, `corpus:NAME` for a packaged corpus, or `corpus-mix:NAME` for a named mix of
    them (edgewise.data.corpora.CORPUS_MIXES), expanded in the mix's order."""
    out: list[str] = []
    for item in items:
        if item.startswith("corpus:"):
            out += [str(p) for p in training_texts((item.split(":", 1)[1],))]
        elif item.startswith("corpus-mix:"):
            name = item.split(":", 1)[1]
            if name not in CORPUS_MIXES:
                raise EdgewiseError(f"unknown corpus mix {name!r} in the recipe's data: choose one of "
                                    f"{', '.join(sorted(CORPUS_MIXES))}, or list corpus:NAME entries")
            out += [str(p) for p in training_texts(CORPUS_MIXES[name])]
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
