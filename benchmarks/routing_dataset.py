"""Calibrate the hybrid router on a routing dataset built from public-domain text (next-word cloze).

Each item is a passage prefix; the answer is the next word. Both models answer greedily; quality is
an exact (normalised) match; the edge score is the p10 of the log-probs of the edge answer's tokens.
Half the items calibrate the threshold, the other half measure it (held out).

    .venv/bin/python benchmarks/routing_dataset.py --n 240 \
        --edge smollm2-135m:ort:int4 --cloud smollm2-135m:torch:fp32 --out bench-out/routing
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def cloze_items(text: str, n: int, seed: int, context_words: int = 40) -> list[dict]:
    words = text.split()
    rng = random.Random(seed)
    cands = [i for i in range(context_words, len(words)) if re.fullmatch(r"[A-Za-z][a-z']{2,}", words[i])]
    picks = sorted(rng.sample(cands, min(n, len(cands))))
    return [{"prompt": " ".join(words[i - context_words:i]), "reference": words[i]} for i in picks]


def first_word(text: str) -> str:
    m = re.match(r"\s*([A-Za-z][A-Za-z']*)", text)
    return m.group(1) if m else text.strip().split(" ")[0] if text.strip() else ""


def answer_all(spec: str, items: list[dict]) -> list[dict]:
    from edgewise.runtime import GenerationConfig, generate, load_model

    ref, backend, precision = (spec.split(":") + ["ort", "fp32"])[:3]
    lm = load_model(ref, backend=backend, precision=precision, threads=2)
    out = []
    for it in items:
        r = generate(lm, it["prompt"], GenerationConfig(max_tokens=4), chat=False)
        word = first_word(r.text)
        # log-probs of the tokens that spell the first word (up to the next token starting a new word)
        lps, seen = [], ""
        for tid, lp in zip(r.token_ids, r.logprobs):
            piece = lm.tokenizer.token_str(tid)
            if seen.strip() and (piece.startswith(" ") or not piece.strip()):
                break
            lps.append(lp)
            seen += piece
        out.append({"answer": word, "logprobs": lps or r.logprobs[:1]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", help="plain-text file (default: the keyboard's held-out public-domain text)")
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edge", default="smollm2-135m:ort:int4")
    ap.add_argument("--cloud", default="smollm2-135m:torch:fp32")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--out", default="bench-out/routing")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    out = Path(a.out)
    if a.child:  # answer in a child process so each model's memory is its own
        items = [json.loads(ln) for ln in (out / "items.jsonl").read_text().splitlines()]
        spec = a.edge if a.child == "edge" else a.cloud
        (out / f"{a.child}.json").write_text(json.dumps(answer_all(spec, items)))
        return
    out.mkdir(parents=True, exist_ok=True)
    if a.text:
        text = Path(a.text).read_text()
    else:
        from edgewise.data.eval_texts import keyboard_eval_text

        text = Path(keyboard_eval_text()).read_text()
    items = cloze_items(text, a.n, a.seed)
    (out / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    timings = {}
    for who in ("edge", "cloud"):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", who, "--out", str(out), "--edge", a.edge,
                        "--cloud", a.cloud], check=True)
        timings[who] = time.perf_counter() - t0
    edge = json.loads((out / "edge.json").read_text())
    cloud = json.loads((out / "cloud.json").read_text())
    rows = [{"prompt": it["prompt"], "reference": it["reference"], "edge_answer": e["answer"],
             "cloud_answer": c["answer"], "edge_logprobs": e["logprobs"]} for it, e, c in zip(items, edge, cloud)]
    half = len(rows) // 2
    calib, test = out / "calib.jsonl", out / "test.jsonl"
    calib.write_text("".join(json.dumps(r) + "\n" for r in rows[:half]))
    test.write_text("".join(json.dumps(r) + "\n" for r in rows[half:]))
    policy = out / "policy.toml"
    subprocess.run([sys.executable, "-m", "edgewise", "route", "calibrate", "--data", str(calib), "--target",
                    str(a.target), "--out", str(policy), "--plot", str(out / "risk-coverage.png"), "--match", "exact",
                    "--force"], check=True)
    # Held-out check: apply the calibrated threshold to the other half.
    import tomllib

    from edgewise.route.eval.calibrate import load_data, routellm_metrics

    thr = tomllib.loads(policy.read_text())["policies"]["confidence"]["threshold"]
    d = load_data(test, method="p10", match="exact")
    esc = d.score < thr
    mixed = np.where(esc, d.cloud_q, d.edge_q).mean()
    m = routellm_metrics(d)
    summary = {"items": len(rows), "calibration_items": half, "held_out_items": len(rows) - half,
               "edge": a.edge, "cloud": a.cloud, "threshold": thr,
               "edge_only_quality": float(d.edge_q.mean()), "cloud_only_quality": float(d.cloud_q.mean()),
               "held_out_escalated_share": float(esc.mean()), "held_out_quality": float(mixed),
               "held_out_of_cloud": float(mixed / d.cloud_q.mean()) if d.cloud_q.mean() else None,
               "held_out_apgr": m.apgr, "held_out_cpt50": m.cpt50, "held_out_cpt80": m.cpt80,
               "answer_seconds": timings}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
