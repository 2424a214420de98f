"""Where Edgewise keeps built artifacts, and how it keys them by content."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


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


def artifact_key(source_hash: str, options: dict) -> str:
    """Cache key of a built artifact: the source's content hash plus the build options."""
    blob = json.dumps({"source": source_hash, "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    _file_digest(Path(path), h)
    return h.hexdigest()
