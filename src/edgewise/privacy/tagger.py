"""On-device tagger for person names and street addresses: a small BERT-style token classifier in int8 ONNX.

The model folder ships in the package (edgewise/data/pii-tagger, built by `edgewise privacy train`):
    model.onnx       the encoder, exported and int8-quantized by edgewise.export (last_hidden_state out)
    head.npz         the token-classification head (W: (H, K), b: (K,)), applied here in numpy
    tokenizer.json   MiniLM's uncased WordPiece tokenizer
    tagger.json      labels, window, and the decision threshold

The tokenizer is uncased, so case goes in as a feature: token_type_ids carry each piece's case
(lower, Capitalised, UPPER) and whether it starts a line, which BERT's whitespace-blind tokens lose.

    tagger = PiiTagger.load()              # the packaged tagger, or EDGEWISE_PII_MODEL
    tagger("Send it to Ana Lima, 12 Rua Augusta")   # -> [Entity("person", ...), Entity("street_address", ...)]
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.numerics import log_softmax
from edgewise.privacy.base import DETECTORS, Entity, register_detector
from edgewise.privacy.tagger_input import N_TYPES, Encoded, WordTable, encode, windows

# onnxruntime and tokenizers are imported inside the functions that use them: edgewise.privacy.pii imports this module
# to register the tagger, which needs them only when a tagger model folder is found (register_default).
KINDS = ("person", "street_address")
# A tagger folder, or "off" for patterns only. Only "off" turns the tagger off: an empty value means unset, and any
# other value is a folder, so a typo fails closed (`require`) instead of dropping name and address detection.
ENV = "EDGEWISE_PII_MODEL"
BUILD = "`edgewise privacy train --recipe recipes/pii-tagger.toml`"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaggerConfig:
    """labels: BIO tags, index = head output. window/overlap: tokens per model call and context kept on
    each side of a window cut. threshold: a token is PII when 1 - P(O) reaches it."""

    labels: tuple[str, ...]
    window: int = 64
    overlap: int = 8
    threshold: float = 0.5
    cls_id: int = 101
    sep_id: int = 102

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        if not self.labels or self.labels[0] != "O":
            raise EdgewiseError("tagger.json labels must start with 'O'")
        if not 8 <= self.window <= 510 or not 0 <= 2 * self.overlap < self.window:
            raise EdgewiseError(f"tagger window {self.window} / overlap {self.overlap} out of range")
        if not 0 < self.threshold < 1:
            raise EdgewiseError(f"tagger threshold must be in (0, 1), got {self.threshold}")


def fuse_attention(model: Path, heads: int) -> bytes | None:
    """The encoder with each layer's attention as one com.microsoft.MultiHeadAttention node, or None when the graph
    is not the shape edgewise.export writes. The export spells attention out (head reshapes, transposes, scaled
    QK^T, mask arithmetic, softmax, a NaN guard: 173 of its 319 non-constant nodes) and onnxruntime does not fuse it;
    one kernel instead makes the 1 KB chat's PII pass ~7% cheaper (docs/routing.md, "Latency and size"). The int8
    projections around it are untouched."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(model))
    g = m.graph
    made = {o: n for n in g.node for o in n.output}
    qkv: dict[str, dict[str, str]] = {}  # "/m/encoder/layer.0/attention/" -> {"query": tensor, ...}
    ctx: dict[str, str] = {}  # attention output, the heads merged back to (B, L, H) -> layer
    for n in g.node:
        hit = re.fullmatch(r"(.*/attention/)self/(query|key|value)/Add", n.name)
        if hit and n.op_type == "Add":
            qkv.setdefault(hit[1], {})[hit[2]] = n.output[0]
        hit = re.fullmatch(r"(.*/attention/)output/dense/MatMul_quant", n.name)
        if hit and n.op_type == "MatMulInteger" and n.input[0] in made \
                and made[n.input[0]].op_type == "DynamicQuantizeLinear":
            ctx[made[n.input[0]].input[0]] = hit[1]
    if not ctx or set(ctx.values()) != set(qkv) or any(len(v) != 3 for v in qkv.values()):
        return None
    # Each attention output's producer gives way to one node, in its place, so the list stays in graph order.
    nodes = [helper.make_node("Cast", ["attention_mask"], ["attention_mask_int32"], to=TensorProto.INT32)]
    for n in g.node:
        out = next((o for o in n.output if o in ctx), None)
        if out is None:
            nodes.append(n)
            continue
        v = qkv[ctx[out]]
        inputs = [v["query"], v["key"], v["value"], "", "attention_mask_int32"]  # "": no packed bias
        nodes.append(helper.make_node("MultiHeadAttention", inputs, [out], name=f"{ctx[out]}fused",
                                      domain="com.microsoft", num_heads=int(heads)))
    live, kept = {o.name for o in g.output}, []
    for n in reversed(nodes):  # drop what fed only the old attention
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(n.input)
    del g.node[:]
    g.node.extend(reversed(kept))
    if all(o.domain != "com.microsoft" for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m.SerializeToString()


def _same_hidden(a, b) -> bool:
    """Both sessions give the same hidden states (to fp32 rounding) on a padded two-window probe."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (2, 24)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 15:] = 0
    feed = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": rng.integers(0, N_TYPES, ids.shape)}
    (x,), (y,) = a.run(None, feed), b.run(None, feed)
    keep = mask.astype(bool)
    return x.shape == y.shape and bool(np.abs(x - y)[keep].max() <= 1e-4 * max(1.0, float(np.abs(x).max())))


class PiiTagger:
    def __init__(self, folder: Path, threads: int = 1, fuse: bool = True, skip_layernorm_fusion: bool = False):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta_path = folder / "tagger.json"
        if not meta_path.is_file():
            raise EdgewiseError(f"{folder} is not a PII tagger folder (no tagger.json): build one with {BUILD}")
        meta = json.loads(meta_path.read_text())
        self.config = TaggerConfig(**{k: meta[k] for k in ("labels", "window", "overlap", "threshold") if k in meta})
        self.folder = folder
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.words = WordTable.of(self.tokenizer)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1

        def session(model):
            # onnxruntime's SkipLayerNormalization kernel, which its optimizer puts in place of each layer's
            # residual Add + LayerNormalization, costs several times what those two cost apart on this small model,
            # so they run as exported (BENCHMARKS.md §3, issue 23 item 5; the detections are the same).
            # skip_layernorm_fusion=True lets onnxruntime fuse them, to measure this choice (router_overhead.py).
            return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"],
                                        disabled_optimizers=[] if skip_layernorm_fusion else ["SkipLayerNormFusion"])

        self.session = session(str(folder / "model.onnx"))
        self.fused = False  # True when each layer's attention runs as one kernel (fuse_attention)
        heads = meta.get("recipe", {}).get("heads")
        if fuse and heads:
            try:
                fused = fuse_attention(folder / "model.onnx", heads)
                fast = session(fused) if fused else None
                # Kept only where it computes what the exported graph does, to fp32 rounding; else the export runs.
                self.fused = fast is not None and _same_hidden(self.session, fast)
            except Exception as e:  # noqa: BLE001 - an onnxruntime without the kernel, a graph it cannot load
                log.info("PII tagger: attention not fused (%s: %s); running the exported graph", type(e).__name__, e)
            if self.fused:
                self.session = fast
        head = np.load(folder / "head.npz")
        self.W, self.b = head["W"].astype(np.float32), head["b"].astype(np.float32)
        # label index -> (kind, is_begin); "O" -> (None, False)
        self._tags = [(None, False) if t == "O" else (t[2:], t[0] == "B") for t in self.config.labels]

    @classmethod
    def load(cls, folder: str | Path | None = None, threads: int = 1) -> "PiiTagger":
        found = Path(folder) if folder is not None else default_model_dir()
        if found is None:
            raise EdgewiseError(f"{ENV}=off turns the PII tagger off: unset it to use the packaged tagger")
        if not found.is_dir():
            raise EdgewiseError(f"PII tagger folder {found} not found: reinstall edgewise, or point {ENV} at a folder "
                                f"built by {BUILD}")
        return cls(found, threads)

    def probs(self, text: str) -> tuple[np.ndarray, Encoded]:
        """Per-token label probabilities (T, K) for the whole text, windowed."""
        enc = encode(self.tokenizer, text, self.words)
        n, c = len(enc.ids), self.config
        K = len(c.labels)
        out = np.zeros((n, K), dtype=np.float32)
        if n == 0:
            return out, enc
        spans = windows(n, c.window, c.overlap)
        L = max(e - s for s, e, _, _ in spans) + 2
        ids = np.zeros((len(spans), L), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for i, (s, e, _, _) in enumerate(spans):
            ids[i, 0], ids[i, 1:e - s + 1], ids[i, e - s + 1] = c.cls_id, enc.ids[s:e], c.sep_id
            types[i, 1:e - s + 1] = enc.types[s:e]
            mask[i, :e - s + 2] = 1
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        p = np.exp(log_softmax(hidden @ self.W + self.b))  # (B, L, K) label probabilities
        for i, (s, e, kf, kt) in enumerate(spans):
            out[kf:kt] = p[i, 1 + kf - s:1 + kt - s]
        return out, enc

    def __call__(self, text: str) -> list[Entity]:
        if not text.strip():
            return []
        p, enc = self.probs(text)
        return decode(text, p, enc.offsets, self._tags, self.config.threshold)


def decode(text: str, p: np.ndarray, offsets: list[tuple[int, int]], tags: list[tuple[str | None, bool]],
           threshold: float) -> list[Entity]:
    """Token probabilities -> character spans: consecutive tokens of one kind join (a B tag starts a new
    span), and a span grows to whole words, since half a name still identifies someone."""
    ents: list[list] = []  # [kind, start, end]
    prev_kind = None
    for t, (a, b) in enumerate(offsets):
        row = p[t]
        if 1.0 - row[0] < threshold:
            prev_kind = None
            continue
        j = int(np.argmax(row[1:])) + 1
        kind, begin = tags[j]
        if kind == prev_kind and not begin and ents:
            ents[-1][2] = b
        else:
            ents.append([kind, a, b])
        prev_kind = kind
    spans: list[list] = []
    for kind, a, b in ents:
        while a > 0 and text[a - 1].isalnum():
            a -= 1
        while b < len(text) and text[b].isalnum():
            b += 1
        while b > a and (text[b - 1] in ",;:(-/" or text[b - 1].isspace()):
            b -= 1
        if b - a < 2 or not any(ch.isalnum() for ch in text[a:b]):
            continue
        # One name or address split by the tagger joins up again: overlapping pieces (grown to the same
        # word), name parts split by a space, address parts split by a comma or dash.
        last = spans[-1] if spans else None
        if last and last[0] == kind and (a < last[2] or _JOIN.get(kind, _SPACE).fullmatch(text[last[2]:a])):
            spans[-1][2] = max(spans[-1][2], b)
        else:
            spans.append([kind, a, b])
    out = []
    for kind, a, b in spans:
        words = re.findall(r"\w+", text[a:b])
        if kind == "person" and all(w.lower() in FUNCTION_WORDS for w in words):
            continue
        # A lone short upper-case word beside PII is an acronym ("IBAN", "SSN", "HR"), not a name.
        if kind == "person" and len(words) == 1 and words[0].isupper() and len(words[0]) <= 4:
            continue
        # An address without a number (house, flat or postcode) points at no door: "Orchard Road", "Tuesday".
        if kind == "street_address" and not (any(c.isdigit() for c in text[a:b])
                                             and any(len(w) > 1 and not w.isdigit() for w in words)):
            continue
        out.append(Entity(kind, a, b, text[a:b]))
    return out


_SPACE = re.compile(r" ")
_JOIN = {"person": re.compile(r" "), "street_address": re.compile(r"[\s,.\-/]{1,3}")}


# Words that are never a name on their own: a span made only of these is dropped.
FUNCTION_WORDS = frozenset("""a an the and or but if of to in on at by for from with about as into than then so
this that these those it its i me my mine we us our you your he him his she her they them their who whom whose
what which when where why how hi hello hey dear thanks thank regards cheers best yes no not ok okay please mr mrs
ms dr sir madam is are was were be been am do does did have has had can could will would shall should may might
must""".split())


# --- registration as router detectors --------------------------------------------------------

@lru_cache(maxsize=1)
def packaged_model_dir() -> Path:
    """The tagger shipped with edgewise (package data)."""
    return Path(str(resources.files("edgewise") / "data" / "pii-tagger"))


def default_model_dir() -> Path | None:
    """The tagger folder in use: EDGEWISE_PII_MODEL, else the packaged one; None only for EDGEWISE_PII_MODEL=off.
    The folder may be missing or broken: `require` says so."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() == "off":
        return None
    return Path(env).expanduser() if env else packaged_model_dir()


_lock = threading.Lock()
_shared: dict[str, PiiTagger] = {}


def shared_tagger(folder: Path | None = None) -> PiiTagger | None:
    """The tagger in `folder` (default: `default_model_dir()`), one session per process and folder, built on first
    use so that importing the router stays cheap; None when EDGEWISE_PII_MODEL=off."""
    folder = folder or default_model_dir()
    if folder is None:
        return None
    with _lock:
        if str(folder) not in _shared:
            _shared[str(folder)] = PiiTagger.load(folder, threads=int(os.environ.get("EDGEWISE_PII_THREADS", "1")))
        return _shared[str(folder)]


def require(why: str) -> PiiTagger | None:
    """Fail closed: load the tagger now and register its detectors, or raise one line that names its folder and
    the fix, so a server whose privacy relies on it does not start without it. None when EDGEWISE_PII_MODEL=off,
    the user's explicit choice of patterns only."""
    folder = default_model_dir()
    if folder is None:
        return None
    try:
        tagger = shared_tagger(folder)
    except Exception as e:  # noqa: BLE001 - a missing folder or file, or a model onnxruntime cannot read
        problem = ("not found" if not folder.is_dir() else "no tagger.json there"
                   if not (folder / "tagger.json").is_file() else
                   f"{type(e).__name__}: " + " ".join(str(e).split())[:160])
        raise EdgewiseError(f"{why} needs the PII tagger at {folder} ({problem}): reinstall edgewise, point {ENV} "
                            f"at a tagger folder, or set {ENV}=off to accept patterns only") from None
    register_default()
    return tagger


@lru_cache(maxsize=64)
def _tag_cached(text: str, folder: Path | None) -> tuple[Entity, ...]:
    # The person and street_address detectors ask about the same text one after the other. Keyed by the folder
    # too, so that a changed EDGEWISE_PII_MODEL is never answered from the old tagger's cache.
    tagger = None if folder is None else shared_tagger(folder)
    return () if tagger is None else tuple(tagger(text))


def _detector(kind: str):
    def detect_kind(text: str):
        return [e for e in _tag_cached(text, default_model_dir()) if e.kind == kind]

    detect_kind.__name__ = f"tagger_{kind}"
    return detect_kind


def register_default() -> bool:
    """Register `person` and `street_address` when a model folder is found and its runtime is installed
    (once: a second call registers nothing new)."""
    folder = default_model_dir()
    if folder is None or not (folder / "tagger.json").is_file():
        return False
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    kinds = json.loads((folder / "tagger.json").read_text()).get("kinds", list(KINDS))
    for kind in kinds:
        if kind not in DETECTORS:
            register_detector(kind, fuzzy=True)(_detector(kind))
    return True
