"""Pareto plots: quality against size and against speed, one point per variant, the frontier drawn through them."""

from __future__ import annotations

from pathlib import Path

from edgewise.models.kinds import ModelRole

# matplotlib is imported inside the plotting functions: it costs about a second, and the Agg backend must be
# chosen before pyplot is first imported.


def undominated(vectors: list[tuple[float, ...]]) -> list[int]:
    """Indices of the vectors no other one beats: at least as good on every axis and better on one, where higher
    is better on every axis (negate an axis where lower is better)."""
    def beats(a, b):
        return all(x >= y for x, y in zip(a, b)) and a != b

    return [i for i, v in enumerate(vectors) if not any(beats(o, v) for j, o in enumerate(vectors) if j != i)]


def pareto_front(points: list[tuple[float, float, str]], x_lower_better: bool, y_lower_better: bool) -> list:
    """The points no other point beats on both axes, sorted by x."""
    vecs = [(-x if x_lower_better else x, -y if y_lower_better else y) for x, y, *_ in points]
    return sorted((points[i] for i in undominated(vecs)), key=lambda p: p[0])


def gate_limit(report: dict, ref_primary: float | None) -> float | None:
    """The worst primary-metric value the gate accepts (its point estimate; an accuracy task also needs the interval
    inside it), or None when the gate has no drop bound."""
    max_drop = report["gate"].get("max_drop")
    if ref_primary is None or max_drop is None:
        return None
    # Accuracy tasks: --max-drop is in absolute points; other tasks: a fraction of the full model's value.
    d = max_drop if report["task"].get("per_item") else max_drop * abs(ref_primary)
    return ref_primary - d if report["task"]["higher_is_better"] else ref_primary + d


def gate_label(report: dict) -> str:
    drop = report["gate"]["max_drop"]
    return f"gate ({100 * drop:.1f}-point drop)" if report["task"].get("per_item") else f"gate ({drop:.0%} drop)"


def _plot(rows: list[dict], xkey: str, xlabel: str, x_lower_better: bool, report: dict, path: Path,
          logx: bool = False) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = report["task"]
    y_lower = not task["higher_is_better"]
    pts = [(r[xkey], r["primary"], r["name"], r) for r in rows
           if r.get(xkey) is not None and r.get("primary") is not None and not r.get("error")]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    front = pareto_front([(x, y, n) for x, y, n, _ in pts], x_lower_better, y_lower)
    if len(front) > 1:
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", color="#9aa5b1", lw=1.2, zorder=1,
                label="Pareto frontier")
    placed: list[tuple[float, float]] = []
    for x, y, name, r in pts:
        color = ("#2b8a3e" if r.get("passes_gate") else
                 "#e67700" if r.get("gate_status") == "not shown safe" else "#c92a2a")
        marker = "*" if r.get("recommended") else "o"
        ax.scatter([x], [y], s=170 if marker == "*" else 46, color=color, marker=marker, zorder=3,
                   edgecolors="white", linewidths=0.8)
        # Points that coincide (same size, same quality) get their labels stacked instead of overprinted.
        k = sum(1 for px, py in placed if abs(px - x) <= 0.02 * max(abs(x), 1e-9) and abs(py - y) <= 0.02 * max(abs(y), 1e-9))
        placed.append((x, y))
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 5 + 11 * k), fontsize=8.5, color="#212529")
    ys = [p[1] for p in pts]
    lo, hi = min(ys), max(ys)
    span = max(hi - lo, 0.05 * max(abs(hi), 1e-9))
    ref = next((r for r in rows if r["name"] == report["reference"]), None)
    limit = gate_limit(report, ref.get("primary")) if ref else None
    if limit is not None:
        label = gate_label(report)
        if lo - span <= limit <= hi + span:  # draw it only where it does not squash the points
            ax.axhline(limit, color="#c92a2a", ls="--", lw=0.9, label=label)
        else:
            ax.plot([], [], color="#c92a2a", ls="--", lw=0.9, label=f"{label}: {limit:.4g}, off the chart")
    if logx and max(p[0] for p in pts) > 8 * min(p[0] for p in pts):
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{task['primary']} ({'lower' if y_lower else 'higher'} is better)")
    ax.set_title(f"{task['primary']} vs {xlabel.split(' (')[0]} — {report['model']['name']}", fontsize=10)
    ax.grid(True, alpha=0.25)
    # A little head-room so labels of the extreme points stay inside the frame.
    ax.margins(x=0.12, y=0.12)
    ax.legend(fontsize=8, loc="best", frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(report: dict, out: Path) -> dict[str, str]:
    rows = report["variants"]
    decoder = report["model"]["kind"] == ModelRole.DECODER
    made = {}
    p = _plot(rows, "size_mb", "size on disk (MB)", True, report, out / "pareto-size.png", logx=True)
    if p:
        made["size"] = p.name
    speed_key, label = ("generation_tps", "generation tokens/s") if decoder else ("throughput_per_s", "embeddings/s")
    p = _plot(rows, speed_key, label, False, report, out / "pareto-speed.png")
    if p:
        made["speed"] = p.name
    if report.get("search"):
        p = search_plot(report, out)
        if p:
            made["search"] = p.name
    return made


def search_plot(report: dict, out: Path) -> Path | None:
    """The search's frontier: quality against tokens/s, marker area by size, every measured recipe a point, the
    quality x speed x size frontier ringed, the chosen recipe a star, the gate a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["variants"] if r.get("generation_tps") and r.get("primary") is not None
            and not r.get("error")]
    if not rows:
        return None
    task = report["task"]
    fig, ax = plt.subplots(figsize=(7.2, 4.6), dpi=110)
    smax = max(r["size_mb"] for r in rows)
    for r in rows:
        area = 30 + 400 * r["size_mb"] / smax
        color = "#2b8a3e" if r.get("passes_gate") and r.get("fits_device") is not False else "#c92a2a"
        if r.get("recommended"):
            ax.scatter([r["generation_tps"]], [r["primary"]], s=area * 1.6, marker="*", color=color, zorder=4,
                       edgecolors="black", linewidths=0.8)
        else:
            ax.scatter([r["generation_tps"]], [r["primary"]], s=area, color=color, alpha=0.75, zorder=3,
                       edgecolors="black" if r.get("on_frontier") else "white",
                       linewidths=1.6 if r.get("on_frontier") else 0.6)
        ax.annotate(f"{r['name']} ({r['size_mb']:.0f} MB)", (r["generation_tps"], r["primary"]),
                    textcoords="offset points", xytext=(7, 4), fontsize=7.5)
    ref = next((r for r in rows if r["name"] == report["reference"]), None)
    limit = gate_limit(report, ref["primary"]) if ref else None
    if limit is not None:
        ax.axhline(limit, color="#c92a2a", ls="--", lw=0.9, label=gate_label(report))
    ax.scatter([], [], s=60, color="white", edgecolors="black", linewidths=1.6, label="on the frontier "
               "(quality × tokens/s × size)")
    ax.scatter([], [], s=90, marker="*", color="#2b8a3e", edgecolors="black", label="chosen")
    s = report.get("search") or {}
    ax.set_title(f"search: {s.get('measured', len(rows))} of {len(s.get('candidates', []))} recipes measured, "
                 f"stopped: {s.get('stopped', '?')} — {report['model']['name']}", fontsize=9.5)
    ax.set_xlabel("generation tokens/s (measured here, device threads)")
    ax.set_ylabel(f"{task['primary']} ({'higher' if task['higher_is_better'] else 'lower'} is better)")
    ax.grid(True, alpha=0.25)
    ax.margins(x=0.18, y=0.15)
    ax.legend(fontsize=7.5, loc="best", frameon=False)
    fig.tight_layout()
    path = out / "search-frontier.png"
    fig.savefig(path)
    plt.close(fig)
    return path
