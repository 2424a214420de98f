"""Perplexity of a GGUF's weights, run by llama.cpp's own `llama-perplexity` and by Edgewise's variants, on the same
tokens with the same chunking, plus each variant's KL divergence from the dequantized weights.

llama-perplexity splits the tokenized text into chunks of --ctx tokens (BOS in the first slot when the vocabulary
adds one), and scores the second half of each chunk. Here the tokens come from llama.cpp's own tokenizer (through
llama-cpp-python, vocab only), and every Edgewise variant scores exactly those chunks, so a difference is the
weights' and kernels' alone.

Variants:
  torch       the GGUF dequantized by gguf-py, fp32 in PyTorch: the exact weights, the KL reference
  gguf        the GGUF's own blocks transcoded to ONNX MatMulNBits, int8 activations (the default for a GGUF)
  gguf-exact  the same blocks, fp32 compute (accuracy level 1)
  int4        the dequantized weights requantized by the onnxruntime-genai builder (int4 RTN, block 32)
  int8        the same, int8

    .venv/bin/python benchmarks/gguf_perplexity.py --model smollm2-135m
    .venv/bin/python benchmarks/gguf_perplexity.py --model qwen2.5-coder-0.5b --variants torch,gguf,gguf-exact

A variant that fails is a failed row (its error in the table and the JSON); the others still run, and the exit status
is 1 with one line naming the failed variants.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from edgewise.bench.perplexity import chunks, divergence, llama_tokens, score

VARIANTS = ("torch", "gguf", "gguf-exact", "int4", "int8")


def load_variant(name: str, model: str, threads: int):
    from edgewise.export.gguf_transcode import transcode_gguf
    from edgewise.models import load
    from edgewise.runtime import load_model

    if name == "torch":
        return load_model(model, backend="torch", threads=threads)
    if name == "gguf-exact":
        return load_model(str(transcode_gguf(load(model), accuracy_level=1)), backend="ort", threads=threads)
    return load_model(model, backend="ort", precision=name, threads=threads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m", help="a packaged alias or a .gguf path")
    ap.add_argument("--text", help="a text file (default: the packaged demo text)")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json-out")
    a = ap.parse_args()
    variants = a.variants.split(",")
    if unknown := [v for v in variants if v not in VARIANTS]:
        ap.error(f"unknown variant(s) {', '.join(unknown)}: use {', '.join(VARIANTS)}")

    from edgewise import models
    from edgewise.bench.llamacpp_tools import llama_perplexity
    from edgewise.bench.rows import exit_status, one_line
    from edgewise.data import DEMO_TEXT, packaged_text
    from edgewise.runtime.llamacpp_backend import gguf_path

    gguf = gguf_path(models.load(a.model))
    text_file = Path(a.text) if a.text else packaged_text(DEMO_TEXT)
    tokens, bos = llama_tokens(gguf, text_file.read_text())
    cks = chunks(tokens, a.ctx, bos)
    if not cks:
        raise SystemExit(f"{text_file}: {len(tokens)} tokens, fewer than one chunk of {a.ctx}: use a longer text")
    first = a.ctx // 2
    targets = [np.array(c[first + 1:a.ctx]) for c in cks]

    t0 = time.perf_counter()
    ref_cpp = llama_perplexity(gguf, text_file, threads=a.threads, n_ctx=a.ctx)
    ref_cpp["seconds"] = round(time.perf_counter() - t0, 1)
    if ref_cpp["chunks"] not in (None, len(cks)):
        raise SystemExit(f"llama-perplexity scored {ref_cpp['chunks']} chunks, this script {len(cks)}: "
                         "the tokenizations differ")
    print(f"llama-perplexity: PPL {ref_cpp['ppl']:.4f} ± {ref_cpp['ppl_err']:.4f} over {len(cks)} chunks "
          f"({ref_cpp['seconds']} s)", file=sys.stderr)

    rows, ref_lp = {}, None

    def save() -> None:
        # Written after every variant, so a later failure never loses what was already measured.
        if a.json_out:
            Path(a.json_out).write_text(json.dumps({"args": vars(a), "tokens": len(tokens), "chunks": len(cks),
                                                    "llama_perplexity": ref_cpp, "variants": rows}, indent=2))

    save()
    order = (["torch"] if "torch" in variants else []) + [v for v in variants if v != "torch"]
    for v in order:
        t0 = time.perf_counter()
        try:
            lm = load_variant(v, a.model, a.threads)
            lps = score(lm, cks, a.ctx)
        except Exception as e:  # noqa: BLE001 - one variant's failure is a failed row, not a lost run
            rows[v] = {"error": one_line(e)}
            print(f"{v}: failed ({rows[v]['error']})", file=sys.stderr)
            save()
            continue
        nll = float(np.mean(np.concatenate([-lp[np.arange(len(t)), t] for lp, t in zip(lps, targets)])))
        row = {"ppl": math.exp(nll), "seconds": round(time.perf_counter() - t0, 1),
               "precision": getattr(lm, "precision", None), "size_mb": lm.size_bytes() / 1e6}
        if v == "torch":
            ref_lp = lps
        elif ref_lp is not None:
            kld, same = divergence(ref_lp, lps)
            row.update(kld=kld, same_top=same)
        rows[v] = row
        print(f"{v}: PPL {row['ppl']:.4f} ({row['seconds']} s)", file=sys.stderr)
        save()
        del lm

    n = sum(len(t) for t in targets)
    print(f"\n{a.model} ({gguf.name}), {text_file.name}: {len(tokens)} tokens, {len(cks)} chunks of {a.ctx}, "
          f"{n} scored; llama-perplexity PPL {ref_cpp['ppl']:.4f} ± {ref_cpp['ppl_err']:.4f}")
    print("\n| variant | perplexity | vs llama-perplexity | KLD vs exact weights | same top token | size MB |")
    print("|---|---|---|---|---|---|")
    print(f"| llama.cpp `llama-perplexity` | {ref_cpp['ppl']:.4f} | - | n/a | n/a | {gguf.stat().st_size / 1e6:.1f} |")
    for v, r in rows.items():
        if "error" in r:
            print(f"| {v} | failed: {r['error']} | | | | |")
            continue
        kld = f"{r['kld']:.4f}" if "kld" in r else ("0 (reference)" if v == "torch" else "n/a")
        same = f"{r['same_top']:.3f}" if "same_top" in r else "-"
        print(f"| {v} | {r['ppl']:.4f} | {100 * (r['ppl'] / ref_cpp['ppl'] - 1):+.2f}% | {kld} | {same} | "
              f"{r['size_mb']:.1f} |")
    sys.exit(exit_status({v: r["error"] for v, r in rows.items() if "error" in r}))


if __name__ == "__main__":
    main()
