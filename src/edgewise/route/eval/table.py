"""The route eval report as markdown tables, the form BENCHMARKS.md §3 shows: per family, the random router and the
oracle beside every signal, each signal's held-out APGR with its bootstrap interval and its 5-fold cross-validated
APGR, and what each signal costs in edge time.

    print(markdown_table(report))   # report: evaluate()'s dict, or the JSON that edgewise.route.eval.command writes
"""

from __future__ import annotations

import math


def _f(x, fmt: str = "{:.3f}") -> str:
    """A figure, or n/a where it is undefined (None in the JSON report, nan in the in-memory one)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


def _secs(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "not measured"
    return "0" if x == 0 else f"{x:.3g} s"


def _what(signal: str, k: int) -> str:
    return f"consistency (k={k})" if signal == "consistency" and k else signal


def markdown_table(report: dict) -> str:
    """Two tables: held-out routing per family (with the random router and the oracle), and the pooled policy
    deployed with its threshold from the calibration half."""
    held = report["held_out"]
    cost = report.get("cost", {})
    extra = cost.get("extra_edge_s", {})
    k = cost.get("samples_k", 0)
    target = report.get("target", 0.95)
    esc = f"esc@{target * 100:g}"
    lines = [
        f"| family (held-out n; edge / cloud accuracy) | router | APGR held out [95% CI] | APGR 5-fold CV | {esc} "
        "| AUROC edge right | edge time beyond the answer, per item |",
        "|---|---|---|---|---|---|---|",
    ]
    families = list(dict.fromkeys(r["family"] for r in held))
    for fam in families:
        rows = [r for r in held if r["family"] == fam]
        r0 = rows[0]
        label = f"{fam} (n={r0['n']}; {_f(r0['edge_quality'], '{:.2f}')} / {_f(r0['cloud_quality'], '{:.2f}')})"
        rand = report.get("random_apgr", {}).get(fam, {})
        orc = report.get("oracle", {}).get(fam, {})
        lines.append(f"| {label} | random | 0.50 by construction ({_f(rand.get('simulated'))} over "
                     f"{rand.get('orders', 0)} random orders) | | | 0.5 | 0 |")
        lines.append(f"| | oracle | {_f(orc.get('apgr', report.get('oracle_apgr', {}).get(fam)))} | | "
                     f"{_f(orc.get('escalated_at_95'), '{:.0%}')} | | |")
        for r in rows:
            ci = f"[{_f(r.get('apgr_lo'))}, {_f(r.get('apgr_hi'))}]"
            lines.append(f"| | {_what(r['signal'], k)} | {_f(r['apgr'])} {ci} | {_f(r.get('cv_apgr'))} | "
                         f"{_f(r['escalated_at_95'], '{:.0%}')} | {_f(r['auroc_edge_right'])} | "
                         f"{_secs(extra.get(r['signal']))} |")
    out = "\n".join(lines)
    foot = [f"Edge time per greedy answer: {_secs(cost.get('edge_answer_s'))}"]
    if cost.get("embed_s") is not None:
        foot.append(f"one prompt embedding (prompt, knn, combined): {_secs(cost['embed_s'])}")
    bs = report.get("bootstrap", {})
    foot.append(f"intervals: percentile bootstrap over the held-out items, {bs.get('resamples', 'n/a')} resamples, "
                f"seed {bs.get('seed', 'n/a')}")
    out += "\n\n" + "; ".join(foot) + "."
    if report.get("deployed"):
        dep = ["", "| signal | threshold (calibration half) | APGR (calibration) | held out: escalated | "
               "held out: share of cloud quality |", "|---|---|---|---|---|"]
        for d in report["deployed"]:
            mark = " (policy)" if d["signal"] == report.get("best_signal") else ""
            dep.append(f"| {_what(d['signal'], k)}{mark} | {_f(d['threshold'], '{:.4g}')} | {_f(d['calib_apgr'])} | "
                       f"{_f(d['held_escalated'], '{:.1%}')} | {_f(d['held_of_cloud'], '{:.1%}')} |")
        out += "\n" + "\n".join(dep)
    return out + "\n"
