"""`edgewise keyboard`: the on-device keyboard demo (terminal or --web), its evaluation, and its personal store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgewise.cli.app import app
from edgewise.cli.run_cmd import _quiet_libraries
from edgewise.errors import EdgewiseError

err = Console(stderr=True)
# edgewise.apps.keyboard and its modules are imported inside the commands: they load numpy and the runtime, and
# every command module loads when `edgewise` starts.
keyboard_app = typer.Typer(help="On-device next-word keyboard: demo, evaluation, personal store.",
                           invoke_without_command=True, no_args_is_help=False)
app.add_typer(keyboard_app, name="keyboard")

MODEL_HELP = "Keyboard LM: an HF folder, alias or path (default: models/keyboard-student, else smollm2-135m)."
PRECISION_HELP = "auto | fp32 | int8 | int4. auto: int4 on ort (3 MB, same KSR as fp32), fp32 on torch."
NGRAM_HELP = ("Count model mixed with the LM: auto (the one shipped beside the model, models/keyboard-ngram; "
              "a warning says when there is none), none (the LM alone), or a folder from "
              "`edgewise keyboard build-ngram`.")
STORE_HELP = "Personal store (SQLite). Default: $EDGEWISE_HOME/keyboard/personal.sqlite."


def _quiet() -> None:
    _quiet_libraries()


def _engine(model: Optional[str], backend: str, precision: str, store, forwards: int | None = None,
            ngram: str = "auto"):
    from edgewise.apps.keyboard import KeyboardConfig, load_keyboard

    cfg = KeyboardConfig(forwards_per_key=forwards) if forwards else None
    # precision "auto" is resolved by load_keyboard; a fallback (no student, no n-gram) is one warning on stderr.
    return load_keyboard(model, backend=backend, precision=precision, personal=store, config=cfg, ngram=ngram)


@keyboard_app.callback()
def keyboard(
    ctx: typer.Context,
    web: bool = typer.Option(False, "--web", help="Serve the keyboard page on 127.0.0.1 instead of the terminal UI."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port for --web (loopback only)."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    backend: str = typer.Option("ort", help="ort | torch | litert (an export-litert decoder)"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    no_learn: bool = typer.Option(False, "--no-learn", help="Do not learn from what is typed."),
    forwards: Optional[int] = typer.Option(None, "--forwards-per-key", min=1,
                                           help="Forward passes one keystroke may run (default 2)."),
    ngram: str = typer.Option("auto", "--ngram", help=NGRAM_HELP),
) -> None:
    """Type with next-word suggestions: a terminal UI, or a browser page with --web."""
    if ctx.invoked_subcommand is not None:
        return
    _quiet()
    from edgewise.apps.keyboard import PersonalStore
    from edgewise.apps.keyboard.session import TypingSession

    personal = PersonalStore(store)
    err.print(f"[dim]loading the keyboard model on {backend}…[/dim]")
    engine = _engine(model, backend, precision, personal, forwards, ngram)
    label = Path(engine.model.name).name or engine.model.name
    if web:
        from edgewise.apps.keyboard.web import serve

        err.print(f"keyboard page: [bold]http://127.0.0.1:{port}/[/bold]  (loopback only; Ctrl-C stops)")
        serve(engine, port=port, learn=not no_learn, model_label=label)
        return
    from edgewise.apps.keyboard.tui import run_tui

    status = f"{label} · {backend} · {engine.size_bytes() / 1e6:.1f} MB · " + \
        ("learning locally" if not no_learn else "not learning")
    text = run_tui(TypingSession(engine, learn=not no_learn), status)
    if text:
        print(text)


@keyboard_app.command("eval")
def eval_cmd(
    text: Path = typer.Option(..., "--text", exists=True, dir_okay=False, readable=True,
                              help="UTF-8 text to type (text the model never trained on)."),
    suggestions: int = typer.Option(3, "--suggestions", min=1, max=10, help="Suggestions per keystroke."),
    learn: bool = typer.Option(False, "--learn", help="Adapt as it types (a fresh in-memory personal store)."),
    model: Optional[str] = typer.Option(None, "--model", help=MODEL_HELP),
    backend: str = typer.Option("ort", help="ort | torch | litert (an export-litert decoder)"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    forwards: Optional[int] = typer.Option(None, "--forwards-per-key", min=1,
                                           help="Forward passes one keystroke may run (default 2)."),
    insensitive: bool = typer.Option(False, "--insensitive", help="Case-insensitive hits (presage_simulator -i)."),
    repeat: bool = typer.Option(False, "--repeat-suggestions",
                                help="Re-offer passed-over suggestions within a word (Presage's default: no)."),
    max_words: Optional[int] = typer.Option(None, "--max-words", min=1, help="Stop after this many words."),
    ngram: str = typer.Option("auto", "--ngram", help=NGRAM_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Keystroke savings (KSR, as presage_simulator computes it), accuracy and per-keystroke latency."""
    _quiet()
    from edgewise.apps.keyboard import PersonalStore
    from edgewise.apps.keyboard.evaluate import evaluate

    try:
        body = text.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EdgewiseError(f"{text} is not UTF-8 text: convert it first (iconv -t UTF-8)") from None
    personal = PersonalStore(":memory:") if learn else None
    engine = _engine(model, backend, precision, personal, forwards, ngram)
    with Progress(TextColumn("typing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("eval", total=None)
        report = evaluate(engine, body, suggestions=suggestions, learn=learn, insensitive=insensitive,
                          repeat=repeat, max_words=max_words,
                          progress=lambda n, total: bar.update(task, completed=n, total=total))
    d = report.as_dict()
    d["text"] = str(text)
    if as_json:
        print(json.dumps(d, indent=2))
        return
    lat = report.latency_ms
    print(f"KSR {report.ksr:.2f}%  (ki {report.ki}, ks {report.ks}, kn {report.kn}; {report.words} words)")
    print(f"next word: top-1 {report.top1:.1%}" + (f", top-3 {report.top3:.1%}" if report.top3 is not None else ""))
    print(f"completion: after 1 letter {report.completion_1:.1%}, after 2 letters {report.completion_2:.1%}")
    print(f"latency per keystroke: p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms "
          f"(cpu p95 {report.cpu_ms['p95']} ms; {report.forwards_per_key} forwards/key)")
    print(f"model: {report.model} on {report.backend} {report.precision}, {report.model_bytes / 1e6:.2f} MB")


@keyboard_app.command("build-ngram")
def build_ngram_cmd(
    out: Path = typer.Option(Path("models/keyboard-ngram"), "--out", help="Folder to write (replaced if present)."),
    corpus: Optional[list[str]] = typer.Option(None, "--corpus", help="Packaged corpus (repeatable; default: the "
                                               "keyboard's four training corpora, held-out files excluded)."),
    text: Optional[list[Path]] = typer.Option(None, "--text", exists=True, dir_okay=False, readable=True,
                                              help="Extra UTF-8 training text (repeatable)."),
    min_count: str = typer.Option("1,2", "--min-count", help="Smallest kept count for bigrams,trigrams[,4-grams"
                                  "[,5-grams]]: the size knob, and the order is one more than the counts given "
                                  "(1,2 keeps every bigram and the trigrams seen twice; 1,2,2 builds a 4-gram)."),
    max_vocab: int = typer.Option(65_535, "--max-vocab", min=1_000, max=65_535, help="Words kept, most used first."),
    web_counts: float = typer.Option(0.0, "--web-counts", min=0.0, max=100.0,
                                     help="Merge wordsegment's web unigram/bigram counts, weighted this many times "
                                          "the text's own counts (0: text only)."),
) -> None:
    """Build the keyboard's Kneser-Ney count model (a trigram by default, up to a 5-gram) from packaged corpora
    and your own text."""
    _quiet()
    from edgewise.apps.keyboard.ngram_build import NgramConfig, build_from_files
    from edgewise.data.corpora import training_texts

    try:
        cutoffs = tuple(int(x) for x in min_count.split(","))
    except ValueError:
        raise EdgewiseError(f"--min-count takes comma-separated integers like 1,2, got {min_count!r}") from None
    try:
        config = NgramConfig(order=len(cutoffs) + 1, min_count=cutoffs, max_vocab=max_vocab,
                             external_weight=web_counts)
    except ValueError as e:
        raise EdgewiseError(str(e)) from None
    files = training_texts(tuple(corpus)) if corpus else training_texts()
    files += list(text or [])
    external = None
    if web_counts > 0:
        from edgewise.data.corpora import wordsegment_counts

        external = wordsegment_counts()
    with Progress(TextColumn("counting"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task("count", total=len(files))
        try:
            model = build_from_files(files, config, progress=lambda n, total: bar.update(task, completed=n),
                                     external=external)
        except ValueError as e:
            raise EdgewiseError(str(e)) from None
    model.save(out)
    sizes = model.meta["sizes"]
    print(f"wrote {out}: {model.meta['training_words']:,} training words, {len(model.vocab) - 1:,} words, "
          + ", ".join(f"{v['ngrams']:,} {k}-grams" for k, v in sizes.items())
          + f", {sum(f.stat().st_size for f in out.iterdir()) / 1e6:.2f} MB")


@keyboard_app.command("forget")
def forget_cmd(store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP)) -> None:
    """Erase everything the keyboard learned on this machine."""
    from edgewise.apps.keyboard import PersonalStore

    s = PersonalStore(store)
    n = s.total_words
    s.forget()
    s.close()
    print(f"forgot {n} learned words ({s.path})", file=sys.stderr)


@keyboard_app.command("export")
def export_cmd(
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the JSON here instead of stdout."),
) -> None:
    """Dump what the keyboard learned, as JSON."""
    from edgewise.apps.keyboard import PersonalStore

    s = PersonalStore(store)
    data = s.export_json()
    s.close()
    if out is None:
        print(data)
        return
    if out.exists():
        raise EdgewiseError(f"{out} exists: choose another --out or remove it first")
    out.write_text(data + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
