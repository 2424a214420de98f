"""The `edgewise` command: one typer app, one module per verb.

Domain errors (EdgewiseError, a ValueError) become one line on stderr and exit code 2;
EDGEWISE_DEBUG=1 brings back the full traceback.
"""

from __future__ import annotations

import os
import sys

from edgewise import plugins
from edgewise.cli.app import app
from edgewise.errors import EdgewiseError

# Each verb module registers its commands on `app` when imported: the built-in ones are listed under "cli verb" in
# edgewise.plugins, and a plugin's entry point module may register its own verbs the same way.
plugins.load("cli verb")


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit as e:
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the CLI boundary: one line, never a traceback
        if os.environ.get("EDGEWISE_DEBUG") == "1":
            raise
        # typer 0.29 vendors its own click (typer._click), so match click's exceptions by their class names in
        # whichever copy raised them rather than by the click package's classes.
        names = {c.__name__ for c in type(e).__mro__}
        if "Exit" in names and hasattr(e, "exit_code"):
            sys.exit(e.exit_code)
        if "ClickException" in names:
            e.show()
            sys.exit(getattr(e, "exit_code", 2) or 2)
        if "Abort" in names:
            print("aborted", file=sys.stderr)
            sys.exit(130)
        kind = "error" if isinstance(e, EdgewiseError) else f"error ({type(e).__name__})"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"{kind}: {msg}", file=sys.stderr)
        sys.exit(2 if isinstance(e, (EdgewiseError, OSError)) else 1)
