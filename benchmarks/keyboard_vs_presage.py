"""The same held-out text typed through Presage and through the Edgewise keyboard; keystroke savings side by side.

Presage (Debian `presage`, 0.9.1) runs as `presage_simulator` with only its smoothed n-gram predictor
(SmoothedNgramPredictor, deltas 0.01 0.1 0.89: an interpolated trigram) and 3 suggestions; every other setting is
the shipped /etc/presage.xml default (REPEAT_SUGGESTIONS=no, GREEDY_SUGGESTION_THRESHOLD=0). Two n-gram databases:

- shipped: /usr/share/presage/database_en.db, which presage's build makes with `text2ngram -n 1|2|3 -l -f sqlite`
  from one novel, The Picture of Dorian Gray (82k words);
- trained: the same `text2ngram` commands over the corpora the keyboard student was distilled on
  (edgewise.data.corpora.training_texts(): fortunes, Shakespeare, five Austen novels, WordNet examples; the held-out
  texts excluded). The student also saw SmolLM2 samples, which Presage does not.

Presage's n-grams are lower-cased, so it runs with -i (case-insensitive hits); the keyboard runs both ways.

    .venv/bin/python benchmarks/keyboard_vs_presage.py                      # both eval texts, both Presage DBs
    .venv/bin/python benchmarks/keyboard_vs_presage.py --learn --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHIPPED_DB = Path("/usr/share/presage/database_en.db")


def trained_db() -> Path:
    """Presage's n-gram database built by its own text2ngram from the student's training corpora (cached)."""
    from edgewise.data.corpora import training_texts
    from edgewise.home import edgewise_home

    files = training_texts()
    key = hashlib.sha256("\n".join(f"{p.name}:{p.stat().st_size}" for p in files).encode()).hexdigest()[:12]
    db = edgewise_home() / "presage" / f"ngram-train-{key}.db"
    if db.exists():
        return db
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    print(f"building Presage's trigram DB from {len(files)} training files (a few minutes)...", file=sys.stderr)
    for n in (1, 2, 3):
        subprocess.run(["text2ngram", "-n", str(n), "-l", "-f", "sqlite", "-o", str(tmp), *map(str, files)],
                       check=True, stdout=subprocess.DEVNULL)
    tmp.rename(db)
    return db


def run_presage(text: Path, db: Path, k: int, learn: bool) -> dict:
    from edgewise.apps.keyboard.text import presage_config

    with tempfile.TemporaryDirectory(prefix="presage-bench-") as tmp:
        tmp = Path(tmp)
        if learn:  # learning writes to the DB: give it a copy
            shutil.copy(db, tmp / "ngram.db")
            db = tmp / "ngram.db"
        cfg = tmp / "presage.xml"
        cfg.write_text(presage_config(db, suggestions=k, learn=learn))
        t0 = time.perf_counter()
        p = subprocess.run(["presage_simulator", "-q", "-i", "-c", str(cfg), str(text)], capture_output=True,
                           text=True, env={"HOME": str(tmp), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"presage_simulator failed: {p.stderr.strip()[-300:]}")
    got = dict(re.findall(r"^(ki|ks|kn|KSR)\s*:\s*([\d.]+)$", p.stdout, re.M))
    return {"ksr": round(float(got["KSR"]), 3), "ki": int(got["ki"]), "ks": int(got["ks"]), "kn": int(got["kn"]),
            "wall_s": round(wall, 1)}


def run_keyboard(engine, text: Path, k: int, learn: bool, insensitive: bool) -> dict:
    from edgewise.apps.keyboard import PersonalStore
    from edgewise.apps.keyboard.evaluate import evaluate

    engine.personal = PersonalStore(":memory:") if learn else None
    t0 = time.perf_counter()
    r = evaluate(engine, text.read_text(encoding="utf-8"), suggestions=k, learn=learn, insensitive=insensitive)
    d = r.as_dict()
    d["wall_s"] = round(time.perf_counter() - t0, 1)
    return d


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", action="append", type=Path, help="eval text (repeatable); default: the two held-out "
                    "slices from edgewise.data.corpora.keyboard_eval_text (austen, fortunes)")
    ap.add_argument("--model", default=None, help="keyboard model (default: models/keyboard-student)")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--precision", default="int4")
    ap.add_argument("--suggestions", type=int, default=3)
    ap.add_argument("--forwards-per-key", type=int, default=None)
    ap.add_argument("--presage-db", choices=("both", "shipped", "trained"), default="both")
    ap.add_argument("--learn", action="store_true", help="both systems adapt as they type")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)

    if shutil.which("presage_simulator") is None:
        raise SystemExit("presage_simulator is missing: apt-get install -y presage")
    from edgewise.apps.keyboard import KeyboardConfig, load_keyboard
    from edgewise.cli.run_cmd import _quiet_libraries

    _quiet_libraries()
    texts = args.text
    if not texts:
        from edgewise.data.corpora import keyboard_eval_text

        texts = [keyboard_eval_text("austen"), keyboard_eval_text("fortunes")]
    dbs = {"shipped": SHIPPED_DB, "trained": None}
    if args.presage_db != "both":
        dbs = {args.presage_db: dbs[args.presage_db]}
    if "trained" in dbs:
        dbs["trained"] = trained_db()

    cfg = KeyboardConfig(forwards_per_key=args.forwards_per_key) if args.forwards_per_key else None
    engine = load_keyboard(args.model, backend=args.backend, precision=args.precision, config=cfg)
    label = f"{Path(engine.model.name).name} {engine.model.backend} {engine.model.precision} " \
            f"{engine.size_bytes() / 1e6:.1f} MB"
    results = []
    for text in texts:
        row = {"text": str(text), "presage": {}, "keyboard": {}}
        for name, db in dbs.items():
            print(f"[{text.name}] presage, {name} DB...", file=sys.stderr)
            row["presage"][name] = run_presage(text, db, args.suggestions, args.learn)
        for insensitive in (False, True):
            print(f"[{text.name}] keyboard, {'case-insensitive' if insensitive else 'case-sensitive'}...",
                  file=sys.stderr)
            row["keyboard"]["insensitive" if insensitive else "sensitive"] = run_keyboard(
                engine, text, args.suggestions, args.learn, insensitive)
        results.append(row)

    learn = " (both learning as they type)" if args.learn else ""
    print(f"\nKeystroke savings with {args.suggestions} suggestions{learn}; KSR = (1 - (ki + ks) / kn) x 100")
    for row in results:
        kb = row["keyboard"]["sensitive"]
        print(f"\n{Path(row['text']).name}: {kb['words']:,} words, kn = {kb['kn']:,}")
        w = max(44, len(label) + 26)
        print(f"  {'system':{w}s} {'KSR %':>7s} {'kn':>7s} {'top-1':>6s} {'top-3':>6s} {'p95 ms':>7s}")
        for name, p in row["presage"].items():
            print(f"  {'presage trigram, ' + name + ' DB, -i':{w}s} {p['ksr']:7.2f} {p['kn']:7d} "
                  f"{'–':>6s} {'–':>6s} {'–':>7s}")
        for mode, r in row["keyboard"].items():
            name = f"edgewise, {label}, {'-i' if mode == 'insensitive' else 'case-sensitive'}"
            print(f"  {name:{w}s} {r['ksr']:7.2f} {r['kn']:7d} {r['top1'] * 100:5.1f}% {r['top3'] * 100:5.1f}% "
                  f"{r['latency_ms']['p95']:7.2f}")
        kns = {p["kn"] for p in row["presage"].values()} | {r["kn"] for r in row["keyboard"].values()}
        if max(kns) - min(kns) > 0.01 * max(kns):
            print(f"  WARNING: kn differs between the simulators: {sorted(kns)}")
    if args.json:
        args.json.write_text(json.dumps({"suggestions": args.suggestions, "learn": args.learn, "keyboard": label,
                                         "results": results}, indent=2))
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
