"""Learning curves: KSR per block of N words typed, Presage and the Edgewise keyboard, each with and without learning.

A text of at least --min-words words is cut into consecutive blocks of --block words (at whitespace, so the blocks
joined give the text back) and typed block by block through four systems, as benchmarks/keyboard_vs_presage.py
runs them (3 suggestions, case-insensitive hits, like for like):

- presage: presage_simulator -i on the trained n-gram DB, not learning;
- presage + learning: the same on ONE copy of that DB, learning on, so block i is typed having learned 0..i-1;
- edgewise: the shipped keyboard, -i, not learning;
- edgewise + learning: the same with ONE PersonalStore kept across blocks.

Each block is a run of its own for every system, so its first word has no context, and every run counts presage's
initial ks = 1 and a trailing empty word (ki and kn + 1): the same for the four systems. --check also types the
whole text in one run per system and compares it with the blocks' totals (those two constants taken out).

None of the six eval texts reaches 10k words (~40k characters each), so a longer one is built from the same
held-out source: whole paragraphs from its start (the eval text is its prefix) until --min-words words.

    .venv/bin/python benchmarks/keyboard_learning_curve.py --text mobydick --text sotu --json curve.json --plot curve.png
    .venv/bin/python benchmarks/keyboard_learning_curve.py --text mobydick --max-words 2000 --block 500 --check
    .venv/bin/python benchmarks/keyboard_learning_curve.py --merge a.json b.json --json both.json --plot both.png

--resume goes on after the blocks the JSON already holds: the learners' state after every block is kept in
<json>.work/<text>/ (a copy of Presage's learning DB and of the keyboard's personal store), so a run spread over
sessions gives the curve one uninterrupted run gives.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from keyboard_vs_presage import (BenchSetupError, PeerFailed, build_dbs, check_mix, make_engine,
                                 missing_dependencies, resolve_dbs, run_keyboard, run_presage)

# key -> (label in tables and plots, kind, learning)
SYSTEMS = {"presage": ("Presage", "presage", False),
           "presage_learn": ("Presage + learning", "presage", True),
           "edgewise": ("Edgewise -i", "keyboard", False),
           "edgewise_learn": ("Edgewise -i + learning", "keyboard", True)}
GAINS = {"gain_presage": ("presage_learn", "presage"), "gain_edgewise": ("edgewise_learn", "edgewise")}
KEEP = ("ksr", "ki", "ks", "kn", "wall_s", "personal_words")  # the figures a block row keeps


# ---- texts and blocks ------------------------------------------------------------------------------------------------

def split_blocks(text: str, n: int) -> list[str]:
    """Consecutive pieces of `n` whitespace-separated words (the last may be shorter), cut just before a word starts,
    so "".join(blocks) == text and each block carries the spaces after its last word."""
    from edgewise.errors import EdgewiseError

    if not isinstance(n, int) or n < 1:
        raise EdgewiseError(f"block size must be a positive number of words, got {n!r}: pass e.g. --block 1000")
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    if not starts:
        return []
    bounds = [0, *starts[n::n], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


def long_text(name: str, min_words: int) -> Path:
    """The eval text `name` if it has `min_words` words, else a longer one from its source (cached)."""
    from edgewise.data.eval_texts import EVAL, keyboard_eval_text
    from edgewise.home import edgewise_home
    from edgewise.staging import write_text_atomic

    short = keyboard_eval_text(name)
    if len(short.read_text(encoding="utf-8").split()) >= min_words:
        return short
    out = edgewise_home() / "corpora" / f"keyboard-curve-{name}-{min_words}w.txt"
    if not out.exists():
        paras, n = [], 0
        for p in EVAL.get(name).paragraphs():
            paras.append(p)
            n += len(p.split())
            if n >= min_words:
                break
        if n < min_words:
            raise BenchSetupError(f"{name}'s source has only {n:,} words, under --min-words {min_words:,}: "
                                  "pass a smaller --min-words or another --text")
        write_text_atomic(out, "".join(p + "\n" for p in paras))
    return out


def resolve_text(value: str, min_words: int) -> tuple[str, Path]:
    from edgewise.data.eval_texts import EVAL_TEXTS
    from edgewise.errors import EdgewiseError

    if Path(value).is_file():
        return Path(value).name, Path(value).resolve()
    if value not in EVAL_TEXTS:
        raise BenchSetupError(f"--text {value!r} is neither an eval text ({', '.join(EVAL_TEXTS)}) nor a file")
    try:
        return value, long_text(value, min_words)
    except EdgewiseError as e:
        raise BenchSetupError(f"cannot build the text {value!r}: {e}") from None


# ---- the four systems, each a generator over the blocks that carries its learning ------------------------------------

def _kept(figures: dict) -> dict:
    return {k: figures[k] for k in KEEP if k in figures}


def _safe(run: Callable[[Path], dict], f: Path) -> dict:
    try:
        return {**_kept(run(f)), "ok": True}
    except PeerFailed as e:  # presage_simulator aborts on some inputs: one failed block, the curve goes on
        return {"ok": False, "error": str(e)}


LEARNING_DB = "learning.db"  # Presage's learning copy in the work folder


def drop_sqlite(path: Path) -> None:
    """Remove a SQLite file with its journal, WAL and shared memory: a stopped run's journal or WAL would otherwise
    roll back or replay onto the copy put in its place."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def presage_blocks(files: list[Path], db: Path, k: int, learn: bool, workdir: Path,
                   start_db: Path | None = None) -> Iterator[dict]:
    """Presage over the blocks. Learning, it types them all on ONE copy (`workdir/learning.db`) of `start_db` (what
    earlier blocks taught it, on a resumed run) or of `db`: what block i learned is in the DB when block i + 1 runs."""
    if learn:
        drop_sqlite(workdir / LEARNING_DB)
        db = Path(shutil.copy(start_db or db, workdir / LEARNING_DB))
    for f in files:
        yield _safe(lambda t: run_presage(t, db, k, learn, copy_db=False), f)


def keyboard_blocks(engine, files: list[Path], k: int, learn: bool, store_path: str | Path = ":memory:"
                    ) -> Iterator[dict]:
    """The keyboard over the blocks; learning, with ONE PersonalStore (at `store_path`, a file on a resumable run)."""
    from edgewise.apps.keyboard import PersonalStore

    store = PersonalStore(store_path) if learn else None  # one store for the whole text
    for f in files:
        yield _safe(lambda t: run_keyboard(engine, t, k, learn, True, personal=store), f)


def block_streams(engine, files: list[Path], db: Path, k: int, workdir: Path,
                  learned: "Learned | None" = None) -> dict[str, Iterator[dict]]:
    """Each system over `files`; with `learned`, the learning ones go on from what it kept (--resume)."""
    start_db = learned.presage() if learned else None
    store = learned.personal() if learned else ":memory:"
    return {key: presage_blocks(files, db, k, learn, workdir, start_db) if kind == "presage"
            else keyboard_blocks(engine, files, k, learn, store) for key, (_, kind, learn) in SYSTEMS.items()}


class Learned:
    """What the two learning systems hold after the blocks done, kept in `work` so that --resume goes on from there.

    After block i: the JSON row is saved, then `presage-after-i.db` and `personal-after-i.sqlite` are written, then
    `state.json` says i + 1 blocks, then the snapshots of block i - 1 go. A run stopped anywhere in between finds
    `state.json`'s count and its snapshots intact, and drops any JSON row past that count."""

    def __init__(self, work: Path):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.state = work / "state.json"
        self.live_presage = work / LEARNING_DB  # presage_blocks's copy
        self.live_personal = work / "personal.sqlite"

    def blocks(self) -> int:
        return json.loads(self.state.read_text())["blocks"] if self.state.is_file() else 0

    def _snap(self, kind: str, i: int) -> Path:
        return self.work / (f"presage-after-{i:03d}.db" if kind == "presage" else f"personal-after-{i:03d}.sqlite")

    def presage(self) -> Path | None:
        n = self.blocks()
        return self._snap("presage", n - 1) if n and self._snap("presage", n - 1).is_file() else None

    def personal(self) -> Path:
        """The store to learn into: the live file, restored from the last snapshot (or new)."""
        drop_sqlite(self.live_personal)
        if (n := self.blocks()) and self._snap("personal", n - 1).is_file():
            shutil.copy(self._snap("personal", n - 1), self.live_personal)
        return self.live_personal

    def keep(self, i: int) -> None:
        """Snapshot both learners after block i (call once block i's row is saved)."""
        from edgewise.staging import write_text_atomic

        if self.live_presage.is_file():
            shutil.copy(self.live_presage, self._snap("presage", i))
        if self.live_personal.is_file():
            src, dst = sqlite3.connect(self.live_personal), sqlite3.connect(self._snap("personal", i))
            try:
                src.backup(dst)  # a consistent copy even while the store's own connection is open
            finally:
                src.close()
                dst.close()
        write_text_atomic(self.state, json.dumps({"blocks": i + 1}) + "\n")
        for kind in ("presage", "personal"):
            self._snap(kind, i - 1).unlink(missing_ok=True)


# ---- figures ---------------------------------------------------------------------------------------------------------

def add_gains(rows: list[dict]) -> None:
    """Per block: learning minus no-learning, and its running mean over blocks 0..i (None once a block failed)."""
    for gain, (learning, plain) in GAINS.items():
        seen: list[float] = []
        for row in rows:
            a, b = row["systems"][learning], row["systems"][plain]
            g = round(a["ksr"] - b["ksr"], 3) if a["ok"] and b["ok"] else None
            seen = seen + [g] if g is not None and seen is not None else None
            row[gain] = g
            row[f"{gain}_cum_mean"] = round(sum(seen) / len(seen), 3) if seen else None


def totals(blocks: list[dict]) -> dict | None:
    """The blocks' keystrokes summed; `as_one_run` takes out the per-run ks = 1 and trailing empty word."""
    if not blocks or not all(b["ok"] for b in blocks):
        return None
    ki, ks, kn = (sum(b[x] for b in blocks) for x in ("ki", "ks", "kn"))
    extra = len(blocks) - 1

    def ksr(ki: int, ks: int, kn: int) -> float:
        return round((1 - (ki + ks) / kn) * 100, 3)

    return {"ki": ki, "ks": ks, "kn": kn, "ksr": ksr(ki, ks, kn),
            "as_one_run": {"ki": ki - extra, "ks": ks - extra, "kn": kn - extra,
                           "ksr": ksr(ki - extra, ks - extra, kn - extra)}}


def whole_runs(engine, text: Path, db: Path, k: int) -> dict[str, dict]:
    """Each system on the whole text in one run, learning from scratch: --check's reference."""
    out = {}
    for key, (label, kind, learn) in SYSTEMS.items():
        print(f"  whole text: {label}...", file=sys.stderr, flush=True)
        run = (lambda t: run_presage(t, db, k, learn)) if kind == "presage" else \
            (lambda t: run_keyboard(engine, t, k, learn, True))
        out[key] = _safe(run, text)
    return out


def check_rows(whole: dict[str, dict], tot: dict[str, dict | None]) -> dict[str, dict]:
    out = {}
    for key, w in whole.items():
        t = tot[key]
        if not w["ok"] or t is None:
            out[key] = {"ok": False}
            continue
        one = t["as_one_run"]
        out[key] = {"ok": True, "whole": _kept(w), "blocks_as_one_run": one,
                    "ksr_diff": round(one["ksr"] - w["ksr"], 3),
                    "diff_ki": one["ki"] - w["ki"], "diff_ks": one["ks"] - w["ks"], "diff_kn": one["kn"] - w["kn"]}
    return out


# ---- one text --------------------------------------------------------------------------------------------------------

def _fmt(x: float | None) -> str:
    return "failed" if x is None else f"{x:+.2f}"


def print_block(row: dict) -> None:
    ksrs = " ".join(f"{s['ksr']:8.2f}" if s["ok"] else f"{'failed':>8s}" for s in row["systems"].values())
    print(f"  {row['block']:5d} {row['words_typed']:7,d} {ksrs} {_fmt(row['gain_presage']):>8s} "
          f"{_fmt(row['gain_presage_cum_mean']):>8s} {_fmt(row['gain_edgewise']):>8s} "
          f"{_fmt(row['gain_edgewise_cum_mean']):>8s}", flush=True)


def run_text(label: str, path: Path, args, engine, db: Path, save: Callable[[dict], None],
             before: dict | None = None) -> dict:
    """Type one text block by block. With args.resume, the learners' state lives in a work folder beside the JSON and
    `before` (this text's entry in an earlier JSON) gives the blocks already done: typing goes on after them."""
    pieces = split_blocks(path.read_text(encoding="utf-8"), args.max_words)
    if not pieces:
        raise BenchSetupError(f"{path} has no words to type")
    text = pieces[0]
    blocks = split_blocks(text, args.block)
    out = {"text": label, "path": str(path), "words": len(text.split()), "chars": len(text), "block": args.block,
           "rows": []}
    print(f"\n{label}: {out['words']:,} words in {len(blocks)} blocks of {args.block:,} ({path})")
    print(f"  {'block':>5s} {'words':>7s} " + " ".join(f"{k[:8]:>8s}" for k in SYSTEMS)
          + f" {'gain P':>8s} {'mean P':>8s} {'gain E':>8s} {'mean E':>8s}", flush=True)
    with tempfile.TemporaryDirectory(prefix="keyboard-curve-") as tmp:
        learned = Learned(work_dir(args, label)) if args.resume else None
        workdir = learned.work if learned else Path(tmp)
        if learned and before is not None:
            if any(before.get(k) != out[k] for k in ("path", "words", "block")):
                raise BenchSetupError(f"{args.json} holds another run of {label} (text or blocks differ): "
                                      "pass another --json, or run without --resume")
            out["rows"] = before["rows"][:learned.blocks()]
        elif learned and learned.blocks():
            raise BenchSetupError(f"{learned.work} holds learning from a run {args.json} does not record: "
                                  "delete that folder, or pass the JSON it belongs to")
        done = len(out["rows"])
        if done:
            print(f"  (resumed: blocks 1-{done} from {args.json})", flush=True)
        files = []
        for i, b in enumerate(blocks[done:], start=done):
            files.append(workdir / f"block-{i:03d}.txt")
            files[-1].write_text(b, encoding="utf-8")
        streams = block_streams(engine, files, db, args.suggestions, workdir, learned)
        typed = sum(len(b.split()) for b in blocks[:done])
        for i, b in enumerate(blocks[done:], start=done):  # the four systems block by block
            print(f"[{label}] block {i + 1}/{len(blocks)}...", file=sys.stderr, flush=True)
            typed += len(b.split())
            out["rows"].append({"block": i, "words": len(b.split()), "words_typed": typed,
                                "systems": {key: next(s) for key, s in streams.items()}})
            add_gains(out["rows"])
            save(out)
            if learned:
                learned.keep(i)
            print_block(out["rows"][-1])
        out["totals"] = {key: totals([r["systems"][key] for r in out["rows"]]) for key in SYSTEMS}
        if args.check:
            whole = Path(tmp) / "whole.txt"
            whole.write_text(text, encoding="utf-8")
            out["check"] = check_rows(whole_runs(engine, whole, db, args.suggestions), out["totals"])
    save(out)
    return out


def work_dir(args, label: str) -> Path:
    """Where a resumable run keeps its learners' state: beside the JSON, one folder per text."""
    return args.json.parent / f"{args.json.stem}.work" / re.sub(r"[^\w.-]", "_", label)


# ---- plot, command line ----------------------------------------------------------------------------------------------

def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(6 * len(results), 8), squeeze=False)
    style = {"presage": ("tab:blue", "--"), "presage_learn": ("tab:blue", "-"), "edgewise": ("tab:red", "--"),
             "edgewise_learn": ("tab:red", "-")}
    for col, res in enumerate(results):
        x = [r["words_typed"] / 1000 for r in res["rows"]]
        top, bottom = axes[0][col], axes[1][col]
        for key, (name, _, _) in SYSTEMS.items():
            y = [r["systems"][key]["ksr"] if r["systems"][key]["ok"] else None for r in res["rows"]]
            top.plot(x, y, marker="o", color=style[key][0], linestyle=style[key][1], label=name)
        for gain, color in (("gain_presage", "tab:blue"), ("gain_edgewise", "tab:red")):
            who = "Presage" if gain == "gain_presage" else "Edgewise"
            bottom.plot(x, [r[gain] for r in res["rows"]], marker="o", color=color, label=f"{who}: block gain")
            bottom.plot(x, [r[f"{gain}_cum_mean"] for r in res["rows"]], color=color, linestyle=":",
                        label=f"{who}: mean gain so far")
        bottom.axhline(0, color="grey", linewidth=0.5)
        top.set_title(f"{res['text']} ({res['words']:,} words, blocks of {res['block']:,})")
        top.set_ylabel("KSR % in the block")
        bottom.set_ylabel("learning gain, KSR points")
        bottom.set_xlabel("thousand words typed (end of block)")
        top.legend(fontsize=8)
        bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", action="append", help="an eval text name (lengthened to --min-words from its source) "
                    "or a file (repeatable); default: mobydick and sotu")
    ap.add_argument("--block", type=int, default=1000, help="words per block (default 1000)")
    ap.add_argument("--min-words", type=int, default=10_000, help="an eval text shorter than this is lengthened")
    ap.add_argument("--max-words", type=int, default=None, help="type the first N words (default: --min-words, "
                    "so a lengthened text is whole blocks, not a last block of a few words)")
    ap.add_argument("--check", action="store_true", help="also type the whole text in one run per system and "
                    "compare with the blocks' totals")
    ap.add_argument("--presage-db", default="trained", help="trained (default), shipped, or an n-gram DB file")
    ap.add_argument("--presage-corpora", default=None, help="train Presage's DB on this corpus mix (e.g. keyboard: "
                    "the 45 corpora); default: the student's training corpora")
    ap.add_argument("--resume", action="store_true", help="go on after the blocks --json already holds; the "
                    "learners' state is kept after every block in a folder beside the JSON (<json>.work)")
    ap.add_argument("--model", default=None, help="keyboard model (default: models/keyboard-student)")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--precision", default="int4")
    ap.add_argument("--ngram", default="auto")
    ap.add_argument("--suggestions", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path("keyboard_learning_curve.json"))
    ap.add_argument("--plot", type=Path, default=None, help="a PNG of KSR per block and the learning gains")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, help="run nothing: join these JSON files (one "
                    "run per text, run side by side) into --json, and draw --plot")
    args = ap.parse_args(argv)
    args.forwards_per_key, args.ngram_weights = None, None  # make_engine's other knobs: the shipped defaults
    args.max_words = args.max_words or args.min_words
    for name in ("block", "min_words", "max_words", "suggestions"):
        if getattr(args, name) < 1:
            raise BenchSetupError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def merge(files: list[Path], out: Path, png: Path | None) -> int:
    from edgewise.staging import write_text_atomic

    runs = [json.loads(f.read_text()) for f in files]
    merged = {**{k: v for k, v in runs[0].items() if k not in ("command", "texts")},
              "commands": [r["command"] for r in runs], "texts": [t for r in runs for t in r["texts"]]}
    write_text_atomic(out, json.dumps(merged, indent=2) + "\n")
    if png:
        plot(merged["texts"], png)
    return 0


def run(args: argparse.Namespace) -> int:
    from edgewise.cli.run_cmd import _quiet_libraries
    from edgewise.errors import EdgewiseError
    from edgewise.staging import write_text_atomic

    names = args.text or ["mobydick", "sotu"]
    dbs = resolve_dbs([args.presage_db])
    if len(dbs) != 1:
        raise BenchSetupError(f"--presage-db takes one DB here (trained, shipped or a file), got {args.presage_db!r}")
    missing = missing_dependencies([n for n in names if not Path(n).is_file()], list(dbs.values()))
    if missing:
        raise BenchSetupError("\n".join(missing))
    texts = [resolve_text(n, args.min_words) for n in names]
    check_mix(args.presage_corpora)
    (db,) = build_dbs(dbs, args.presage_corpora).values()
    _quiet_libraries()
    try:
        engine = make_engine(args)
    except EdgewiseError as e:
        raise BenchSetupError(f"cannot load the keyboard: {e}") from None
    earlier = {}
    if args.resume and args.json.is_file():
        earlier = {t["text"]: t for t in json.loads(args.json.read_text()).get("texts", [])}
    meta = {"command": " ".join(sys.argv), "suggestions": args.suggestions, "block": args.block,
            "presage_db": str(db), "presage_corpora": args.presage_corpora or "student", "keyboard": f"{Path(engine.model.name).name} {engine.model.backend} "
            f"{engine.model.precision}{' + n-gram' if engine.ngram is not None else ''}",
            "systems": {k: v[0] for k, v in SYSTEMS.items()}}
    results: list[dict] = []

    def save(current: dict) -> None:
        done = [r for r in results if r is not current]
        write_text_atomic(args.json, json.dumps({**meta, "texts": [*done, current]}, indent=2) + "\n")

    for label, path in texts:
        results.append(run_text(label, path, args, engine, db, save, earlier.get(label)))
    if args.plot:
        plot(results, args.plot)
    failed = sum(not s["ok"] for res in results for r in res["rows"] for s in r["systems"].values())
    print(f"\nwrote {args.json}{' and ' + str(args.plot) if args.plot else ''}: {failed} failed block runs",
          file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """0: every block ran; 1: some block runs failed (recorded in the JSON); 2: the run could not start."""
    try:
        args = parse_args(argv)
        return merge(args.merge, args.json, args.plot) if args.merge else run(args)
    except BenchSetupError as e:
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
