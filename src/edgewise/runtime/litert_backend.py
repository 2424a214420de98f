"""The `litert` backend: loads and runs a `.tflite` flatbuffer through LiteRT (optional extra).

A .tflite file is an arbitrary graph (vision models, mostly), not a text model, so this backend does
not produce a LoadedModel. It gives a LiteRTModel, a type of its own: named input/output specs and a
generic `run({name: array}) -> {name: array}`, and no tokenizer, decoder or context. Text generation and
embedding stay with ort/torch; the runtime refuses a LiteRTModel there with a one-line error. The exception:
a causal LM exported by `edgewise export-litert` (litert_lm.json beside it) loads as a normal LoadedModel
with a KV-cached decoder (litert_lm.py).

Supported: models whose ops are LiteRT builtins (float32, float16-weight and int8/uint8 quantized
models all run through the CPU kernels, with XNNPACK), a single subgraph called by tensor name, and
inputs with dynamic (-1) dimensions, which are resized on the fly. Not supported: MediaPipe custom
ops (e.g. Landmarks2TransformMatrix), GPU/NPU delegates, and signature-only multi-entry models.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgewise.errors import EdgewiseError, UnsupportedModelError
from edgewise.models.source import TFLITE, ModelSource
from edgewise.runtime.backend import BACKENDS, LoadedModel, ModelFiles
from edgewise.runtime.litert_interpreter import INSTALL_HINT, import_interpreter, open_interpreter  # noqa: F401
from edgewise.runtime.litert_lm import LMMeta, load_litert_lm

AS_SHIPPED = ("native", "fp32")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    index: int
    shape: tuple[int, ...]  # current shape
    signature: tuple[int, ...]  # -1 marks a dimension the caller may choose
    dtype: np.dtype
    scale: float = 0.0  # per-tensor quantization (0.0 = not quantized)
    zero_point: int = 0

    @classmethod
    def from_detail(cls, d: dict) -> "TensorSpec":
        scale, zp = d.get("quantization", (0.0, 0))
        sig = d.get("shape_signature", d["shape"])
        return cls(d["name"], int(d["index"]), tuple(int(x) for x in d["shape"]),
                   tuple(int(x) for x in sig), np.dtype(d["dtype"]), float(scale), int(zp))

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.signature) and all(s in (-1, x) for s, x in zip(self.signature, shape))


@dataclass
class LiteRTModel(ModelFiles):
    """A loaded .tflite graph: what it shares with a LoadedModel (name, source, backend, precision, files,
    size_bytes, load_seconds, lock) and `run`; nothing of a text model."""

    source: ModelSource
    interpreter: object
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    precision: str
    files: list[str]
    load_seconds: float = 0.0
    backend: str = "litert"
    # One interpreter holds one set of tensors: one run at a time.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def input_details(self) -> list[dict]:
        return [_describe(s) for s in self.inputs]

    def output_details(self) -> list[dict]:
        return [_describe(s) for s in self.outputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph once. Keys are input names; returns a fresh array per output name."""
        want = {s.name: s for s in self.inputs}
        if set(inputs) != set(want):
            missing, extra = sorted(set(want) - set(inputs)), sorted(set(inputs) - set(want))
            raise EdgewiseError(f"{self.name}: inputs must be exactly {sorted(want)} "
                                f"(missing {missing}, unexpected {extra})")
        with self.lock:
            it = self.interpreter
            arrays = {}
            for name, spec in want.items():
                x = np.asarray(inputs[name])
                if not np.can_cast(x.dtype, spec.dtype, "same_kind"):
                    raise EdgewiseError(f"{self.name}: input {name!r} needs {spec.dtype}, got {x.dtype}")
                if not spec.accepts(x.shape):
                    raise EdgewiseError(f"{self.name}: input {name!r} needs shape {list(spec.signature)} "
                                        f"(-1 = any), got {list(x.shape)}")
                arrays[name] = np.ascontiguousarray(x, dtype=spec.dtype)
            # Resize only when a dynamic dimension changed: allocate_tensors is not free.
            resized = False
            for d in it.get_input_details():
                shape = arrays[d["name"]].shape
                if tuple(d["shape"]) != shape:
                    it.resize_tensor_input(d["index"], list(shape), strict=True)
                    resized = True
            if resized:
                it.allocate_tensors()
            for name, x in arrays.items():
                it.set_tensor(want[name].index, x)
            it.invoke()
            return {d["name"]: np.array(it.get_tensor(d["index"])) for d in it.get_output_details()}


def _describe(s: TensorSpec) -> dict:
    d = {"name": s.name, "shape": list(s.shape), "shape_signature": list(s.signature), "dtype": s.dtype.name}
    if s.scale:
        d["quantization"] = {"scale": s.scale, "zero_point": s.zero_point}
    return d


def _weight_precision(interpreter) -> str:
    """The dtype holding most tensor elements: float32, float16 or int8 for the usual graphs."""
    count: Counter[str] = Counter()
    for d in interpreter.get_tensor_details():
        count[np.dtype(d["dtype"]).name] += int(np.prod(d["shape"])) if len(d["shape"]) else 1
    return count.most_common(1)[0][0] if count else "unknown"


def tflite_path(source: ModelSource) -> Path:
    p = Path(source.path)
    if p.is_dir():
        found = sorted(p.glob("*.tflite"))
        if len(found) != 1:
            raise UnsupportedModelError(f"{source.ref}: expected one .tflite file in the folder, found {len(found)}")
        p = found[0]
    if p.suffix.lower() != ".tflite":
        raise UnsupportedModelError(f"{source.ref}: the litert backend runs .tflite files only")
    return p


@BACKENDS.register("litert")
def load_litert(source: ModelSource, precision: str, threads: int | None) -> LiteRTModel | LoadedModel:
    """A causal LM exported by edgewise (litert_lm.json beside the file) loads as a LoadedModel with a decoder;
    any other .tflite as a generic LiteRTModel graph."""
    if source.task != TFLITE:
        raise UnsupportedModelError(f"{source.ref}: the litert backend runs .tflite models; use --backend ort")
    if threads is not None and threads < 1:
        raise EdgewiseError(f"threads must be at least 1, got {threads}")
    path = tflite_path(source)
    meta = LMMeta.read(path)
    if meta is not None:
        return load_litert_lm(source, path, meta, precision, threads)
    if precision not in AS_SHIPPED:
        raise EdgewiseError(f"--precision {precision} with --backend litert: a .tflite runs as shipped; "
                            "drop --precision")
    t0 = time.perf_counter()
    it = open_interpreter(path, threads)
    return LiteRTModel(
        source=source, interpreter=it,
        inputs=[TensorSpec.from_detail(d) for d in it.get_input_details()],
        outputs=[TensorSpec.from_detail(d) for d in it.get_output_details()],
        precision=_weight_precision(it), files=[str(path)], load_seconds=time.perf_counter() - t0,
    )
