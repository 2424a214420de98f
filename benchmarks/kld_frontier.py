"""Quality per bit where requantization is needed: Edgewise's quantizers against llama.cpp's own, from the same source.

Source weights: a GGUF (default the packaged Qwen2.5-Coder-0.5B-Instruct Q4_K_M), dequantized. Every variant is
made from those weights and scored on the same tokens (llama.cpp's tokenization and chunking, as
benchmarks/gguf_perplexity.py does), as KL divergence from the dequantized source, against bits per weight:

- llama.cpp: `llama-quantize --allow-requantize` to Q4_0, IQ4_XS, Q3_K_M, each without and with an importance matrix
  from `llama-imatrix` on the calibration text. Scored by dequantizing the written GGUF (transformers + gguf-py) and
  running it in fp32: the weights' error alone.
- Edgewise: int4 round-to-nearest (block 32/64/128), GPTQ and mixed precision, calibrated on the same text. Scored
  with fp32 compute (accuracy level 1), so again the weights' error alone.

Bits per weight count every stored tensor over every weight (both embedding tables, norms, scales).

    make bench-setup
    .venv/bin/python benchmarks/kld_frontier.py --json-out bench-out/kld-frontier.json --plot bench-out/kld-frontier.png

A variant that fails, or an importance matrix that cannot be made (its +imatrix rows are then not run), is a failed
row in the table and the JSON; the rest still run, and the exit status is 1 with one line naming the failed rows.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgewise.bench.perplexity import chunks, divergence, llama_tokens, score

LLAMA_TYPES = ("Q4_0", "IQ4_XS", "Q3_K_M")
OURS = ("int4-b32", "int4-b64", "int4-b128", "gptq-b32", "gptq-b128", "mixed-4.5")


def our_config(name: str, calib_tokens: int):
    from edgewise.compress import Gptq, Int4WeightOnly, MixedPrecision

    kind, _, arg = name.partition("-")
    if kind == "int4":
        return Int4WeightOnly(block_size=int(arg[1:]), accuracy_level=1)
    if kind == "gptq":
        return Gptq(block_size=int(arg[1:]), accuracy_level=1, calib_tokens=calib_tokens)
    if kind == "mixed":
        return MixedPrecision(base=Gptq(block_size=128, accuracy_level=1, calib_tokens=calib_tokens),
                              high=Gptq(bits=8, block_size=32, accuracy_level=1, calib_tokens=calib_tokens),
                              budget_bpw=float(arg))
    raise SystemExit(f"unknown variant {name!r}: use {', '.join(OURS)}")


def hf_logprobs(gguf: Path, cks: list[list[int]], n_ctx: int) -> list[np.ndarray]:
    """Log-probs of a GGUF's dequantized weights in fp32 PyTorch (in memory, nothing cached on disk)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    first = n_ctx // 2
    out = []
    with torch.inference_mode():
        for c in cks:
            logits = model(torch.tensor([c])).logits[0, first:n_ctx - 1].double()
            out.append(torch.log_softmax(logits, -1).float().numpy())
    del model
    return out


def ort_logprobs(path: Path, cks: list[list[int]], n_ctx: int, threads: int) -> list[np.ndarray]:
    from edgewise.runtime import load_model

    # float32 keeps the reference and each variant at ~150 MB per chunk on a 152k vocabulary.
    return [lp.astype(np.float32) for lp in score(load_model(str(path), backend="ort", threads=threads), cks, n_ctx)]


def run(cmd: list[str], env: dict) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({p.returncode}): {' | '.join(tail)}")


def plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for who, color, marker in (("llama.cpp", "tab:orange", "s"), ("edgewise", "tab:blue", "o")):
        pts = sorted((r["bpw"], r["kld"], n) for n, r in rows.items() if r.get("by") == who and "kld" in r)
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker, color=color, label=who)
        for x, y, n in pts:
            ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="bits per weight (every tensor)", ylabel="mean KLD vs the source weights", yscale="log",
           title="Quality per bit, same source weights, same tokens")
    ax.axvspan(3.5, 5.0, color="grey", alpha=0.08)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--text", help="evaluation text (default: the packaged demo text)")
    ap.add_argument("--calib-text", help="calibration text for imatrix and GPTQ (default: the packaged one)")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calib-tokens", type=int, default=2048)
    ap.add_argument("--llama-types", default=",".join(LLAMA_TYPES),
                    help="llama-quantize types, each TYPE or TYPE:TABLES (TABLES: the head and embedding type)")
    ap.add_argument("--keep", action="store_true", help="merge into an existing --json-out instead of starting over")
    ap.add_argument("--ours", default=",".join(OURS))
    ap.add_argument("--work", type=Path, help="folder for the requantized GGUFs (default: a temporary one)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--plot", type=Path)
    a = ap.parse_args()

    from edgewise import models
    from edgewise.bench.llamacpp_tools import require_tool, tool_env
    from edgewise.bench.rows import exit_status, one_line
    from edgewise.compress import Calibration, quantize
    from edgewise.data import CALIBRATION_TEXT, DEMO_TEXT, packaged_text
    from edgewise.formats import gguf_bits_per_weight, gguf_scan
    from edgewise.runtime.llamacpp_backend import gguf_path

    source = models.load(a.model)
    gguf = gguf_path(source)
    text = Path(a.text) if a.text else packaged_text(DEMO_TEXT)
    calib = Path(a.calib_text) if a.calib_text else packaged_text(CALIBRATION_TEXT)
    tokens, bos = llama_tokens(gguf, text.read_text())
    cks = chunks(tokens, a.ctx, bos)
    if not cks:
        raise SystemExit(f"{text}: fewer than {a.ctx} tokens")
    work = a.work or Path(tempfile.mkdtemp(prefix="kld-frontier-"))
    work.mkdir(parents=True, exist_ok=True)
    env = tool_env()
    rows: dict[str, dict] = {}
    if a.keep and a.json_out and a.json_out.is_file():
        rows = {k: v for k, v in json.loads(a.json_out.read_text())["rows"].items() if k != "source"}

    def save() -> None:
        if a.json_out:
            a.json_out.parent.mkdir(parents=True, exist_ok=True)
            a.json_out.write_text(json.dumps({"model": a.model, "source": gguf.name, "text": text.name,
                                              "calibration": calib.name, "tokens": len(tokens), "chunks": len(cks),
                                              "scored_tokens": len(cks) * (a.ctx - 1 - a.ctx // 2),
                                              "rows": rows}, indent=1))

    t0 = time.perf_counter()
    ref = hf_logprobs(gguf, cks, a.ctx)
    rows["source"] = {"by": "source", "bpw": gguf_bits_per_weight(gguf), "kld": 0.0, "same_top": 1.0,
                      "types": gguf_scan(gguf)[2], "seconds": round(time.perf_counter() - t0, 1)}
    print(f"source {gguf.name}: {rows['source']['bpw']:.3f} bpw, {len(cks)} chunks", flush=True)
    save()

    imatrix = work / "imatrix.dat"
    try:
        if not imatrix.is_file():  # one per --work folder: the calibration text and model do not change in a run
            run([str(require_tool("llama-imatrix")), "-m", str(gguf), "-f", str(calib), "-o", str(imatrix),
                 "-c", str(a.ctx), "-t", str(a.threads)], env)
    except RuntimeError as e:
        rows["imatrix"] = {"by": "llama.cpp", "error": f"{one_line(e)} (no +imatrix rows)"}
        print(f"imatrix: {e}", flush=True)
        imatrix = None
    else:
        rows.pop("imatrix", None)  # a failure kept from an earlier --keep run
    for spec in filter(None, a.llama_types.split(",")):
        # TYPE or TYPE:TABLES, where TABLES sets --output-tensor-type and --token-embedding-type (by default
        # llama-quantize keeps the head at Q8_0 or Q6_K, which is 1.8 of this model's bits per weight).
        qtype, _, tables = spec.partition(":")
        for imat in (None, imatrix) if imatrix else (None,):
            name = qtype + (f"/tables-{tables}" if tables else "") + ("+imatrix" if imat else "")
            out = work / f"{name.replace('/', '_')}.gguf"
            t0 = time.perf_counter()
            try:
                cmd = [str(require_tool("llama-quantize")), "--allow-requantize"]
                if imat:
                    cmd += ["--imatrix", str(imat)]
                if tables:
                    cmd += ["--output-tensor-type", tables, "--token-embedding-type", tables]
                run(cmd + [str(gguf), str(out), qtype, str(a.threads)], env)
                k, same = divergence(ref, hf_logprobs(out, cks, a.ctx))
                rows[name] = {"by": "llama.cpp", "bpw": gguf_bits_per_weight(out), "kld": k, "same_top": same,
                              "types": gguf_scan(out)[2], "seconds": round(time.perf_counter() - t0, 1)}
            except Exception as e:  # noqa: BLE001 - a failed row, not a lost run
                rows[name] = {"by": "llama.cpp", "error": f"{type(e).__name__}: {e}"}
            finally:
                out.unlink(missing_ok=True)
            print(name, rows[name], flush=True)
            save()

    calibration = Calibration.from_file(calib)
    for name in filter(None, a.ours.split(",")):
        t0 = time.perf_counter()
        try:
            r = quantize(source, our_config(name, a.calib_tokens), name=name, calibration=calibration,
                         threads=a.threads)
            k, same = divergence(ref, ort_logprobs(r.path, cks, a.ctx, a.threads))
            rows[name] = {"by": "edgewise", "bpw": r.bits_per_weight, "kld": k, "same_top": same,
                          "seconds": round(time.perf_counter() - t0, 1)}
        except Exception as e:  # noqa: BLE001
            rows[name] = {"by": "edgewise", "error": f"{type(e).__name__}: {e}"}
        print(name, rows[name], flush=True)
        save()

    if a.plot:
        plot(rows, a.plot)
    print(f"\n{a.model}: {len(cks)} chunks of {a.ctx} from {text.name}; calibration {calib.name}\n")
    print("| variant | by | bits per weight | mean KLD | same top token |")
    print("|---|---|---|---|---|")
    for n, r in sorted(rows.items(), key=lambda kv: kv[1].get("bpw", math.inf)):
        if "error" in r:
            print(f"| {n} | {r['by']} | failed: {r['error'][:80]} | | |")
        else:
            print(f"| {n} | {r['by']} | {r['bpw']:.3f} | {r['kld']:.5f} | {r['same_top']:.3f} |")
    sys.exit(exit_status({n: r["error"] for n, r in rows.items() if "error" in r}))


if __name__ == "__main__":
    main()
