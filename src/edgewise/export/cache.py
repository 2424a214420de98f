"""Content-addressed build cache under $EDGEWISE_HOME/artifacts: rebuild only when the source or options change."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from edgewise.home import artifact_key, content_hash, edgewise_home


def cached_build(kind: str, source_path: Path, options: dict, build: Callable[[Path], None]) -> Path:
    """Return the cached artifact folder for (source content, options), building it into a temp dir if absent.

    The build writes into a fresh folder that is renamed into place only when complete, so an interrupted
    build never leaves a half-written artifact that a later run would trust.
    """
    key = artifact_key(content_hash(source_path), {"kind": kind, **options})
    root = edgewise_home() / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{kind}-{key}"
    if (final / ".complete").is_file():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{kind}-{key}.", dir=root))
    try:
        t0 = time.perf_counter()
        build(tmp)
        meta = {"kind": kind, "source": str(source_path), "options": options,
                "build_seconds": round(time.perf_counter() - t0, 2)}
        (tmp / ".complete").write_text(json.dumps(meta, indent=2))
        if final.exists():  # a concurrent build won the race, or an incomplete leftover
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def is_cached(kind: str, source_path: Path, options: dict) -> bool:
    key = artifact_key(content_hash(source_path), {"kind": kind, **options})
    return (edgewise_home() / "artifacts" / f"{kind}-{key}" / ".complete").is_file()
