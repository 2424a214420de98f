"""A model's recommended sampling: what a request that names no temperature (the openai client sends none) gets.

Read once per model, first found wins:
1. the bundle manifest's "sampling" table (chosen when the bundle was built),
2. generation_config.json beside the weights (`do_sample: false` means greedy),
3. GGUF metadata `general.sampling.temp` / `.top_p` / `.top_k`,
4. the packaged alias's model card (CARD_SAMPLING below), for files that carry none of these.
Nothing found: the OpenAI defaults, temperature 1 and top_p 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgewise.models.source import ModelSource

# Packaged models whose files say nothing, with their card's settings.
CARD_SAMPLING = {
    # SmolLM2-135M-Instruct's model card (HuggingFaceTB/SmolLM2-135M-Instruct, "How to use") generates with
    # temperature=0.2, top_p=0.9, do_sample=True. The packaged Q4_1 GGUF carries no general.sampling.* key (read
    # with gguf-py) and the package ships no generation_config.json, so the card is the source.
    "smollm2-135m": {"temperature": 0.2, "top_p": 0.9},
}
OPENAI_DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "top_k": 0}
_GGUF_KEYS = {"temperature": "general.sampling.temp", "top_p": "general.sampling.top_p",
              "top_k": "general.sampling.top_k"}


@dataclass(frozen=True)
class SamplingDefaults:
    """Per-field defaults for a request; `source` says where they come from (shown by GET /v1/models)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    source: str = "OpenAI defaults (the model names none)"

    def as_dict(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k, "source": self.source}


def _clean(values: dict) -> dict:
    """Keep only settings a request could itself send (the server's ranges), as numbers."""
    out = {}
    t, p, k = values.get("temperature"), values.get("top_p"), values.get("top_k")
    if isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 <= t <= 2.0:
        out["temperature"] = float(t)
    if isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 < p <= 1.0:
        out["top_p"] = float(p)
    if isinstance(k, (int, float)) and not isinstance(k, bool) and float(k).is_integer() and 0 <= k <= 100_000:
        out["top_k"] = int(k)
    return out


def _generation_config(folder: Path) -> dict:
    f = folder / "generation_config.json"
    if not f.is_file():
        return {}
    try:
        cfg = json.loads(f.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(cfg, dict):
        return {}
    if cfg.get("do_sample") is False:
        return {"temperature": 0.0}  # transformers decodes greedily, whatever temperature says
    return _clean(cfg)


def _gguf_metadata(path: Path) -> dict:
    # gguf-py is imported here only: the server reads one file once at start, other commands never.
    from gguf import GGUFReader

    try:
        fields = GGUFReader(str(path)).fields
    except (OSError, ValueError):
        return {}
    return _clean({name: fields[key].contents() for name, key in _GGUF_KEYS.items() if key in fields})


def _gguf_file(source: ModelSource) -> Path | None:
    p = Path(source.path)
    if p.suffix.lower() == ".gguf":
        return p
    name = source.extra.get("gguf_file")
    if name:
        q = p / name if p.is_dir() else p.parent / name
        return q if q.is_file() else None
    return None


def recommended_sampling(source: ModelSource) -> SamplingDefaults:
    """The model's own sampling settings (see the module doc), each missing field filled with OpenAI's default."""
    path = Path(source.path)
    folder = path if path.is_dir() else path.parent
    manifest = source.extra.get("manifest") or {}
    gguf = _gguf_file(source)
    candidates = (
        (lambda: _clean(manifest.get("sampling") or {}), "bundle manifest"),
        (lambda: _generation_config(folder), f"{folder / 'generation_config.json'}"),
        (lambda: _gguf_metadata(gguf) if gguf is not None else {}, f"GGUF metadata of {gguf}"),
        (lambda: CARD_SAMPLING.get(source.ref) or CARD_SAMPLING.get(source.name) or {},
         f"model card of {source.ref}"),
    )
    for read, where in candidates:
        found = read()
        if found:
            return SamplingDefaults(**{**OPENAI_DEFAULTS, **found}, source=where)
    return SamplingDefaults()
