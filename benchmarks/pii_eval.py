"""Recall and precision of the router's PII detection per kind, against presidio-analyzer's pattern recognizers,
plus the tagger's latency and size.

    python benchmarks/pii_eval.py                      # hand-written set + held-out synthetic set, markdown
    python benchmarks/pii_eval.py --presidio           # add presidio's pattern recognizers on the same sets
    python benchmarks/pii_eval.py --latency            # p50/p95 for 1 KB prompts on 1 thread
    python benchmarks/pii_eval.py --misses             # list what each detector missed or invented

The held-out synthetic set is drawn from templates the tagger never trained on (privacy.synth.HELDOUT_TEMPLATES),
with a seed of its own. Presidio runs without an NLP engine (no spaCy model offline): its pattern
recognizers are called directly, every result with a score above 0 counts (AnalyzerEngine's default
threshold), and overlapping results keep the higher score, as AnalyzerEngine does.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

from edgewise.privacy import pii
from edgewise.privacy.base import available_kinds
from edgewise.privacy.evaluate import Labelled, format_table, load_labelled, score
from edgewise.privacy.pii import Entity

ROOT = Path(__file__).resolve().parents[1]

HAND = ROOT / "tests" / "data" / "pii_handwritten.jsonl"
STRUCTURED = ("email", "phone", "credit_card", "iban", "ipv4", "ipv6", "us_ssn", "uk_nino")
PRESIDIO_KIND = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "credit_card",
                 "IBAN_CODE": "iban", "IP_ADDRESS": "ipv4", "US_SSN": "us_ssn", "UK_NINO": "uk_nino"}


def synthetic(n: int, seed: int) -> list[Labelled]:
    from edgewise.privacy.synth import Synth

    return [Labelled(e.text, [tuple(s) for s in e.spans]) for e in Synth(seed).dataset(n, "heldout")]


def presidio_detector():
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # offline: it falls back to its bundled list
    from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer, IbanRecognizer,
                                                          IpRecognizer, PhoneRecognizer, UkNinoRecognizer,
                                                          UsSsnRecognizer)

    recs = [r() for r in (EmailRecognizer, PhoneRecognizer, CreditCardRecognizer, IbanRecognizer, IpRecognizer,
                          UsSsnRecognizer, UkNinoRecognizer)]

    def detect(text: str) -> list[Entity]:
        found = []
        for r in recs:
            for x in r.analyze(text, r.supported_entities, None) or []:
                if x.score > 0:
                    found.append((x.score, Entity(PRESIDIO_KIND[x.entity_type], x.start, x.end, text[x.start:x.end])))
        found.sort(key=lambda t: -t[0])
        kept: list[Entity] = []
        for _, e in found:
            if all(e.end <= k.start or e.start >= k.end for k in kept):
                kept.append(e)
        return sorted(kept, key=lambda e: e.start)

    return detect


def latency(n: int = 200) -> dict:
    """1 KB prompts cut from the hand-written set; the tagger alone, and every detector (pii.detect)."""
    from edgewise.privacy.tagger import PiiTagger, _tag_cached

    texts = [r.text for r in load_labelled(HAND)]
    prompts, buf = [], ""
    for t in texts * 3:
        buf += t + "\n\n"
        if len(buf.encode()) >= 1024:
            prompts.append(buf.encode()[:1024].decode(errors="ignore"))
            buf = ""
    tagger = PiiTagger.load(threads=1)
    out = {"prompts": len(prompts), "bytes": 1024,
           "tokens_mean": statistics.mean(len(tagger.tokenizer.encode(p, add_special_tokens=False).ids)
                                          for p in prompts)}
    for name, fn in (("tagger", tagger), ("all_detectors", lambda t: pii.detect(t))):
        for p in prompts[:5]:
            fn(p)
        wall, cpu = [], []
        for i in range(n):
            p = prompts[i % len(prompts)]
            _tag_cached.cache_clear()  # pii.detect would otherwise answer a repeated prompt from its cache
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(p)
            cpu.append((time.thread_time() - c0) * 1e3)
            wall.append((time.perf_counter() - t0) * 1e3)
        q = lambda xs, k: statistics.quantiles(xs, n=100)[k - 1]  # noqa: E731
        out[name] = {"wall_p50_ms": round(q(wall, 50), 2), "wall_p95_ms": round(q(wall, 95), 2),
                     "cpu_p50_ms": round(q(cpu, 50), 2), "cpu_p95_ms": round(q(cpu, 95), 2)}
    folder = tagger.folder
    out["model_dir"] = str(folder)
    out["disk_bytes"] = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    out["model_onnx_bytes"] = (folder / "model.onnx").stat().st_size
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hand", default=str(HAND))
    ap.add_argument("--synthetic", type=int, default=600, help="held-out synthetic examples (0 = skip)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--presidio", action="store_true")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--json", default=None, help="also write all figures to this file")
    args = ap.parse_args()

    sets = {"hand-written": load_labelled(args.hand)}
    if args.synthetic:
        sets["synthetic held-out"] = synthetic(args.synthetic, args.seed)
    report: dict = {"detectors": available_kinds(), "sets": {k: len(v) for k, v in sets.items()}}
    print(f"detectors: {', '.join(available_kinds())}")
    print("sets: " + ", ".join(f"{k} {len(v)} prompts" for k, v in sets.items()) + "\n")
    tables = {}
    for name, rows in sets.items():
        tables[f"edgewise {name}"] = score(rows, pii.detect)
    print("## Edgewise\n\n" + format_table(tables) + "\n")
    if args.presidio:
        pdet = presidio_detector()
        cmp = {}
        for name, rows in sets.items():
            cmp[f"edgewise {name}"] = score(rows, lambda t: pii.detect(t, STRUCTURED), STRUCTURED)
            cmp[f"presidio {name}"] = score(rows, pdet, STRUCTURED)
        print("## Structured kinds: Edgewise patterns vs presidio-analyzer pattern recognizers\n\n"
              + format_table(cmp) + "\n")
        tables.update({k: v for k, v in cmp.items() if k.startswith("presidio")})
    if args.misses:
        for name, t in tables.items():
            for g, c in t.items():
                if g != "all" and (c.misses or c.false):
                    print(f"{name} / {g}: missed {c.misses[:30]}\n    invented {c.false[:30]}")
    report["tables"] = {n: {g: {"gold": c.gold, "caught": c.caught, "recall": c.recall, "pred": c.pred,
                                "correct": c.pred_ok, "precision": c.precision} for g, c in t.items()}
                        for n, t in tables.items()}
    if args.latency:
        lat = latency()
        report["latency"] = lat
        print("## Latency (1 thread)\n\n" + json.dumps(lat, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
