"""Default tasks when the user brings none: for language models the packaged Shakespeare scene (perplexity) and the
packaged multiple-choice task (accuracy, so the demo shows a task with answers); for encoders a retrieval set built
from real text that every Python install carries (standard-library docstrings, PSF licence)."""

from __future__ import annotations

import importlib
import inspect
import json
from importlib import resources
from pathlib import Path

from edgewise.data import DEMO_TEXT, packaged_text
from edgewise.models.source import CAUSAL_LM

# The packaged multiple-choice task the demo adds beside perplexity (src/edgewise/data/tasks/, docs/tasks.md); the
# one place its name is written (edgewise.evaluate.accuracy.DEMO_TASK is its path).
DEMO_CHOICE_TASK = "general-knowledge.jsonl"

# Modules whose docstrings are prose (summary line, then a paragraph); order fixes the set.
DOC_MODULES = ("json", "os", "os.path", "re", "shutil", "textwrap", "collections", "itertools", "functools", "string",
               "random", "statistics", "datetime", "pathlib", "subprocess", "tempfile", "zipfile", "tarfile", "csv",
               "heapq", "bisect", "hashlib", "base64", "urllib.parse", "glob", "fnmatch", "difflib", "calendar",
               "decimal", "logging", "argparse", "inspect", "threading", "queue", "socket", "email.message",
               "http.client", "sqlite3", "gzip", "pickle", "copy", "pprint", "enum", "dataclasses", "typing",
               "contextlib", "abc", "io", "codecs", "unicodedata", "locale", "gettext", "optparse", "configparser",
               "plistlib", "shlex", "sched", "timeit", "trace", "traceback", "warnings", "weakref", "zipimport")


def docstring_pairs(limit: int = 200, min_body: int = 80) -> list[dict]:
    """{"query": a docstring's summary, "positive": the rest of it} for public stdlib functions and classes."""
    pairs, seen = [], set()
    for name in DOC_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for attr in sorted(dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, "__module__", "") != mod.__name__:
                continue
            doc = inspect.getdoc(obj) or ""
            summary, _, body = doc.partition("\n\n")
            summary, body = " ".join(summary.split()), " ".join(body.split())
            if len(summary) < 20 or len(body) < min_body or summary in seen or body in seen:
                continue
            seen.update((summary, body))
            pairs.append({"query": summary, "positive": body[:1000]})
            if len(pairs) >= limit:
                return pairs
    return pairs


def packaged_task(name: str) -> Path:
    """The path of a task file shipped in the package (`data/tasks/NAME`)."""
    return Path(str(resources.files("edgewise") / "data" / "tasks" / name))


def default_task_specs(model_task: str, work_dir: Path) -> list[str]:
    """`KIND:FILE` specs of the default tasks, the primary one first."""
    if model_task == CAUSAL_LM:
        return [f"perplexity:{packaged_text(DEMO_TEXT)}", f"choice:{packaged_task(DEMO_CHOICE_TASK)}"]
    return [default_task_spec(model_task, work_dir)]


def default_task_spec(model_task: str, work_dir: Path) -> str:
    """The primary default task alone."""
    if model_task == CAUSAL_LM:
        return f"perplexity:{packaged_text(DEMO_TEXT)}"
    path = Path(work_dir) / "stdlib-docstrings.jsonl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(json.dumps(p) for p in docstring_pairs()) + "\n")
    return f"retrieval:{path}"
