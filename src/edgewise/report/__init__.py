"""Reports: report.json (schema in docs/report-schema.md), report.html with the table and Pareto plots, and the
terminal table. All read the same report dict that `edgewise.optimize` builds; its rows are `VariantRow.as_dict()`."""

from __future__ import annotations

import html
import json
from pathlib import Path

from rich.table import Table
from rich.text import Text

from edgewise.report.columns import columns
from edgewise.report.plots import write_plots
from edgewise.report.row import VariantRow

CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#212529;margin:28px auto;
 max-width:1280px;padding:0 20px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.sub{color:#495057;margin:0 0 16px}
.rec{background:#ebfbee;border:1px solid #b2f2bb;border-radius:8px;padding:12px 16px;margin:16px 0}
.rec.none{background:#fff5f5;border-color:#ffc9c9}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{padding:6px 8px;border-bottom:1px solid #e9ecef;text-align:right;white-space:nowrap}
th{background:#f8f9fa;position:sticky;top:0;border-bottom:2px solid #dee2e6}
th:first-child,td:first-child{text-align:left}
tr.recommended td{background:#ebfbee;font-weight:600}
td.pass{color:#2b8a3e} td.fail,td.error{color:#c92a2a} td.nofit{color:#c92a2a} td.unsafe{color:#e67700}
.plots{display:flex;flex-wrap:wrap;gap:16px} .plots img{max-width:620px;width:100%;border:1px solid #e9ecef;
 border-radius:6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0} dt{color:#868e96} dd{margin:0}
ul{margin:6px 0;padding-left:20px} .muted{color:#868e96;font-size:12.5px} code{font-size:12.5px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def render_html(report: dict, plots: dict[str, str]) -> str:
    cols = columns(report)
    rec = report["recommendation"]
    head = "".join(f'<th title="{_e(c.hint)}">{_e(c.title).replace(chr(10), "<br>")}</th>' for c in cols)
    body = []
    for v in report["variants"]:
        cells = []
        for c in cols:
            text = c.cell(v)
            cls = {"pass": "pass", "fail": "fail", "error": "error", "does not fit": "nofit",
                   "not shown safe": "unsafe"}.get(text, "")
            cells.append(f'<td class="{cls}">{_e(text)}</td>')
        body.append(f'<tr class="{"recommended" if v.get("recommended") else ""}" title="{_e(v["method"])}">'
                    + "".join(cells) + "</tr>")
    m, t, d = report["model"], report["task"], report["device"]
    if rec["name"]:
        best = next(v for v in report["variants"] if v["name"] == rec["name"])
        rec_html = (f'<div class="rec"><b>Recommended: {_e(rec["name"])}</b> — {_e(best["method"])}. '
                    f'{_e(rec["reason"])}. Bundle: <code>bundle/</code> (run it with '
                    f'<code>edgewise run bundle "…"</code>).</div>')
    else:
        rec_html = f'<div class="rec none"><b>No recommendation.</b> {_e(rec["reason"])}.</div>'
    notes = []
    for v in report["variants"]:
        for n in v.get("notes") or []:
            notes.append(f"<li><b>{_e(v['name'])}</b>: {_e(n)}</li>")
        if v.get("error"):
            notes.append(f"<li><b>{_e(v['name'])}</b>: error — {_e(v['error'])}</li>")
        if v.get("bench_error"):
            notes.append(f"<li><b>{_e(v['name'])}</b>: benchmark failed — {_e(v['bench_error'])}</li>")
    for s in report.get("skipped") or []:
        notes.append(f"<li><b>{_e(s['name'])}</b>: skipped — {_e(s['reason'])}</li>")
    methods = "".join(f"<li><b>{_e(v['name'])}</b>: {_e(v['method'])}</li>" for v in report["variants"])
    est = ""
    if d["name"] != "host":
        est = ('<p class="muted">Estimated device tokens/s are <b>estimates</b>: tokens/s measured here × the device\'s '
               'memory bandwidth / this machine\'s probed bandwidth. They are not measurements.</p>')
    bw = report["host"].get("bandwidth_gbs")
    tasks = report.get("tasks") or [t]
    meta = [("model", f"{m['ref']} ({m['kind']}, {m['arch'] or '?'}, {m['params'] / 1e6:.1f}M parameters)")]
    meta += [("task" if len(tasks) == 1 else f"task {i + 1}" + (" (primary)" if i == 0 else ""),
              f"{x['kind']} on {x['file']} (primary metric: {x['primary']}"
              + (f", {x['n_items']} items" if x.get("n_items") else "") + ")") for i, x in enumerate(tasks)]
    meta += [("calibration", report["calibration"]["source"]),
             ("gate", report["gate"]["description"]),
             ("device", f"{d['name']}: {d['cores']} cores, {d['usable_ram_gb']:.1f} GB usable RAM, "
                        f"{d['bandwidth_gbs']:.1f} GB/s ({d['bandwidth_kind']})"),
             ("host bandwidth", f"{bw:.2f} GB/s (probed)" if bw else "–"),
             ("timings", ", ".join(f"{k} {v:.0f} s" for k, v in report["timings_s"].items())),
             ("created", f"{report['created']} by edgewise {report['edgewise_version']}")]
    plot_html = "".join(f'<img src="{_e(p)}" alt="Pareto plot: {_e(k)}">' for k, p in plots.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Edgewise report — {_e(m['name'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>Edgewise report: {_e(m['name'])}</h1>
<p class="sub">{len(report['variants'])} variants measured against the full model on
{_e(', '.join(x.get('label') or x['kind'] for x in tasks))}, on device
<b>{_e(d['name'])}</b>. ★ marks the recommendation; hover a header for its meaning.</p>
{rec_html}
<h2>Variants</h2>
<div style="overflow-x:auto"><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>
{est}
{tasks_html(report)}
<h2>Trade-offs</h2>
<div class="plots">{plot_html or '<p class="muted">No plottable variants.</p>'}</div>
{search_html(report)}
<h2>Methods</h2><ul>{methods}</ul>
{'<h2>Notes</h2><ul>' + ''.join(notes) + '</ul>' if notes else ''}
<h2>Run</h2><dl>{''.join(f'<dt>{_e(k)}</dt><dd>{_e(v)}</dd>' for k, v in meta)}</dl>
<p class="muted">Machine-readable figures: <a href="report.json">report.json</a> (schema: docs/report-schema.md
in the Edgewise repository).</p>
</body></html>
"""


SEARCH_COLUMNS = ("recipe", "status", "MB est.", "drop", "tok/s", "MB", "gate", "time s", "why")


def _search_cells(c: dict) -> list[str]:
    def f(v, fmt):
        return "–" if v is None else format(v, fmt)

    gate = c.get("gate_status") or ("–" if c.get("passes_gate") is None else ("pass" if c["passes_gate"] else "fail"))
    return [c["name"], c["status"], f(c.get("est_weights_mb"), ".1f"), f(c.get("relative_drop"), ".1%"),
            f(c.get("generation_tps"), ".1f"), f(c.get("size_mb"), ".1f"), gate,
            f(c.get("seconds", {}).get("total"), ".0f"), c.get("reason", "")]


def search_html(report: dict) -> str:
    s = report.get("search")
    if not s:
        return ""
    head = "".join(f"<th>{_e(h)}</th>" for h in SEARCH_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in _search_cells(c)) + "</tr>" for c in s["candidates"])
    return (f"<h2>Search</h2><p>{s['measured']} of {len(s['candidates'])} recipes measured in {s['elapsed_s']:.0f} s "
            f"(stopped: <b>{_e(s['stopped'])}</b>; order: {_e(s['order'])}). Frontier (quality × tokens/s × size): "
            f"<b>{_e(', '.join(s['frontier']) or '–')}</b>. Assumptions: {_e('; '.join(s['assumptions']))}."
            + (f" Measured against that assumption: {_e('; '.join(s['assumption_violations']))}."
               if s.get("assumption_violations") else "") + "</p>"
            f'<div style="overflow-x:auto"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')


def search_table(report: dict):
    """A rich Table of every recipe the search considered, measured or skipped, and why."""
    s = report["search"]
    table = Table(title=f"search: {s['measured']} of {len(s['candidates'])} recipes measured, stopped: "
                        f"{s['stopped']}, frontier: {', '.join(s['frontier']) or '–'}")
    for i, h in enumerate(SEARCH_COLUMNS):
        table.add_column(h, justify="left" if i in (0, 1, 8) else "right", no_wrap=i != 8)
    for c in s["candidates"]:
        table.add_row(*_search_cells(c), style="dim" if c["status"] != "measured" else None)
    return table


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """report.json, pareto-*.png and report.html into `out` (an existing folder)."""
    out = Path(out)
    plots = write_plots(report, out)
    report["plots"] = plots
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.html").write_text(render_html(report, plots))
    return {"json": out / "report.json", "html": out / "report.html", **{k: out / v for k, v in plots.items()}}


def items_needed_note(summary: dict) -> str | None:
    """One sentence: how many items this task has and would need to detect the gate's drop."""
    need = summary.get("items_needed")
    if not need:
        return None
    have = summary.get("n_items")
    base = (f"{summary['label']}: {have} items; detecting a {100 * need['drop']:.1f}-point drop at "
            f"{need['power']:.0%} power needs about {need['items']}")
    if need.get("variant"):
        base += f" (from {need['variant']}'s disagreement with the full model on {need['discordance']:.1%} of items)"
    return base


def items_notes(report: dict) -> list[str]:
    """Per accuracy task: its items, and how many would detect a drop of --max-drop."""
    return [n for n in (items_needed_note(t) for t in report.get("tasks") or []) if n]


def tasks_html(report: dict) -> str:
    """What the accuracy figures mean, and each accuracy task's item count against the count its gate needs."""
    tasks = [t for t in report.get("tasks") or [] if t.get("per_item")]
    if not tasks:
        return ""
    notes = "".join(f"<li>{_e(n)}.</li>" for n in items_notes(report))
    return ("<p class=\"muted\">Accuracy tasks: accuracy in percent with its Wilson 95% interval; Δ pts is the "
            "variant minus the full model item by item, in accuracy points, with a paired bootstrap 95% interval "
            f"({tasks[0].get('bootstrap', {}).get('resamples', '?')} resamples of the items, fixed seed); McNemar's "
            "exact p on the items the two "
            "disagree on. A variant "
            "passes only when the interval's worst end stays within --max-drop; a variant whose measured drop is "
            "within it but whose interval reaches past it is <b>not shown safe</b>. Per-item outcomes are in "
            "report.json.</p>" + (f"<ul>{notes}</ul>" if notes else ""))


def terminal_table(report: dict):
    """A rich Table of the variants (the same columns as the HTML)."""
    cols = [c for c in columns(report) if c.terminal]
    tasks = report.get("tasks") or [report["task"]]
    on = " + ".join(t.get("label") or t["kind"] for t in tasks) if len(tasks) > 1 else report["task"]["kind"]
    table = Table(title=Text(f"{report['model']['name']} · {on} · device {report['device']['name']}"),
                  show_lines=False)
    # Text, not str: task labels and intervals ("perplexity:notes:", "[36.5, 46.1]") are not rich markup or emoji.
    for i, c in enumerate(cols):
        table.add_column(Text(c.title), justify="left" if i == 0 else "right", no_wrap=True)
    for v in report["variants"]:
        style = "bold green" if v.get("recommended") else None
        table.add_row(*[Text(c.cell(v)) for c in cols], style=style)
    return table


__all__ = ["write_report", "render_html", "terminal_table", "search_table", "columns", "write_plots", "VariantRow",
           "items_notes", "items_needed_note"]
