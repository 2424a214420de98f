"""Resolvers for local files and folders: HF folders, GGUF, ONNX, TFLite and Edgewise bundles."""

from __future__ import annotations

import json
from pathlib import Path

from edgewise.errors import CorruptModelError, EdgewiseError, ModelNotFoundError, UnsupportedModelError
from edgewise.models import checks
from edgewise.models.manifest import read_manifest, verify_bundle
from edgewise.models.kinds import SourceFormat
from edgewise.models.source import CAUSAL_LM, ENCODER, TFLITE, ModelSource

# transformers, gguf and onnx are imported inside the resolvers that read those formats: importing them costs up
# to seconds (transformers), and every model reference is resolved through this module.

# model_type values we serve as sentence encoders (mean-pooled embeddings).
ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra", "deberta-v2", "camembert",
                 "nomic_bert", "modernbert"}


def hf_task(config: dict, where: Path) -> tuple[str, str]:
    """(task, arch) from a config.json, or an UnsupportedModelError naming what we do support."""
    from transformers import CONFIG_MAPPING

    mtype = config.get("model_type")
    archs = config.get("architectures") or []
    if not mtype or mtype not in CONFIG_MAPPING:
        raise UnsupportedModelError(
            f"{where}: unsupported architecture {mtype or 'unknown'!r} (transformers does not know it): "
            "use a Llama/Qwen/Phi/Gemma-style causal LM or a BERT-style encoder"
        )
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) and mtype not in ENCODER_TYPES:
        return CAUSAL_LM, mtype
    if mtype in ENCODER_TYPES:
        return ENCODER, mtype
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if mtype in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return CAUSAL_LM, mtype
    raise UnsupportedModelError(
        f"{where}: unsupported architecture {mtype!r} ({', '.join(archs) or 'no architectures'}): "
        "Edgewise serves causal LMs and BERT-style encoders"
    )


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptModelError(f"{path}: not valid JSON ({e.msg if hasattr(e, 'msg') else e}): fix or replace the file") from None


def resolve_hf_folder(path: Path, ref: str) -> ModelSource:
    config = read_json(path / "config.json")
    task, arch = hf_task(config, path)
    weights = sorted(path.glob("*.safetensors")) + sorted(path.glob("pytorch_model*.bin"))
    if not weights:
        raise ModelNotFoundError(f"{path}: config.json but no weights (*.safetensors): copy the weights in "
                                 "or point at the complete model folder")
    for w in weights:
        if w.suffix == ".safetensors":
            checks.check_safetensors(w)
    return ModelSource(ref=ref, kind=SourceFormat.HF, path=path, task=task, name=path.name, arch=arch)


def resolve_gguf(path: Path, ref: str) -> ModelSource:
    checks.check_gguf(path)
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    field = reader.fields.get("general.architecture")
    arch = bytes(field.parts[field.data[0]]).decode() if field else None
    if arch not in {"llama", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3", "mistral", "granite"}:
        raise UnsupportedModelError(f"{path}: unsupported GGUF architecture {arch!r}: use a Llama/Qwen/Phi/Gemma GGUF")
    return ModelSource(ref=ref, kind=SourceFormat.GGUF, path=path, task=CAUSAL_LM, name=path.stem, arch=arch)


def resolve_onnx(path: Path, ref: str) -> ModelSource:
    """An .onnx file or a folder of them. Decoders need onnxruntime-genai's genai_config.json beside them."""
    folder = path if path.is_dir() else path.parent
    if (folder / "genai_config.json").is_file():
        cfg = read_json(folder / "genai_config.json")
        model_file = folder / cfg.get("model", {}).get("decoder", {}).get("filename", "model.onnx")
        if not model_file.is_file():
            raise ModelNotFoundError(f"{model_file}: named by genai_config.json but missing: re-export the model")
        checks.check_onnx(model_file)
        return ModelSource(ref=ref, kind=SourceFormat.GENAI, path=folder, task=CAUSAL_LM, name=folder.name,
                           arch=cfg.get("model", {}).get("type"))
    onnx_file = path if path.is_file() else folder / "model.onnx"
    if not onnx_file.is_file():
        raise ModelNotFoundError(f"{folder}: no model.onnx here: pass the .onnx file itself")
    checks.check_onnx(onnx_file)
    import onnx

    inputs = {i.name for i in onnx.load(str(onnx_file), load_external_data=False).graph.input}
    if any("past" in n for n in inputs):
        raise UnsupportedModelError(
            f"{onnx_file}: an ONNX decoder without genai_config.json: export it with Edgewise "
            "(edgewise run MODEL --backend ort) or onnxruntime-genai's model builder"
        )
    if "input_ids" not in inputs:
        raise UnsupportedModelError(f"{onnx_file}: unsupported ONNX model (no input_ids input): "
                                    "Edgewise serves text encoders and genai decoders")
    tok = folder / "tokenizer.json"
    if not tok.is_file():
        raise ModelNotFoundError(f"{folder}: ONNX encoder without tokenizer.json beside it: copy the tokenizer files in")
    return ModelSource(ref=ref, kind=SourceFormat.ONNX, path=onnx_file, task=ENCODER, name=onnx_file.stem)


def resolve_tflite(path: Path, ref: str) -> ModelSource:
    checks.check_tflite(path)
    return ModelSource(ref=ref, kind=SourceFormat.TFLITE, path=path, task=TFLITE, name=path.stem)


def resolve_folder(path: Path, ref: str) -> ModelSource:
    if (path / "manifest.json").is_file():
        return resolve_bundle(path, ref)
    if (path / "genai_config.json").is_file():
        return resolve_onnx(path, ref)
    if (path / "config.json").is_file():
        return resolve_hf_folder(path, ref)
    for pattern, fn in (("*.gguf", resolve_gguf), ("*.onnx", resolve_onnx), ("*.tflite", resolve_tflite)):
        found = sorted(path.glob(pattern))
        if len(found) == 1:
            return fn(found[0], ref)
        if len(found) > 1:
            raise EdgewiseError(f"{path}: holds {len(found)} {pattern} files: pass one of them directly")
    raise ModelNotFoundError(
        f"{path}: folder holds no model (expected config.json + weights, genai_config.json, manifest.json, "
        "or a .gguf/.onnx/.tflite file)"
    )


def resolve_path(path: Path, ref: str) -> ModelSource:
    path = Path(path)
    if path.is_dir():
        return resolve_folder(path, ref)
    if path.is_file():
        fn = {".gguf": resolve_gguf, ".onnx": resolve_onnx, ".tflite": resolve_tflite}.get(path.suffix.lower())
        if fn:
            return fn(path, ref)
        if path.name == "config.json":
            return resolve_hf_folder(path.parent, ref)
        if path.suffix == ".safetensors":
            return resolve_hf_folder(path.parent, ref)
        raise ModelNotFoundError(f"{path}: not a model file (expected .gguf, .onnx, .tflite or a model folder)")
    raise ModelNotFoundError(f"{path}: no such file or folder: check the path")


def resolve_bundle(path: Path, ref: str) -> ModelSource:
    manifest = read_manifest(path)
    verify_bundle(path, manifest)
    model = manifest.get("model") or {}
    inner = path / model.get("path", "model")
    src = resolve_path(inner, ref)
    return ModelSource(ref=ref, kind=src.kind, path=src.path, task=src.task,
                       name=manifest.get("name", path.name), arch=src.arch,
                       extra={**src.extra, "bundle": str(path), "manifest": manifest})
