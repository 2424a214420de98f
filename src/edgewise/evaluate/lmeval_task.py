"""lm-eval inside Edgewise: `edgewise optimize --task lmeval:TASK.yaml` runs that lm-eval task on the full model and
on each variant, and keeps lm-eval's per-sample results as the per-item outcomes the gate compares item by item.

The other direction (Edgewise models inside lm-eval) is `edgewise.evaluate.lmeval`; this task kind drives lm-eval
through that same model class. lm-eval is imported only when a task of this kind is built.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.evaluate.base import TASKS
from edgewise.evaluate.lmeval import ITEM_METRICS, edgewise_lm_class, require_lm_eval
from edgewise.models.source import CAUSAL_LM
from edgewise.progress import Progress
from edgewise.runtime.backend import LoadedModel


def task_config(path: Path) -> dict:
    """An lm-eval task YAML as lm-eval reads it (`include:` and `!function` resolved), with relative local
    `data_files` made relative to the YAML's folder, so the task reads the same files from any working directory."""
    require_lm_eval()
    from lm_eval.tasks._yaml_loader import load_yaml

    path = Path(path).expanduser()
    if not path.exists():
        raise EdgewiseError(f"task file {path} does not exist: give the path of an lm-eval task YAML")
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml"):
        raise EdgewiseError(f"task file {path} is not a .yaml file: give one lm-eval task YAML")
    try:
        cfg = load_yaml(path)
    except Exception as e:  # noqa: BLE001 - yaml's, lm-eval's and importlib's errors for a bad file
        raise EdgewiseError(f"lm-eval cannot read task file {path}: {str(e).splitlines()[0] if str(e) else e}") \
            from None
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")

    def local(f):
        if isinstance(f, str) and "://" not in f and not Path(f).is_absolute():
            return str((path.parent / f).resolve())
        return f

    if files is not None:
        files = ({k: [local(f) for f in v] if isinstance(v, list) else local(v) for k, v in files.items()}
                 if isinstance(files, dict) else [local(f) for f in files] if isinstance(files, list) else local(files))
        cfg["dataset_kwargs"] = {**cfg["dataset_kwargs"], "data_files": files}
    return cfg


@dataclass
class LmevalRef:
    """The full model's run of the task: per-item outcomes in item order, and its metrics."""

    item_ids: list[str]
    outcomes: np.ndarray  # (n_items,) float
    metrics: dict[str, Any]
    model: Any = field(default=None, repr=False)  # a weak reference to the model that made it


@TASKS.register("lmeval")
class LmevalTask:
    """An lm-eval-harness task YAML, run by lm-eval on each variant; `accuracy` is lm-eval's per-sample `acc` (or
    `exact_match` for a generation task), `accuracy_norm` its `acc_norm` when the task reports it."""

    kind = "lmeval"
    needs = CAUSAL_LM
    per_item = True
    primary = "accuracy"
    higher_is_better = True

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config = task_config(self.path)
        task = self._load()
        self.name = task.config.task
        metrics = [m["metric"] for m in task.config.metric_list or []]
        metrics = metrics or list(task._metric_fn_list)  # a task without metric_list gets its output type's defaults
        self.metric = next((m for m in ITEM_METRICS if m in metrics), None)
        if self.metric is None:
            raise EdgewiseError(f"lm-eval task {self.name} ({self.path}) reports {', '.join(map(str, metrics))}: "
                                f"the gate needs a per-item score in [0, 1], so give it acc or exact_match")
        self.norm = "acc_norm" in metrics
        self.n_items = len(task.eval_docs)
        if self.n_items == 0:
            raise EdgewiseError(f"lm-eval task {self.name} ({self.path}) has no documents in its evaluation split")
        self.progress = Progress()

    def _load(self):
        """A fresh lm-eval Task (lm-eval keeps a run's requests on it) from the config, with no index of lm-eval's
        built-in tasks: scanning those thousands of YAMLs costs seconds to tens of seconds, and no task here needs
        them."""
        from lm_eval.tasks import TaskManager

        try:
            tasks = TaskManager(include_defaults=False).load([self.config])["tasks"]
        except EdgewiseError:
            raise
        except Exception as e:  # noqa: BLE001 - datasets' and lm-eval's errors for a task that cannot load
            raise EdgewiseError(f"lm-eval cannot load task {self.path}: {type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''}") from None
        if len(tasks) != 1:
            raise EdgewiseError(f"task file {self.path} defines {len(tasks)} tasks: give a YAML with one task")
        return next(iter(tasks.values()))

    def _run(self, model: LoadedModel) -> dict[str, Any]:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager

        lm = edgewise_lm_class()(model, quiet=True)
        t0 = time.perf_counter()
        # An empty task index, or simple_evaluate indexes every built-in task (tens of seconds). Seeds None: lm-eval
        # leaves this process's random, numpy and torch generators alone. bootstrap_iters 0: the gate computes its own
        # paired intervals from the outcomes.
        res = simple_evaluate(model=lm, tasks=[self._load()], task_manager=TaskManager(include_defaults=False),
                              log_samples=True, bootstrap_iters=0,
                              random_seed=None, numpy_random_seed=None, torch_random_seed=None)
        seconds = time.perf_counter() - t0
        samples = res["samples"][self.name]
        first_filter = samples[0].get("filter") if samples else None
        samples = sorted((s for s in samples if s.get("filter") == first_filter), key=lambda s: s["doc_id"])
        ids = [str(s["doc"]["id"]) if isinstance(s.get("doc"), dict) and "id" in s["doc"] else str(s["doc_id"])
               for s in samples]
        if len(set(ids)) != len(ids):
            ids = [str(s["doc_id"]) for s in samples]
        out = [float(s[self.metric]) for s in samples]
        metrics: dict[str, Any] = {"accuracy": float(np.mean(out)), "n_items": len(out), "outcomes": out,
                                   "item_ids": ids}
        if self.norm:
            norm = [float(s["acc_norm"]) for s in samples]
            metrics.update(accuracy_norm=float(np.mean(norm)), outcomes_norm=norm)
        self.progress.info(f"lmeval {self.name} on {model.name}: {len(out)} items in {seconds:.1f} s "
                           f"({len(out) / max(seconds, 1e-9):.2f} items/s)")
        return metrics

    def reference(self, model: LoadedModel) -> LmevalRef:
        m = self._run(model)
        ids = m.pop("item_ids")
        return LmevalRef(ids, np.asarray(m["outcomes"], dtype=np.float64), m, weakref.ref(model))

    def evaluate(self, model: LoadedModel, ref: LmevalRef) -> dict[str, Any]:
        if ref.model is not None and ref.model() is model:
            return dict(ref.metrics)  # the full model again (optimize's "fp32" row): lm-eval scoring is deterministic
        m = self._run(model)
        if m.pop("item_ids") != ref.item_ids:
            raise EdgewiseError(f"lm-eval task {self.name} gave other items on {model.name} than on the full model: "
                                "its documents must not change between runs")
        return m
