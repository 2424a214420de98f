"""`python -m edgewise.bench.child '<json spec>'`: measure one model in this fresh process, print one JSON line.

A fresh process per variant keeps peak RSS and load time honest: nothing the parent or an earlier variant loaded is
counted, and nothing is shared (an onnxruntime arena, a torch thread pool) between variants.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

from edgewise.bench.measure import measure
from edgewise.errors import EdgewiseError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore")
    spec = json.loads(argv[0])

    try:
        out = measure(spec)
    except EdgewiseError as e:
        print(json.dumps({"error": str(e).splitlines()[0]}))
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
