"""The one plugin loader: built-ins from one explicit list, then every `edgewise` entry point.

A registry calls `load(kind)` before it looks anything up, so registering a method, backend, task or CLI verb is one
module that registers on import, listed in BUILTINS or named by an installed distribution's entry point:

    [project.entry-points.edgewise]
    halfbit = "edgewise_halfbit"             # a module: importing it registers
    sparse = "edgewise_sparse:register"      # module:function: imported, then called with no arguments

Built-ins load first and their errors propagate: a broken built-in is our bug and must fail loudly. A third-party
plugin that fails is skipped with one warning line naming it (see `failed()`). docs/plugins.md has the guide.
"""

from __future__ import annotations

import importlib
import sys
import threading
from importlib.metadata import entry_points

GROUP = "edgewise"

# Registry kind (the string each Registry is built with) -> the built-in modules that register into it, in order.
# An entry "module:function" is imported, then the function is called (for registrations that check files first).
BUILTINS: dict[str, tuple[str, ...]] = {
    "backend": ("edgewise.runtime.ort_backend", "edgewise.runtime.torch_backend",
                "edgewise.runtime.llamacpp_backend", "edgewise.runtime.litert_backend"),
    "draft source": ("edgewise.runtime.drafts",),
    "compression method": ("edgewise.compress.methods.baselines", "edgewise.compress.methods.int8_ort",
                           "edgewise.compress.methods.weight_only", "edgewise.compress.methods.mixed",
                           "edgewise.compress.methods.transcode", "edgewise.compress.methods.llamacpp"),
    "task kind": ("edgewise.evaluate.accuracy", "edgewise.evaluate.embedding", "edgewise.evaluate.lm",
                  "edgewise.evaluate.lmeval_task"),
    "PII detector": ("edgewise.privacy.patterns", "edgewise.privacy.tagger:register_default"),
    "routing policy": ("edgewise.route.policies.budget", "edgewise.route.policies.confidence",
                       "edgewise.route.policies.connectivity", "edgewise.route.policies.privacy"),
    # Order is the order of `edgewise --help`.
    "cli verb": tuple(f"edgewise.cli.{m}" for m in ("run_cmd", "distill_cmd", "serve_cmd", "route_cmd", "privacy_cmd",
                                                    "devices_cmd", "optimize_cmd", "bench_cmd", "keyboard_cmd",
                                                    "prune_cmd", "export_litert_cmd")),
}
_lock = threading.RLock()
_done: set[str] = set()  # kinds whose built-ins have all imported
_busy: set[str] = set()  # kinds loading now: a registry lookup made while their modules import returns at once
_plugins_started = False  # the entry points are loading or loaded: a plugin's own lookups must not load it again
_plugins_done = False  # ... and loaded: only then may a lookup skip the lock
_failed: dict[str, str] = {}  # entry point name -> "Type: message"


def _run(target: str) -> None:
    module, _, fn = target.partition(":")
    mod = importlib.import_module(module)
    if fn:
        getattr(mod, fn)()


def _load_plugins() -> None:
    global _plugins_started, _plugins_done
    _plugins_started = True
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            _run(ep.value)
        except Exception as e:  # noqa: BLE001 - someone else's code: report it in one line and go on
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            _failed[ep.name] = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
            print(f"warning: edgewise plugin {ep.name!r} ({ep.value}) not loaded: {_failed[ep.name]}",
                  file=sys.stderr)
    _plugins_done = True


def load(kind: str | None = None) -> None:
    """Import the built-ins of registry `kind` (all kinds when None), then every entry point once. Idempotent,
    thread-safe, and a set lookup once done."""
    kinds = list(BUILTINS) if kind is None else [kind]
    if _plugins_done and all(k in _done for k in kinds):
        return
    with _lock:
        for k in kinds:
            if k in _done or k in _busy:
                continue
            _busy.add(k)
            try:
                for target in BUILTINS.get(k, ()):
                    _run(target)
            finally:
                _busy.discard(k)
            _done.add(k)  # only after every built-in imported: a failure is raised again on the next lookup
        if not _plugins_started:
            _load_plugins()


def failed() -> dict[str, str]:
    """Entry points that did not load: name -> "ErrorType: message"."""
    return dict(_failed)


__all__ = ["BUILTINS", "GROUP", "load", "failed"]
