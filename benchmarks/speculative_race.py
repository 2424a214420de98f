"""Speculative decoding against plain decoding (issue 22): our drafts and, where built, llama.cpp's own.

Each round runs every prompt once with every method, interleaved (plain, then each draft, then the llama.cpp
tools), at each thread count; the table gives medians over rounds of the per-round median decode tokens/s across
prompts, the speed-up over our plain decode, the acceptance rate, and how many generations matched plain decoding
token for token (greedy). Prompts are grounded: summarise or rewrite a paragraph given in the prompt.

    .venv/bin/python benchmarks/speculative_race.py                               # SmolLM2, lookup, 5 prompts
    .venv/bin/python benchmarks/speculative_race.py --pair qwen --prompts 20      # 1.5B target, 0.5B draft
    .venv/bin/python benchmarks/speculative_race.py --target smollm2-135m --precision fp32 --draft lookup \\
        --draft lookup:ngram=2,k=4 --threads 1,2 --rounds 5 --out race.json

`--verify-cost` instead times one verify pass (append_all of k tokens) against one decode step for k = 1..8 on
the target, and reports how far a k-row pass's logits drift from k one-row passes (quantized kernels round the
two differently, so a near tie can flip a greedy token):

    .venv/bin/python benchmarks/speculative_race.py --precision auto --verify-cost --threads 1,2

llama.cpp's `llama-lookup` (for lookup drafts) and `llama-speculative-simple` (for model drafts) run on the same
GGUF, prompts and token budget when they are in .bench/llama.cpp/build/bin; their speed and acceptance are read
from their own output (`--llama-bin` to look elsewhere). A tool that is missing is named in the JSON's `skipped`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = {  # --pair: target, its drafts, the precision the target runs at
    "smollm2": ("smollm2-135m", ["lookup"], "auto"),
    "qwen": ("qwen2.5-coder-1.5b", ["model:qwen2.5-coder-0.5b", "lookup"], "auto"),
}
PARAGRAPHS = [
    "The lighthouse on Gull Island was built in 1871 to guard ships from the reef that lies two miles offshore. "
    "Its keeper, Martha Price, tended the lamp for forty years and kept a log of every storm. In 1939 the light "
    "was automated, and the keeper's cottage became a small museum.",
    "Honeybees communicate the location of food with a waggle dance. The angle of the dance relative to vertical "
    "shows the direction of the food relative to the sun, and the length of the waggle run shows the distance. "
    "Other bees follow the dancer and then fly out to find the flowers themselves.",
    "The town council voted on Tuesday to close Elm Street to cars on weekends from May to September. Shops on "
    "the street asked for the change after a trial last summer brought more visitors. Delivery vans may still "
    "enter before ten in the morning, and residents keep access to their garages.",
    "A sourdough starter is a mix of flour and water in which wild yeast and lactic acid bacteria grow. Bakers "
    "feed it every day with fresh flour and water. The yeast makes the bread rise, and the bacteria give it a "
    "sour taste. A healthy starter doubles in size within a few hours of feeding.",
    "The library will move its children's section to the ground floor in March. The new room has low shelves, "
    "a reading corner with cushions, and space for the weekly story hour. During the move, which takes two "
    "weeks, children's books can be borrowed from the front desk.",
    "Glaciers form where more snow falls in winter than melts in summer. Over many years the snow is pressed into "
    "ice, which slowly flows downhill under its own weight. As it moves, a glacier carves valleys, carries rocks "
    "over long distances, and leaves them behind when the ice melts.",
    "The museum's new exhibition shows tools used by farmers in the valley over the last two hundred years. "
    "Visitors can see ploughs, scythes, and an early tractor, and can try grinding grain by hand. The exhibition "
    "is open until the end of October, and entry is free for children under twelve.",
    "Regular exercise improves sleep, mood, and heart health. Adults are advised to do at least 150 minutes of "
    "moderate activity a week, such as brisk walking or cycling. Even short walks after meals help to lower "
    "blood sugar, and stretching keeps joints flexible as people age.",
    "The bridge over the river will be repainted this summer. Work starts on June first and will take about "
    "eight weeks. One lane will stay open in each direction, but cyclists must use the path on the east side. "
    "The city says the new paint will protect the steel for another twenty years.",
    "Octopuses have three hearts and blue blood. Two hearts pump blood to the gills, and the third pumps it to "
    "the rest of the body. Their blood is blue because it carries oxygen with a copper-based protein called "
    "hemocyanin, which works better than iron-based hemoglobin in cold water with little oxygen.",
]
TASKS = ["Rewrite this paragraph in simpler words:", "Summarise this paragraph in two sentences:"]


def prompts(n: int) -> list[str]:
    pairs = [(t, p) for t in TASKS for p in PARAGRAPHS]
    return [f"{t}\n\n{p}" for t, p in pairs[:n]]


def ours(lm, prompt: str, cfg, draft) -> dict:
    from edgewise.runtime import generate

    r = generate(lm, prompt, cfg, draft=draft)
    return {"tps": r.generation_tps, "tokens": r.generation_tokens, "ids": r.token_ids,
            "draft": r.draft.as_dict() if r.draft is not None else None}


def llama_tool(binary: Path, gguf: str, text: str, n: int, threads: int, draft_gguf: str | None,
               k: int | None) -> dict:
    """One run of llama-lookup / llama-speculative-simple; speed and acceptance from what it prints. k=None runs
    the tool with its own default draft length (and, for a model draft, its own p-min cut), as its users run it."""
    cmd = [str(binary), "-m", gguf, "-p", text, "-n", str(n), "-t", str(threads), "--temp", "0", "-c", "4096"]
    if k is not None:
        cmd += ["--spec-draft-n-max", str(k)]
    if draft_gguf:  # this llama.cpp (the one llama-cpp-python 0.3.36 vendors) drafts only when told which way
        cmd += ["-md", draft_gguf, "--spec-type", "draft-simple"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = p.stdout + p.stderr
    speed = re.findall(r"speed:\s*([\d.]+)\s*t/s", out)
    accept = re.findall(r"accept\s*=\s*([\d.]+)\s*%", out)
    if p.returncode != 0 or not speed:
        raise RuntimeError(f"{binary.name} failed (rc {p.returncode}): {out[-400:]}")
    return {"tps": float(speed[-1]), "acceptance": float(accept[-1]) / 100 if accept else None}


def verify_cost(lm, text: str, reps: int) -> list[dict]:
    """Per k: median ms of one append_all of k tokens (after the prompt), its ratio to a one-token step, and the
    largest |logit| difference between that pass and k one-token appends, with their argmax agreement."""
    import numpy as np

    from edgewise.runtime import prompt_ids

    ids = prompt_ids(lm, text)
    head, extra = ids[:-8], ids[-8:]
    dec = lm.session()
    dec.start(len(ids) + 1)
    dec.append(head)
    out = []
    for k in range(1, 9):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            rows = dec.append_all(extra[:k])
            times.append((time.perf_counter() - t) * 1000)
            dec.rewind(len(head))
        one = np.stack([dec.append([t]) for t in extra[:k]])
        dec.rewind(len(head))
        out.append({"k": k, "ms": statistics.median(times), "max_abs_logit_diff": float(np.abs(rows - one).max()),
                    "argmax_agree": float((rows.argmax(1) == one.argmax(1)).mean())})
    for row in out:
        row["x_one_step"] = row["ms"] / out[0]["ms"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", choices=sorted(PAIRS), default="smollm2")
    ap.add_argument("--target", help="model ref (default: the pair's)")
    ap.add_argument("--draft", action="append", help="draft spec, repeatable (default: the pair's)")
    ap.add_argument("--precision", help="target precision (default: the pair's)")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=5, help=f"how many grounded prompts (at most {2 * len(PARAGRAPHS)})")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--llama-bin", default=str(ROOT / ".bench/llama.cpp/build/bin"))
    ap.add_argument("--out", help="write the per-round figures as JSON here")
    ap.add_argument("--verify-cost", action="store_true", help="time a verify pass against k instead (see above)")
    a = ap.parse_args(argv)

    from edgewise.bench import llamacpp_tools
    from edgewise.runtime import GenerationConfig, load_model, prompt_ids
    from edgewise.runtime.drafts import load_draft
    from edgewise.runtime.llamacpp_backend import gguf_path
    from edgewise.models import load as load_source

    target, drafts, precision = PAIRS[a.pair]
    target, drafts, precision = a.target or target, a.draft or drafts, a.precision or precision
    texts = prompts(a.prompts)
    cfg = GenerationConfig(max_tokens=a.max_tokens)
    if a.verify_cost:
        for threads in [int(t) for t in a.threads.split(",")]:
            lm = load_model(target, backend=a.backend, precision=precision, threads=threads)
            print(f"{target} ({a.backend}, {lm.precision}), {threads} thread(s), load average "
                  f"{os.getloadavg()[0]:.2f}: k, ms per verify pass, x one step, max |logit diff| vs k one-token "
                  "steps, argmax agreement")
            for r in verify_cost(lm, texts[0], max(3, a.rounds)):
                print(f"  {r['k']}  {r['ms']:6.2f}  {r['x_one_step']:5.2f}  {r['max_abs_logit_diff']:.3g}  "
                      f"{r['argmax_agree']:.2f}")
        return 0
    bin_dir, skipped = Path(a.llama_bin), []
    os.environ["EDGEWISE_LLAMACPP_BIN"] = str(bin_dir)  # llama-bench below is looked up where the other tools are
    result = {"target": target, "precision": precision, "backend": a.backend, "drafts": drafts,
              "max_tokens": a.max_tokens, "prompts": texts, "loadavg_start": os.getloadavg(), "cells": {}}
    for threads in [int(t) for t in a.threads.split(",")]:
        lm = load_model(target, backend=a.backend, precision=precision, threads=threads)
        built = {spec: load_draft(spec, lm, threads=threads) for spec in drafts}
        methods = {"plain": lambda t: ours(lm, t, cfg, None)}
        methods.update({spec: (lambda t, d=d: ours(lm, t, cfg, d)) for spec, d in built.items()})
        tgt_gguf = str(gguf_path(load_source(target))) if load_source(target).kind == "gguf" else None
        for spec in drafts:
            tool = bin_dir / ("llama-lookup" if spec.startswith("lookup") else "llama-speculative-simple")
            name = f"{tool.name} ({spec})"
            if tgt_gguf is None or not tool.is_file():
                skipped.append(f"{name}: {'not a GGUF target' if tgt_gguf is None else f'no {tool}'}")
                continue
            dg = None
            if spec.startswith("model:"):
                dsrc = load_source(spec.split(":", 1)[1].split(",")[0])
                if dsrc.kind != "gguf":  # llama.cpp's tools take a GGUF draft only
                    skipped.append(f"{name}: the draft is not a GGUF")
                    continue
                dg = str(gguf_path(dsrc))
            for k, label in ((built[spec].k, f"{tool.name} (k={built[spec].k})"), (None, f"{tool.name} (its defaults)")):
                methods[label] = (lambda t, tool=tool, dg=dg, k=k: llama_tool(
                    tool, tgt_gguf, lm.tokenizer.decode(prompt_ids(lm, t), skip_special_tokens=False), a.max_tokens,
                    threads, dg, k))
        once = {}  # run once per round, not per prompt: a prompt-free figure, llama-bench's tgN (one repetition)
        tg = f"tg{a.max_tokens}"
        if tgt_gguf is not None and llamacpp_tools.llama_tool("llama-bench") is not None:
            once[f"llama-bench {tg}"] = lambda: {"tps": llamacpp_tools.llama_bench(
                tgt_gguf, threads, n_prompt=0, n_gen=a.max_tokens, reps=1)[tg]}
        elif tgt_gguf is not None:
            skipped.append(f"llama-bench: not in {bin_dir}")
        rounds = {m: [] for m in [*methods, *once]}
        for rnd in range(a.rounds):
            per = {m: [] for m in rounds}
            for i, text in enumerate(texts):
                for m, fn in methods.items():  # interleaved: every method sees the machine in the same state
                    per[m].append(fn(text))
            for m, fn in once.items():
                per[m].append(fn())
            for m, runs in per.items():
                row = {"median_tps": statistics.median(r["tps"] for r in runs), "runs": runs}
                rounds[m].append(row)
            print(f"threads {threads} round {rnd + 1}: " + ", ".join(
                f"{m} {rounds[m][-1]['median_tps']:.1f}" for m in methods), file=sys.stderr)
        plain_ids = [[r["ids"] for r in row["runs"]] for row in rounds["plain"]]
        cell = {}
        for m, rows in rounds.items():
            med = statistics.median(r["median_tps"] for r in rows)
            d = [r["draft"] for row in rows for r in row["runs"] if r.get("draft")]
            acc = (sum(x["accepted"] for x in d) / max(1, sum(x["proposed"] for x in d))) if d else None
            if acc is None:
                accs = [r["acceptance"] for row in rows for r in row["runs"] if r.get("acceptance") is not None]
                acc = statistics.median(accs) if accs else None
            same = [r["ids"] == p for row, pids in zip(rows, plain_ids) for r, p in zip(row["runs"], pids)
                    if "ids" in r]
            cell[m] = {"median_tps": med, "per_round": [r["median_tps"] for r in rows], "acceptance": acc,
                       "identical": f"{sum(same)}/{len(same)}" if same else "n/a (other engine)"}
        base = cell["plain"]["median_tps"]
        for m, c in cell.items():
            c["speedup"] = c["median_tps"] / base if base else None
        result["cells"][str(threads)] = cell
        for row in rounds.values():
            for r in row:
                for run in r["runs"]:
                    run.pop("ids", None)
        result.setdefault("rounds", {})[str(threads)] = rounds
    result["loadavg_end"], result["skipped"] = os.getloadavg(), skipped
    print(f"\n{target} ({a.backend}, {precision}), {len(texts)} grounded prompts, {a.max_tokens} max new tokens, "
          f"{a.rounds} interleaved rounds; load average {result['loadavg_start'][0]:.2f} -> "
          f"{result['loadavg_end'][0]:.2f}")
    print(f"{'threads':>7}  {'method':<42} {'tok/s':>7} {'x plain':>8} {'accept':>7}  identical  per round")
    for threads, cell in result["cells"].items():
        for m, c in cell.items():
            acc = f"{100 * c['acceptance']:.0f}%" if c["acceptance"] is not None else "-"
            print(f"{threads:>7}  {m:<42} {c['median_tps']:7.1f} {c['speedup']:8.2f} {acc:>7}  {c['identical']:<9}  "
                  + " ".join(f"{x:.1f}" for x in c["per_round"]))
    for s in skipped:
        print(f"skipped: {s}")
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"({time.time() - t0:.0f} s)", file=sys.stderr)
    sys.exit(rc)
