"""The `edgewise` command: one typer app, one module per verb.

Domain errors (EdgewiseError, a ValueError) become one line on stderr and exit code 2;
EDGEWISE_DEBUG=1 brings back the full traceback.
"""

from __future__ import annotations

import os
import sys

from edgewise.cli.app import app

# Each verb module registers its commands on `app` when imported.
from edgewise.cli import run_cmd  # noqa: F401,E402
from edgewise.cli import distill_cmd  # noqa: F401,E402
from edgewise.cli import serve_cmd  # noqa: F401,E402
from edgewise.cli import route_cmd  # noqa: F401,E402
from edgewise.cli import devices_cmd  # noqa: F401,E402
from edgewise.cli import optimize_cmd  # noqa: F401,E402
from edgewise.cli import keyboard_cmd  # noqa: F401,E402
from edgewise.cli import prune_cmd  # noqa: F401,E402


def main(argv: list[str] | None = None) -> None:
    from edgewise.errors import EdgewiseError

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
        import click

        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(2)
        if isinstance(e, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            sys.exit(130)
        kind = "error" if isinstance(e, EdgewiseError) else f"error ({type(e).__name__})"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"{kind}: {msg}", file=sys.stderr)
        sys.exit(2 if isinstance(e, (EdgewiseError, OSError)) else 1)
