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

from edgewise.errors import CorruptModelError, EdgewiseError
from edgewise.home import sha256_file
from edgewise.models.source import ModelSource
from edgewise.staging import staged_dir

FORMAT = "edgewise-bundle"
VERSION = 1


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptModelError(f"{path}/manifest.json is not valid JSON: rebuild the bundle with edgewise optimize") from None
    if manifest.get("format") != FORMAT:
        raise CorruptModelError(f"{path}/manifest.json is not an Edgewise bundle manifest (format != {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise CorruptModelError(f"{path}: bundle version {manifest.get('version')!r} is not supported "
                                f"(this Edgewise reads version {VERSION}): rebuild it")
    return manifest


def verify_bundle(path: Path, manifest: dict) -> None:
    """Refuse a bundle whose files do not match their recorded hashes (tampered or truncated)."""
    files = manifest.get("files") or {}
    if not files:
        raise CorruptModelError(f"{path}: bundle manifest lists no files: rebuild it")
    for rel, digest in files.items():
        f = (path / rel).resolve()
        if path.resolve() not in f.parents:
            raise CorruptModelError(f"{path}: manifest entry {rel!r} points outside the bundle: refusing it")
        if not f.is_file():
            raise CorruptModelError(f"{path}: bundle file {rel} is missing: rebuild or re-copy the bundle")
        if sha256_file(f) != digest:
            raise CorruptModelError(f"{path}: bundle file {rel} does not match its sha256 in manifest.json "
                                    "(tampered or corrupt): rebuild or re-copy the bundle")


def resolve_bundle(path: Path, ref: str) -> ModelSource:
    manifest = read_manifest(path)
    verify_bundle(path, manifest)
    model = manifest.get("model") or {}
    inner = path / model.get("path", "model")
    src = resolve_path_for_bundle(inner, ref)
    return ModelSource(ref=ref, kind=src.kind, path=src.path, task=src.task,
                       name=manifest.get("name", path.name), arch=src.arch,
                       extra={**src.extra, "bundle": str(path), "manifest": manifest})


def write_bundle(model_dir: Path, out: Path, *, name: str, provenance: dict, options: dict, metrics: dict,
                 force: bool = False) -> Path:
    """Copy model_dir into a new bundle at `out`, atomically: a failure leaves no half-written folder."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise EdgewiseError(f"{out} exists and is not empty: choose another --out or pass --force")
    src = resolve_path_for_bundle(model_dir)
    with staged_dir(out) as tmp:  # replaces `out` only once the copy and the manifest are whole
        shutil.copytree(model_dir, tmp / "model")
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted((tmp / "model").rglob("*")) if p.is_file()}
        manifest = {"format": FORMAT, "version": VERSION, "name": name,
                    "model": {"kind": src.kind, "task": src.task, "arch": src.arch, "path": "model"},
                    "files": files, "provenance": provenance, "options": options, "metrics": metrics}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return out


def resolve_path_for_bundle(model_dir: Path, ref: str | None = None) -> ModelSource:
    # Imported here, not at the top: a bundle holds a model folder, so resolving one recurses through
    # models.resolve_path -> models.files -> this module (see the TODO in tests/test_layers.py).
    from edgewise.models import resolve_path

    return resolve_path(model_dir, ref if ref is not None else str(model_dir))
