"""Cheap integrity checks that turn a truncated or corrupt file into a one-line, actionable error.

Engines fail on such files deep inside C++ with messages like "protobuf parsing failed"; we
check before they get the chance.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from edgewise.errors import CorruptModelError

_REFETCH = "re-download or re-export it"
# gguf and onnx are imported inside the checks that read those formats: importing them costs up to a second
# (onnx), and a check of one format needs only that format's package.


def check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CorruptModelError(f"{path}: truncated safetensors file (no header): {_REFETCH}")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise CorruptModelError(f"{path}: truncated safetensors header: {_REFETCH}")
        try:
            meta = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CorruptModelError(f"{path}: corrupt safetensors header: {_REFETCH}") from None
    end = max((v["data_offsets"][1] for k, v in meta.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise CorruptModelError(
            f"{path}: truncated safetensors file ({size} bytes, needs {8 + n + end}): {_REFETCH}"
        )


def check_gguf(path: Path) -> None:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise CorruptModelError(f"{path}: not a GGUF file (bad magic {magic!r}): {_REFETCH}")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as e:  # the reader raises ValueError/IndexError/struct errors on truncation
        raise CorruptModelError(f"{path}: corrupt or truncated GGUF ({type(e).__name__}): {_REFETCH}") from None
    size = path.stat().st_size
    for t in reader.tensors:
        if t.data_offset + t.n_bytes > size:
            raise CorruptModelError(f"{path}: truncated GGUF (tensor {t.name} past end of file): {_REFETCH}")


def check_onnx(path: Path) -> None:
    import onnx

    try:
        # Structure only: external weight files are checked by size below, not read.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise CorruptModelError(f"{path}: corrupt or truncated ONNX file ({type(e).__name__}): {_REFETCH}") from None
    if not model.graph.node:
        raise CorruptModelError(f"{path}: ONNX file has an empty graph: {_REFETCH}")
    for init in model.graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in init.external_data}
        data = path.parent / info.get("location", "")
        need = int(info.get("offset", 0)) + int(info.get("length", 0))
        if not data.is_file() or data.stat().st_size < need:
            raise CorruptModelError(f"{data}: external ONNX weights missing or truncated: {_REFETCH}")


def check_tflite(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    # A flatbuffer whose file identifier (bytes 4-8) is "TFL3".
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise CorruptModelError(f"{path}: not a TFLite flatbuffer: {_REFETCH}")
