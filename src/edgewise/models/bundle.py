"""Edgewise bundles: a folder with the chosen model's files and a manifest.json that pins each by sha256.

Layout:
    bundle/
      manifest.json   {"format": "edgewise-bundle", "version": 1, "model": {"kind", "task", "path", "arch"},
                       "files": {"model/...": "<sha256>"}, "provenance": {...}, "options": {...}, "metrics": {...}}
      model/          the engine files (an onnxruntime-genai folder, an ONNX encoder folder, or an HF folder)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.home import sha256_file
from edgewise.models.files import resolve_path
from edgewise.models.manifest import FORMAT, VERSION
from edgewise.staging import staged_dir


def write_bundle(model_dir: Path, out: Path, *, name: str, provenance: dict, options: dict, metrics: dict,
                 force: bool = False) -> Path:
    """Copy model_dir into a new bundle at `out`, atomically: a failure leaves no half-written folder."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise EdgewiseError(f"{out} exists and is not empty: choose another --out or pass --force")
    src = resolve_path(model_dir, str(model_dir))
    with staged_dir(out) as tmp:  # replaces `out` only once the copy and the manifest are whole
        shutil.copytree(model_dir, tmp / "model")
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted((tmp / "model").rglob("*")) if p.is_file()}
        manifest = {"format": FORMAT, "version": VERSION, "name": name,
                    "model": {"kind": src.kind, "task": src.task, "arch": src.arch, "path": "model"},
                    "files": files, "provenance": provenance, "options": options, "metrics": metrics}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return out
