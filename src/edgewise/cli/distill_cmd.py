"""`edgewise distill`: train a small student from a teacher by logit knowledge distillation."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console

from edgewise.cli.app import app
from edgewise.errors import EdgewiseError

err = Console(stderr=True)
# edgewise.compress.distill is imported inside the command: it loads torch and transformers (seconds), and every
# command module loads when `edgewise` starts.


@app.command()
def distill(
    recipe: Optional[str] = typer.Option(None, "--recipe", help="A TOML recipe (a distill and a student table); "
                                         "the flags below override it."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher model (alias, path or hub id)."),
    student_config: Optional[str] = typer.Option(None, "--student-config",
                                                 help="Student LlamaConfig .json, or a recipe .toml (its student table)."),
    data: list[str] = typer.Option([], "--data", help="Training text file, or corpus:NAME (repeatable)."),
    out: Optional[str] = typer.Option(None, "--out", help="Output HF folder for the student."),
    steps: Optional[int] = typer.Option(None, "--steps"),
    seq_len: Optional[int] = typer.Option(None, "--seq-len"),
    batch: Optional[int] = typer.Option(None, "--batch"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Weight of the hard-label loss (1 = no KD)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="KD softmax temperature."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size",
                                             help="Cut the teacher's vocabulary to its N most used tokens."),
    teacher_windows: Optional[int] = typer.Option(None, "--teacher-windows",
                                                  help="Windows that get teacher targets (default all)."),
    teacher_samples: Optional[int] = typer.Option(None, "--teacher-samples",
                                                  help="Sequence-level KD: teacher samples added to the data."),
    threads: Optional[int] = typer.Option(None, "--threads"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start over, replacing the output and checkpoints."),
) -> None:
    """Distil a teacher LM into a small Llama student (logit KD + hard labels); resumable, Ctrl-C safe."""
    from edgewise.compress.distill import DistillConfig, distill as run_distill, expand_data, load_recipe, \
        student_config_from_file
    overrides = dict(teacher=teacher, out=out, steps=steps, seq_len=seq_len, batch=batch, lr=lr, alpha=alpha,
                     temperature=temperature, vocab_size=vocab_size, teacher_windows=teacher_windows,
                     teacher_samples=teacher_samples, threads=threads, resume=resume or None, force=force or None,
                     student=student_config_from_file(student_config) if student_config else None,
                     data=expand_data(data) if data else None)
    if recipe:
        cfg = load_recipe(recipe, **overrides)
    else:
        given = {"--teacher": teacher, "--student-config": student_config, "--out": out, "--data": data}
        missing = [flag for flag, value in given.items() if not value]
        if missing:
            raise EdgewiseError(f"missing {', '.join(missing)}: pass them, or a --recipe FILE")
        cfg = DistillConfig(**{k: v for k, v in overrides.items() if v is not None})
    try:
        result = run_distill(cfg)
    except KeyboardInterrupt:
        err.print(f"interrupted: the last checkpoint is kept in {cfg.work_path}; "
                  "rerun with --resume to continue")
        sys.exit(130)
    ev = result.eval
    err.print(f"[green]student[/green] {result.out} ({result.params / 1e6:.2f}M params, {result.step} steps, "
              f"{result.tokens:,} tokens, {result.train_seconds / 60:.1f} min)"
              + (f"; held-out perplexity {ev['ppl_word']:.1f}/word" if ev else ""))
