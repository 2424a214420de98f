"""Content-addressed build cache under $EDGEWISE_HOME/artifacts: rebuild only when the source or options change."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from edgewise.home import artifact_key, content_hash, edgewise_home
from edgewise.staging import commit_dir, discard, new_staging_dir


def _final(kind: str, source_path: Path, options: dict) -> Path:
    key = artifact_key(content_hash(source_path), {"kind": kind, **options})
    return edgewise_home() / "artifacts" / f"{kind}-{key}"


def cached_build(kind: str, source_path: Path, options: dict, build: Callable[[Path], None]) -> Path:
    """Return the cached artifact folder for (source content, options), building it into a staging folder if absent.

    The build writes into a fresh folder that is renamed into place only when complete (edgewise.staging), so an
    interrupted build never leaves a half-written artifact that a later run would trust.
    """
    final = _final(kind, source_path, options)
    if (final / ".complete").is_file():
        return final
    tmp = new_staging_dir(final)
    try:
        t0 = time.perf_counter()
        build(tmp)
        meta = {"kind": kind, "source": str(source_path), "options": options,
                "build_seconds": round(time.perf_counter() - t0, 2)}
        (tmp / ".complete").write_text(json.dumps(meta, indent=2))
        if (final / ".complete").is_file():
            discard(tmp)  # a concurrent build of the same key won the race: keep the folder others may be reading
        else:
            commit_dir(tmp, final)  # replaces an incomplete leftover, if any
    except BaseException:
        discard(tmp)
        raise
    return final


def is_cached(kind: str, source_path: Path, options: dict) -> bool:
    return (_final(kind, source_path, options) / ".complete").is_file()
