"""Quality of every variant on every task, and the gate over them.

A run has one or more tasks (`--task A --task B`); the first is the primary one (the row's `metrics`, `primary`,
`relative_drop`, the sorting and the plots). Each row's `tasks` list holds one entry per task in the same order.
On a task scored item by item (`task.per_item`), an entry also holds the per-item outcomes and the paired statistics
against the full model (evaluate/stats.py), and the gate reads the paired interval. A variant passes only when it
passes every task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgewise.errors import EdgewiseError
from edgewise.evaluate import relative_drop
from edgewise.evaluate.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, POWER, items_needed, paired
from edgewise.optimize.gate import ERROR, FAIL, NOT_SHOWN_SAFE, PASS, Gate
from edgewise.report.row import VariantRow

OUTCOME_KEYS = ("outcomes", "outcomes_norm")  # per-item lists a task returns beside its float metrics


def task_label(task) -> str:
    """`kind:file-stem`, short enough for a column title."""
    return f"{task.kind}:{task.path.stem}"


def is_per_item(task) -> bool:
    return bool(getattr(task, "per_item", False))


@dataclass
class TaskRef:
    """One task with the full model's reference state for it."""

    task: Any
    state: Any
    label: str

    @property
    def item_ids(self) -> list[str] | None:
        ids = getattr(self.state, "item_ids", None)
        return [str(i) for i in ids] if ids is not None else None


def references(tasks: list, ref_model) -> list[TaskRef]:
    return [TaskRef(t, t.reference(ref_model), task_label(t)) for t in tasks]


def evaluate_tasks(model, refs: list[TaskRef]) -> list[dict]:
    """One entry per task: {"task": label, "metrics": floats} plus the per-item outcome lists, when the task has them."""
    out = []
    for r in refs:
        m = dict(r.task.evaluate(model, r.state))
        entry = {"task": r.label, "metrics": m}
        for key in OUTCOME_KEYS:
            if key in m:
                entry[key] = [float(x) for x in m.pop(key)]
        if is_per_item(r.task) and "outcomes" not in entry:
            raise EdgewiseError(f"task {r.label} scores items but returned no per-item outcomes: its evaluate() "
                                "must return 'outcomes'")
        out.append(entry)
    return out


def _kld_tasks(ref_row: VariantRow, n: int) -> set[int]:
    """Tasks the KLD ceiling reads: those that measure a KLD, or every task when none does (so a KLD gate on a
    run without one fails, as it always has)."""
    measured = {i for i, e in enumerate(ref_row.tasks) if (e.get("metrics") or {}).get("kld") is not None}
    return measured or set(range(n))


def gate_row(row: VariantRow, tasks: list, ref_row: VariantRow, gate: Gate) -> None:
    """The row's quality against the reference row on every task, and the gate's verdict over all of them."""
    first = tasks[0]
    m, ref_m = row.metrics or {}, ref_row.metrics or {}
    row.kld = m.get("kld")
    row.same_top_token = m.get("same_top_token")
    row.primary = m.get(first.primary)
    row.relative_drop = (relative_drop(first, m[first.primary], ref_m[first.primary])
                         if first.primary in m and first.primary in ref_m else None)
    if row.error:
        row.passes_gate, row.gate_reason, row.gate_status = False, row.error, ERROR
        return
    if len(ref_row.tasks) != len(tasks) or len(row.tasks) != len(tasks):
        row.passes_gate, row.gate_status = False, FAIL
        row.gate_reason = "no quality figure (the full model could not be evaluated)"
        return
    kld_idx = _kld_tasks(ref_row, len(tasks))
    verdicts = []
    for i, (t, e, re) in enumerate(zip(tasks, row.tasks, ref_row.tasks)):
        em, rm = e["metrics"], re["metrics"]
        e["primary"] = em.get(t.primary)
        e["relative_drop"] = (relative_drop(t, em[t.primary], rm[t.primary])
                              if t.primary in em and t.primary in rm else None)
        kld = em.get("kld")
        if is_per_item(t):
            p = paired(e["outcomes"], re["outcomes"])
            e.update(p.as_dict())
            e["items_needed"] = items_needed(min(gate.max_drop, 1.0), p.discordance) if gate.max_drop else None
            status, why = gate.check_paired(p.diff, p.diff_ci, kld, i in kld_idx, e["items_needed"])
        else:
            ok, why = gate.check(e["relative_drop"], kld, i in kld_idx)
            status = PASS if ok else FAIL
        e["gate_status"], e["gate_reason"] = status, why
        verdicts.append((task_label(t), status, why))
    bad = [v for v in verdicts if v[1] != PASS]
    if not bad:
        row.gate_status, row.gate_reason = PASS, "passes"
    else:
        row.gate_status = FAIL if any(s == FAIL for _, s, _ in bad) else NOT_SHOWN_SAFE
        row.gate_reason = bad[0][2] if len(tasks) == 1 else "; ".join(f"{label}: {why}" for label, _, why in bad)
    row.passes_gate = row.gate_status == PASS


def gate_rows(rows: list[VariantRow], tasks: list, gate: Gate, reference: str = "fp32") -> None:
    ref_row = next(r for r in rows if r.name == reference)
    for row in rows:
        gate_row(row, tasks, ref_row, gate)


def task_summaries(tasks: list, item_ids: list, rows: list[VariantRow], gate: Gate,
                   reference: str = "fp32") -> list[dict]:
    """report.json's `tasks`: what each task is, its item ids, and, on a per-item task, how many items would detect
    a drop of --max-drop (the most any measured variant needs, from its own discordance with the full model)."""
    out = []
    for i, (t, ids) in enumerate(zip(tasks, item_ids)):
        d = {"kind": t.kind, "file": str(t.path), "label": task_label(t), "primary": t.primary,
             "higher_is_better": t.higher_is_better, "per_item": is_per_item(t)}
        if is_per_item(t):
            d["item_ids"] = ids
            d["n_items"] = len(ids) if ids is not None else None
            d["confidence"] = CONFIDENCE
            d["bootstrap"] = {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "interval": "percentile"}
            if gate.max_drop:
                cand = [(row.tasks[i].get("items_needed"), row.tasks[i].get("discordance"), row.name) for row in rows
                        if row.name != reference and not row.error and len(row.tasks) > i
                        and row.tasks[i].get("items_needed") is not None]
                if cand:
                    need, psi, name = max(cand)
                else:  # no variant to learn the disagreement from: the fewest items any drop of this size needs
                    need, psi, name = items_needed(min(gate.max_drop, 1.0), 0.0), None, None
                d["items_needed"] = {"drop": gate.max_drop, "items": need, "power": POWER, "variant": name,
                                     "discordance": psi}
        out.append(d)
    return out


__all__ = ["TaskRef", "references", "evaluate_tasks", "gate_row", "gate_rows", "task_summaries", "task_label",
           "is_per_item"]
