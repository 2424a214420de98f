"""report/: report.json, report.html, the Pareto plots and the terminal table, on the report dict a real
`edgewise optimize` run builds on the tiny model (fp32 and int8, measured), and on edits of it."""

from __future__ import annotations

import copy
import html
import json
from html.parser import HTMLParser

import pytest
from rich.console import Console

from edgewise.data import DEMO_TEXT, packaged_text
from edgewise.optimize import OptimizeOptions, optimize
from edgewise.report import columns, items_needed_note, render_html, search_table, terminal_table, write_report
from edgewise.report.plots import pareto_front, write_plots

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tiny_llama_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report") / "out"
    optimize(OptimizeOptions(model=str(tiny_llama_dir), task=f"perplexity:{packaged_text(DEMO_TEXT)}",
                             methods=["fp32", "int8"], out=out, max_drop="50%", max_tokens=8, passes=1))
    return json.loads((out / "report.json").read_text())


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts, with each row's class."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[tuple[str, list[str]]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append((dict(attrs).get("class") or "", []))
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1][1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> list[list[tuple[str, list[str]]]]:
    p = Tables()
    p.feed(page)
    return p.tables


def test_write_report_writes_the_dict_the_page_and_the_plots(report, tmp_path):
    written = write_report(copy.deepcopy(report), tmp_path)
    assert set(written) == {"json", "html", "size", "speed"}
    saved = json.loads(written["json"].read_text())
    assert saved["plots"] == {"size": "pareto-size.png", "speed": "pareto-speed.png"}
    assert {k: v for k, v in saved.items() if k != "plots"} == {k: v for k, v in report.items() if k != "plots"}
    for key in ("size", "speed"):
        assert written[key].read_bytes()[:8] == PNG and written[key].stat().st_size > 5000
    page = written["html"].read_text()
    assert '<img src="pareto-size.png"' in page and '<img src="pareto-speed.png"' in page
    assert '<a href="report.json">' in page


def test_the_html_table_holds_each_variants_own_figures(report):
    page = render_html(report, {})
    head, *rows = tables(page)[0]
    cols = columns(report)
    assert head[1] == [c.title for c in cols]
    assert [cells[0].rstrip(" ★") for _, cells in rows] == [v["name"] for v in report["variants"]]
    for (cls, cells), v in zip(rows, report["variants"]):
        cell = dict(zip(head[1], cells))
        assert cell["size MB"] == f"{v['size_mb']:.1f}" and cell["bpw"] == f"{v['bits_per_weight']:.2f}"
        assert cell["perplexity"] == f"{v['primary']:.4g}" and cell["KLD"] == f"{v['kld']:.4f}"
        assert cell["Δ vs fp32"] == f"{100 * v['relative_drop']:+.1f}%"
        assert cell["same top"] == f"{100 * v['same_top_token']:.1f}%"
        assert cell["gen tok/s"] == f"{v['generation_tps']:.1f}" and cell["gate"] == v["gate_status"]
        assert (cls == "recommended") == bool(v["recommended"]) == cells[0].endswith(" ★")
    fp32 = dict(zip(head[1], rows[0][1]))
    assert fp32["Δ vs fp32"] in ("+0.0%", "-0.0%")  # the reference against itself
    rec = report["recommendation"]
    # escaped: a reason can quote a name ("fp32's 4940.6 tokens/s") whose apostrophe the page writes as &#x27;
    assert f"<b>Recommended: {rec['name']}</b>" in page and html.escape(rec["reason"]) in page
    assert report["gate"]["description"] in page and f"{report['model']['params'] / 1e6:.1f}M parameters" in page


def test_the_page_escapes_what_it_did_not_write(report):
    r = copy.deepcopy(report)
    r["model"]["name"] = "<b>bold</b>"
    r["variants"][1]["notes"] = ["<script>alert(1)</script>"]
    r["skipped"] = [{"name": "int4", "reason": "a < b & c"}]
    page = render_html(r, {})
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "Edgewise report: &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>int4</b>: skipped — a &lt; b &amp; c" in page


def test_without_a_recommendation_no_row_is_marked(report):
    r = copy.deepcopy(report)
    r["recommendation"] = {"name": None, "reason": "no variant passes the gate", "bundle": None}
    for v in r["variants"]:
        v["recommended"] = False
    page = render_html(r, {})
    assert '<div class="rec none"><b>No recommendation.</b> no variant passes the gate.</div>' in page
    assert not any(cls == "recommended" for cls, _ in tables(page)[0][1:])
    assert '<p class="muted">No plottable variants.</p>' in page  # no plots were passed in


def test_device_estimates_are_labelled_only_off_the_host(report):
    assert "est. device tok/s" not in render_html(report, {}) and "<b>estimates</b>" not in render_html(report, {})
    r = copy.deepcopy(report)
    r["device"]["name"] = "raspberry-pi-5"
    for v in r["variants"]:
        v["est_device_tps"] = v["generation_tps"] / 4
    page = render_html(r, {})
    head, *rows = tables(page)[0]
    assert "<b>estimates</b>" in page
    i = head[1].index("est. device tok/s")
    assert [cells[i] for _, cells in rows] == [f"{v['generation_tps'] / 4:.1f}" for v in r["variants"]]


def test_plots_skip_rows_without_figures(report, tmp_path):
    r = copy.deepcopy(report)
    for v in r["variants"]:
        v["primary"] = None
    assert write_plots(r, tmp_path) == {} and not list(tmp_path.iterdir())


def test_pareto_front_keeps_only_undominated_points():
    # size (lower better) vs perplexity (lower better): b is beaten by a on both, c trades size for quality
    pts = [(10.0, 20.0, "a"), (12.0, 25.0, "b"), (5.0, 30.0, "c"), (5.0, 35.0, "d")]
    assert [p[2] for p in pareto_front(pts, True, True)] == ["c", "a"]


def test_terminal_table_has_the_html_columns_marked_for_it(report):
    console = Console(width=400, record=True)
    console.print(terminal_table(report))
    text = console.export_text()
    assert f"{report['model']['name']} · perplexity · device host" in text
    for v in report["variants"]:
        line = next(ln for ln in text.splitlines() if ln.strip("│ ").startswith(v["name"]))
        assert f"{v['size_mb']:.1f}" in line and f"{v['kld']:.4f}" in line and v["gate_status"] in line
    assert "prompt tok/s" not in text and "load s" not in text  # HTML only


def test_the_draft_columns_show_when_a_row_measured_one(report):
    """optimize times the lookup draft by default: its speed-up and acceptance get a column each, in the terminal
    and the page; a report without drafts (--draft none, an older report.json) shows neither."""
    assert all(v["draft"]["source"] == "lookup" for v in report["variants"])
    head, *rows = tables(render_html(report, {}))[0]
    for (_, cells), v in zip(rows, report["variants"]):
        cell = dict(zip(head[1], cells))
        assert cell["draft ×"] == f"{v['draft']['speedup']:.2f}"
        assert cell["acceptance"] == f"{100 * v['draft']['acceptance']:.1f}%"
    console = Console(width=400, record=True)
    console.print(terminal_table(report))
    text = console.export_text()
    assert "draft ×" in text and "acceptance" in text
    plain = copy.deepcopy(report)
    for v in plain["variants"]:
        del v["draft"]
    titles = [c.title for c in columns(plain)]
    assert "draft ×" not in titles and "acceptance" not in titles
    failed = copy.deepcopy(report)  # a draft that failed in the child (e.g. another tokenizer) shows a dash
    failed["variants"][0]["draft"] = {"source": "model:x", "error": "draft x does not share ..."}
    head, first, *_ = tables(render_html(failed, {}))[0]
    assert dict(zip(head[1], first[1]))["draft ×"] == "–"


def test_search_section_lists_every_candidate(report):
    r = copy.deepcopy(report)
    r["search"] = {"order": "most compressed first", "assumptions": ["smaller runs faster"], "budget_minutes": None,
                   "elapsed_s": 12.0, "stopped": "dominated", "measured": 1, "frontier": ["int8"],
                   "assumption_violations": [],
                   "candidates": [
                       {"name": "int8", "status": "measured", "est_weights_mb": 0.2, "relative_drop": 0.0012,
                        "generation_tps": 373.3, "size_mb": 0.25, "passes_gate": True, "seconds": {"total": 9.0},
                        "reason": ""},
                       {"name": "int4", "status": "dominated", "est_weights_mb": 0.1, "seconds": {},
                        "reason": "cannot beat int8"}]}
    page = render_html(r, {})
    assert "1 of 2 recipes measured in 12 s (stopped: <b>dominated</b>" in page
    rows = tables(page)[1]
    assert rows[1][1] == ["int8", "measured", "0.2", "0.1%", "373.3", "0.2", "pass", "9", ""]
    assert rows[2][1] == ["int4", "dominated", "0.1", "–", "–", "–", "–", "–", "cannot beat int8"]
    console = Console(width=300, record=True)
    console.print(search_table(r))
    text = console.export_text()
    assert "frontier: int8" in text and "│ int4   │ dominated │" in text and "cannot beat int8" in text


def test_items_needed_note_says_how_many_items_a_drop_needs():
    note = items_needed_note({"label": "quiz", "n_items": 60, "items_needed": {
        "drop": 0.02, "items": 1234, "power": 0.8, "variant": "int4", "discordance": 0.05}})
    assert note == ("quiz: 60 items; detecting a 2.0-point drop at 80% power needs about 1234 "
                    "(from int4's disagreement with the full model on 5.0% of items)")
    assert items_needed_note({"label": "text"}) is None
