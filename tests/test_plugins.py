"""The one plugin loader: built-ins from one list, then every `edgewise` entry point, for every registry.

The plugin is a real distribution on sys.path (a package beside a `*.dist-info` folder holding `entry_points.txt`,
what pip writes), and each check runs in a fresh interpreter, as a user's would: entry points are read once a process.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgewise import plugins

PLUGIN = '''
from dataclasses import dataclass
from pathlib import Path

from edgewise.compress.registry import register_handler
from edgewise.evaluate.base import TASKS
from edgewise.runtime.backend import BACKENDS


@dataclass(frozen=True)
class SignBits:
    """Each weight as its sign (a method that only a test would ship)."""

    label = "sign"
    names = {"sign": {}, "sign-scaled": {"scaled": True}}
    nominal_bits, weight_only = 1.0, False
    scaled: bool = False


@register_handler(SignBits)
def sign_bits(cfg, ctx, name):
    return f"{name} (scaled={cfg.scaled}) on {ctx}"


@BACKENDS.register("ewplug")
def ewplug_backend(source, precision, threads):
    return f"ewplug loaded {source.ref} at {precision}"


@TASKS.register("wordcount")
class WordCount:
    def __init__(self, path: Path):
        self.words = len(Path(path).read_text().split())
'''

VERBS = '''
def register():
    from edgewise.cli.app import app

    @app.command("ewplug-hello")
    def hello() -> None:
        """Say which plugin names this process sees."""
        from edgewise.compress import METHODS
        from edgewise.runtime import BACKENDS
        print("hello from ewplug:", "sign" in METHODS, "ewplug" in BACKENDS)
'''


def dist(site: Path, name: str, entry_points: dict[str, str], files: dict[str, str]) -> None:
    """One installed distribution, laid out as pip lays it out: its modules, and NAME-0.1.dist-info beside them."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[edgewise]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    dist(site, "ewplug_demo", {"demo": "ewplug_demo", "verbs": "ewplug_demo.cli:register"},
         {"ewplug_demo/__init__.py": PLUGIN, "ewplug_demo/cli.py": VERBS})
    dist(site, "ewplug_broken", {"broken": "ewplug_broken"},
         {"ewplug_broken.py": "import ewplug_missing_dependency  # not installed\n"})
    return site


def run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


LIST = '''
import json
from edgewise import plugins
from edgewise.compress import METHODS, parse_method, quantize
from edgewise.evaluate import TASKS, parse_task
from edgewise.privacy.base import DETECTORS
from edgewise.route.policies import POLICIES
from edgewise.runtime import BACKENDS, load_model

name, cfg = parse_method("sign-scaled")
(task_file := __import__("pathlib").Path("{tmp}") / "words.txt").write_text("one two three")
print(json.dumps({{
    "methods": list(METHODS), "backends": BACKENDS.names(), "tasks": TASKS.names(), "policies": POLICIES.names(),
    "detectors": DETECTORS.names(), "quantize": quantize(None, cfg, name=name, ctx="ctx"),
    "load": load_model("smollm2-135m", backend="ewplug"), "words": parse_task(f"wordcount:{{task_file}}").words,
    "failed": plugins.failed(),
}}))
'''


def test_a_plugin_is_listed_by_every_registry_and_dispatched_to(site, tmp_path):
    res = run(site, "-c", LIST.format(tmp=tmp_path))
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert {"sign", "sign-scaled"} <= set(got["methods"]) and "int4-gptq" in got["methods"]
    assert "ewplug" in got["backends"] and "ort" in got["backends"]
    assert "wordcount" in got["tasks"] and "perplexity" in got["tasks"]
    assert got["quantize"] == "sign-scaled (scaled=True) on ctx"
    assert got["load"] == "ewplug loaded smollm2-135m at fp32"
    assert got["words"] == 3
    # Built-ins of the registries the plugin did not touch load too.
    assert set(got["policies"]) == {"budget", "confidence", "connectivity", "privacy"}
    assert {"email", "iban", "phone"} <= set(got["detectors"])
    # The broken plugin: one warning line naming it and its error; nothing else is lost.
    assert got["failed"] == {"broken": "ModuleNotFoundError: No module named 'ewplug_missing_dependency'"}
    warnings = [line for line in res.stderr.splitlines() if "ewplug" in line or "broken" in line]
    assert warnings == ["warning: edgewise plugin 'broken' (ewplug_broken) not loaded: ModuleNotFoundError: "
                        "No module named 'ewplug_missing_dependency'"]


def test_the_cli_lists_and_runs_a_plugin_verb(site):
    helped = run(site, "-m", "edgewise", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "ewplug-hello" in helped.stdout
    for verb in ("run", "optimize", "serve", "route", "keyboard", "prune", "export-litert", "bench", "devices"):
        assert f" {verb} " in helped.stdout, verb  # the built-in verbs are all still there
    hello = run(site, "-m", "edgewise", "ewplug-hello")
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "hello from ewplug: True True"


def test_concurrent_first_lookups_load_once(site):
    script = textwrap.dedent('''
        import threading
        from edgewise.compress import METHODS
        from edgewise.runtime import BACKENDS
        seen, errors = [], []
        def look():
            try:
                seen.append((tuple(METHODS), tuple(BACKENDS.names())))
            except Exception as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(set(seen)), len(seen), errors, "sign" in seen[0][0])
    ''')
    res = run(site, "-c", script)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "8", "[]", "True"]


@pytest.fixture
def kind(tmp_path, monkeypatch):
    """A registry kind of this test's own, with built-in modules written to tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "ewtest kind"
    plugins._done.discard("ewtest kind")
    for m in [m for m in sys.modules if m.startswith("ewtest_builtin")]:
        del sys.modules[m]


def test_a_builtin_import_error_is_never_hidden(kind, tmp_path, monkeypatch):
    (tmp_path / "ewtest_builtin_bad.py").write_text("import ewtest_missing_dependency\n")
    monkeypatch.setitem(plugins.BUILTINS, kind, ("ewtest_builtin_bad",))
    for _ in range(2):  # and not only the first time: a failed kind is not marked loaded
        with pytest.raises(ModuleNotFoundError, match="ewtest_missing_dependency"):
            plugins.load(kind)


def test_a_module_function_builtin_runs_once(kind, tmp_path, monkeypatch):
    monkeypatch.setitem(plugins.BUILTINS, kind, ("ewtest_builtin_ok:register",))
    (tmp_path / "ewtest_builtin_ok.py").write_text("CALLS = []\ndef register():\n    CALLS.append(1)\n")
    plugins.load(kind)
    plugins.load(kind)
    assert sys.modules["ewtest_builtin_ok"].CALLS == [1]  # module:function, run once