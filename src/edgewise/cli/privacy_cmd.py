"""`edgewise privacy ...`: show what PII detection finds in a text, and train the on-device PII tagger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgewise.cli.app import app
from edgewise.cli.route_cmd import route_app

# edgewise.privacy is imported inside the commands: every command module loads when `edgewise` starts, and the
# tagger's training pulls in torch and transformers.

privacy_app = typer.Typer(help="PII detection and the on-device tagger: check a text, train the tagger.",
                          no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("detect")
def detect_cmd(text: str = typer.Argument(..., help="Text to scan."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Show what the privacy policy would redact in TEXT: validated patterns (e-mail, phone, card, IBAN, IP, SSN,
    NINO) and the on-device tagger's person names and street addresses (EDGEWISE_PII_MODEL=off: patterns only)."""
    from edgewise.privacy.base import available_kinds
    from edgewise.privacy.pii import detect, redact

    red, _ = redact(text)
    kinds = [e.kind for e in detect(text)]
    if as_json:
        typer.echo(json.dumps({"redacted": red, "kinds": kinds, "detectors": available_kinds()}))
    else:
        typer.echo(red)
        typer.echo(f"found: {', '.join(kinds) or 'nothing'} (detectors: {', '.join(available_kinds())})")


# `edgewise route pii` moved here; the old name stays, hidden, so scripts that call it keep working.
route_app.command("pii", hidden=True, help="Moved: `edgewise privacy detect TEXT`.")(detect_cmd)


@privacy_app.command("train")
def train_cmd(recipe: Path = typer.Option(Path("recipes/pii-tagger.toml"), "--recipe",
                                          help="TOML recipe whose pii-tagger table sets the sizes."),
              out: Path | None = typer.Option(None, "--out", help="Tagger folder to write; default: the recipe's "
                                              "`out` (the packaged src/edgewise/data/pii-tagger). An existing "
                                              "tagger there is replaced only once the new one is complete.")):
    """Train the person-name and street-address tagger on synthetic text; export it as int8 ONNX."""
    from edgewise.privacy.train import PiiTrainConfig, train

    cfg = PiiTrainConfig.from_file(recipe)
    train(cfg, out, log=typer.echo)
