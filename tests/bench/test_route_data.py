"""benchmarks/route_data.py offline: evals sets become MMLU rows the real reader scores, a family that cannot be had
is skipped with its reason while the rest go on, and FAMILIES.json says which are present.

The package here is a real zip built in the test and pinned by its sha256, so `download` takes it from the data
folder as it would a wheel pip saved earlier, and nothing reaches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import zipfile
from pathlib import Path

from edgewise.evaluate.answers import score
from edgewise.evaluate.task_files import load_task

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "route_data.py"


def _load():
    spec = importlib.util.spec_from_file_location("route_data", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["route_data"] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


rd = _load()

SYSTEM = {"role": "system", "content": "The following are multiple choice questions answer the correct option."}
QUARTZ = [  # evals' QuaRTz layout: options on their own lines
    {"input": [SYSTEM, {"role": "user",
                        "content": "Moving closer to a speaker, the sound gets\n\n A: louder\n B: quieter"}],
     "ideal": "A"},
    {"input": [SYSTEM, {"role": "user", "content": "Colder water holds\n\n A: less gas\n B: more gas"}], "ideal": "B"},
    # the same item twice with two answers: its reference is unknown, both copies go
    {"input": [SYSTEM, {"role": "user", "content": "Planets closer together attract\n\n A: less\n B: more"}],
     "ideal": "A"},
    {"input": [SYSTEM, {"role": "user", "content": "Planets closer together attract\n\n A: less\n B: more"}],
     "ideal": "B"},
    {"input": [SYSTEM, {"role": "user", "content": "No options at all here"}], "ideal": "A"},
    {"input": [SYSTEM, {"role": "user", "content": "Gold out of range\n\n A: yes\n B: no"}], "ideal": "C"},
]
SOCIALIQA = [  # evals' Social IQa layout: options inline, ';'-separated, with a closing full stop
    {"input": [{"role": "user", "content": "Alex found a ring on the beach. What will the owner want to do next? "
                                           "A: throw it away; B: get it back; C: leave the beach."}], "ideal": "B"},
    {"input": [{"role": "user", "content": "Alex found a ring on the beach. What will the owner want to do next? "
                                           "A: throw it away; B: get it back; C: leave the beach."}], "ideal": "B"},
    {"input": [{"role": "user", "content": "Casey was a star player. How would you describe Casey? "
                                           "A: lazy; B: shy; C: athletic."}], "ideal": "C"},
]


def _lines(rows) -> list[str]:
    return [json.dumps(r) for r in rows] + ["", "{not json"]


def test_quartz_layout_converts_to_rows_the_mmlu_reader_scores(tmp_path):
    rows, dropped = rd.evals_to_mmlu(_lines(QUARTZ), rd.options_by_line, "quartz/samples.jsonl")
    assert dropped == {"unparsed": 3, "duplicate": 0, "conflicting": 2}
    assert [(r["question"], r["choices"], r["answer"]) for r in rows] == [
        ("Moving closer to a speaker, the sound gets", ["louder", "quieter"], 0),
        ("Colder water holds", ["less gas", "more gas"], 1)]
    assert rows[0]["source"] == "quartz/samples.jsonl:1"
    f = tmp_path / "quartz.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = load_task(f"mmlu:{f}")
    assert len(items) == 2
    by_q = {it.options: it for it in items}
    it = by_q[("less gas", "more gas")]
    assert it.kind == "choice" and it.reference == "B"
    assert "Colder water holds\nA. less gas\nB. more gas\n" in it.prompt
    assert score(it, "B") == 1.0 and score(it, "A") == 0.0 and score(it, "more gas") == 1.0


def test_socialiqa_layout_keeps_one_copy_of_a_repeated_item(tmp_path):
    rows, dropped = rd.evals_to_mmlu(_lines(SOCIALIQA), rd.options_inline, "socialiqa/test.jsonl")
    assert dropped == {"unparsed": 1, "duplicate": 1, "conflicting": 0}
    assert rows[0] == {"question": "Alex found a ring on the beach. What will the owner want to do next?",
                       "choices": ["throw it away", "get it back", "leave the beach"], "answer": 1,
                       "source": "socialiqa/test.jsonl:1"}
    assert rows[1]["choices"] == ["lazy", "shy", "athletic"] and rows[1]["answer"] == 2
    f = tmp_path / "socialiqa.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert sorted(it.reference for it in load_task(f"mmlu:{f}")) == ["B", "C"]


def test_option_parsers_refuse_what_is_not_their_layout():
    assert rd.options_by_line("Q\n A: x\n C: y") is None  # letters must run A, B, ...
    assert rd.options_by_line(" A: x\n B: y") is None  # no question
    assert rd.options_inline("Q? A: x, B: y.") is None
    assert rd.options_inline("Q? A: x; C: y.") is None


def _package(tmp_path: Path, files: dict[str, str]):
    """A real zip in the data folder, pinned by its sha256 as a wheel pip saved earlier would be."""
    base = tmp_path / "data"
    base.mkdir()
    whl = base / "toy-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return base, rd.Package("toy==1.0", whl.name, hashlib.sha256(whl.read_bytes()).hexdigest())


def test_a_family_that_cannot_be_had_is_skipped_and_the_rest_go_on(tmp_path, capsys):
    base, pkg = _package(tmp_path, {
        "toy/quartz.jsonl": "\n".join(_lines(QUARTZ)),
        "toy/gsm8k.jsonl": json.dumps({"question": "1+1?", "answer": "no number mark"}) + "\n",
    })
    families = (
        rd.Family("mmlu", "mmlu", pkg, "toy/quartz.jsonl", "x/toy/quartz.jsonl", "CC-BY-4.0", rd.options_by_line),
        rd.Family("gsm8k", "gsm8k", pkg, "toy/gsm8k.jsonl", "x/toy/gsm8k.jsonl", "MIT"),
        rd.Family("absent", "bigbench", pkg, "toy/absent/task.json", "x/toy/absent/task.json", "Apache-2.0"),
    )
    why = rd.run(base, families)
    out = capsys.readouterr().out.splitlines()
    # gsm8k is required, and the reader rejected its file: the run fails, saying why, after writing the rest
    assert why is not None and "gsm8k missing" in why and "gsm8k reader rejects" in why
    assert [ln for ln in out if ln.startswith(("mmlu:", "gsm8k:", "absent:"))] == [
        "mmlu: dropped 5 rows (3 unparsed, 2 conflicting)",
        "mmlu: 2 items in x/toy/quartz.jsonl (CC-BY-4.0)",
        out[2],
        "absent: skipped: toy-1.0-py3-none-any.whl has no toy/absent/task.json"]
    assert out[2].startswith("gsm8k: skipped: the gsm8k reader rejects gsm8k.jsonl")
    assert (base / "x/toy/quartz.jsonl").is_file() and not (base / "x/toy/gsm8k.jsonl").exists()
    doc = json.loads((base / "FAMILIES.json").read_text())
    assert doc["families"] == {"mmlu": {"kind": "mmlu", "file": "x/toy/quartz.jsonl", "items": 2,
                                        "licence": "CC-BY-4.0", "package": "toy==1.0", "member": "toy/quartz.jsonl",
                                        "package_sha256": pkg.sha256}}
    assert set(doc["skipped"]) == {"gsm8k", "absent"}


def test_families_json_lists_present_and_skipped(tmp_path):
    fam = next(f for f in rd.FAMILIES if f.name == "socialiqa")
    path = rd.write_families(tmp_path, {"socialiqa": rd.family_entry(fam, 7)},
                             {"strategyqa": "pip download bigbench==1.0.0 failed: no matching distribution"})
    doc = json.loads(path.read_text())
    assert path == tmp_path / "FAMILIES.json"
    assert doc["families"]["socialiqa"] == {
        "kind": "mmlu", "file": "x/evals/socialiqa.jsonl", "items": 7, "licence": "CC-BY-4.0",
        "package": "evals==3.0.1.post1", "member": "evals/registry/data/theory_of_mind/socialiqa/test.jsonl",
        "package_sha256": rd.EVALS.sha256}
    assert doc["skipped"] == {"strategyqa": "pip download bigbench==1.0.0 failed: no matching distribution"}


def test_every_family_has_a_kind_the_reader_knows_and_a_file_under_the_data_folder(tmp_path):
    from edgewise.evaluate.task_files import ROUTE_KINDS as KINDS

    kinds, files = rd.task_kinds(), rd.task_files(tmp_path)
    assert set(kinds) == set(files) and {"mmlu", "gsm8k", "socialiqa", "quartz"} <= set(kinds)
    assert set(kinds.values()) <= set(KINDS)
    assert all(p.is_relative_to(tmp_path) for p in files.values())
    assert all(f.package.sha256 and len(f.package.sha256) == 64 for f in rd.FAMILIES)
