"""Hugging Face hub ids. Real download code; offline (HF_HUB_OFFLINE=1) it only reads the local cache."""

from __future__ import annotations

import os
import re

from edgewise.errors import ModelNotFoundError, OfflineError
from edgewise.models.files import resolve_path
from edgewise.models.source import ModelSource, register_resolver

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Only what a model needs: skip other frameworks' weights and big extras.
_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*"]
# huggingface_hub is imported inside resolve_hub: it takes a tenth of a second or more to import, and reads
# HF_HUB_OFFLINE, HF_HOME and the cache paths from the environment once, at import; only hub ids need it.


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


@register_resolver("hub", claims=lambda ref: bool(_HUB_ID.match(ref)))
def resolve_hub(ref: str) -> ModelSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(ref, allow_patterns=_PATTERNS, local_files_only=_offline())
    except LocalEntryNotFoundError:
        if _offline():
            raise OfflineError(
                f"hub model {ref!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1: "
                "download it on a connected machine (hf download REPO) or pass a local folder"
            ) from None
        raise OfflineError(f"could not reach the Hugging Face hub for {ref!r}: check the network "
                           "or pass a local folder") from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"hub model {ref!r} does not exist (or is private): check the id") from None
    except OSError as e:
        raise OfflineError(f"could not fetch {ref!r} from the hub ({type(e).__name__}): check the network "
                           "or pass a local folder") from None
    src = resolve_path(folder, ref)
    return ModelSource(ref=ref, kind=src.kind, path=src.path, task=src.task, name=ref, arch=src.arch,
                       extra={**src.extra, "hub_id": ref})
