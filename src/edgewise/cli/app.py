"""The shared typer app object; verb modules import it and register commands (edgewise.plugins imports them)."""

import typer

app = typer.Typer(
    name="edgewise",
    help="Compress, prove and run AI models on edge devices, fully offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
