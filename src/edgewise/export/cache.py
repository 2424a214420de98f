"""Content-addressed build cache under $EDGEWISE_HOME/artifacts: rebuild only when the source, the options or the
builders' code change (edgewise.home.code_version)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from edgewise.home import artifact_key, code_version, content_hash, edgewise_home
from edgewise.staging import commit_dir, discard, new_staging_dir


def _final(kind: str, source_path: Path, options: dict, code: str) -> Path:
    key = artifact_key(content_hash(source_path), {"kind": kind, **options}, code)
    return edgewise_home() / "artifacts" / f"{kind}-{key}"


def cached_build(kind: str, source_path: Path, options: dict, build: Callable[[Path], None], *,
                 code: str | None = None) -> Path:
    """Return the cached artifact folder for (source content, options, code version), building it into a staging
    folder if absent. `code` defaults to `code_version()`, the hash of the installed builders.

    The build writes into a fresh folder that is renamed into place only when complete (edgewise.staging), so an
    interrupted build never leaves a half-written artifact that a later run would trust.
    """
    code = code or code_version()
    final = _final(kind, source_path, options, code)
    if (final / ".complete").is_file():
        return final
    tmp = new_staging_dir(final)
    try:
        t0 = time.perf_counter()
        build(tmp)
        meta = {"kind": kind, "source": str(source_path), "options": options, "code": code,
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


def is_cached(kind: str, source_path: Path, options: dict, *, code: str | None = None) -> bool:
    return (_final(kind, source_path, options, code or code_version()) / ".complete").is_file()
