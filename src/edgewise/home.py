"""Where Edgewise keeps built artifacts, and how it keys them by content."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The code that writes artifact bytes. An artifact is only as right as the code that built it, so every cache key
# carries a hash of these sources: an edited quantizer rebuilds instead of passing its tests on what the old code
# wrote. Kept to the builders (paths under the edgewise package), so an edit to the server or the CLI keeps minutes
# of builds.
BUILDER_PARTS = ("export", "compress", "formats.py")
# Third-party code that writes artifact bytes too (the genai model builder, onnx, ORT's quantizers, the GGUF reader):
# its installed versions join the key, so an upgrade rebuilds as well.
BUILDER_DISTS = ("onnx", "onnxruntime", "onnxruntime-genai", "torch", "transformers", "gguf", "llama-cpp-python")


def edgewise_home() -> Path:
    home = Path(os.environ.get("EDGEWISE_HOME", Path.home() / ".cache" / "edgewise"))
    home.mkdir(parents=True, exist_ok=True)
    return home


def _file_digest(path: Path, h: "hashlib._Hash") -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


# Hashing a 500 MB file costs about a second; remember digests by (path, size, mtime) so a warm
# cache lookup stays instant while any edit to the file still changes the key.
_memo: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str:
    """sha256 over a file, or over every file of a folder (names and bytes)."""
    path = Path(path)
    st = path.stat()
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if path.is_file() and memo_key in _memo:
        return _memo[memo_key]
    h = hashlib.sha256()
    if path.is_file():
        _file_digest(path, h)
    else:
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path)).encode())
            _file_digest(p, h)
    digest = h.hexdigest()
    if path.is_file():
        _memo[memo_key] = digest
    return digest


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def code_version(root: Path | None = None, parts: tuple[str, ...] = BUILDER_PARTS,
                 dists: tuple[str, ...] = BUILDER_DISTS) -> str:
    """sha256 (20 hex digits) of the builders' .py files under `root` (default: this installed edgewise package),
    names and bytes, plus the installed versions of `dists`. Once per process: ~250 kB of source."""
    root = Path(root) if root is not None else Path(__file__).resolve().parent
    h = hashlib.sha256()
    for part in parts:
        p = root / part
        if not p.exists():
            raise FileNotFoundError(f"{p}: a builder path of code_version() is missing: update BUILDER_PARTS")
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0")  # relative: the same key wherever installed
            _file_digest(f, h)
    h.update(json.dumps({d: _dist_version(d) for d in dists}, sort_keys=True).encode())
    return h.hexdigest()[:20]


def artifact_key(source_hash: str, options: dict, code: str | None = None) -> str:
    """Cache key of a built artifact: the source's content hash, the build options and the builders' code version
    (`code`, default `code_version()`)."""
    blob = json.dumps({"source": source_hash, "options": options, "code": code or code_version()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    _file_digest(Path(path), h)
    return h.hexdigest()
