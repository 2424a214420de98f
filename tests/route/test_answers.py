"""The on-disk answer cache: keyed by model, prompt and settings; failures never cached; survives reopening."""

import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.answers import Answer, AnswerCache, CloudAnswerer


class Counting:
    """An answerer that counts its calls (the cache must spare them)."""

    def __init__(self, key="m1", fail=False):
        self.key, self.name, self.calls, self.fail = key, key, 0, fail

    def __call__(self, prompt, max_tokens):
        self.calls += 1
        if self.fail:
            return Answer("", (), "connect: refused")
        return Answer(f"{prompt}!{max_tokens}", (-0.5, -0.25))


def test_second_ask_comes_from_disk(tmp_path):
    c = AnswerCache(tmp_path / "a.sqlite")
    who = Counting()
    a, hit = c.answer(who, "p", 8)
    assert (a.text, a.logprobs, hit, who.calls) == ("p!8", (-0.5, -0.25), False, 1)
    c.close()
    c = AnswerCache(tmp_path / "a.sqlite")  # a new process would see the same
    b, hit = c.answer(who, "p", 8)
    assert (b, hit, who.calls) == (a, True, 1)
    c.answer(who, "p", 9)  # other settings: a new answer
    c.answer(Counting("m2"), "p", 8)  # another model: a new answer
    assert who.calls == 2 and len(c) == 3


def test_failures_are_not_cached(tmp_path):
    c = AnswerCache(tmp_path / "a.sqlite")
    bad = Counting(fail=True)
    a, _ = c.answer(bad, "p", 8)
    assert a.error and len(c) == 0
    c.answer(bad, "p", 8)
    assert bad.calls == 2


def test_corrupt_cache_file_is_a_clear_error(tmp_path):
    f = tmp_path / "a.sqlite"
    f.write_bytes(b"not a database" * 100)
    with pytest.raises(EdgewiseError, match="not a usable SQLite file"):
        AnswerCache(f).get("k")


def test_cloud_answerer_turns_a_dead_cloud_into_a_failed_answer(tmp_path):
    from edgewise.bench.llamacpp_server import free_port

    who = CloudAnswerer(f"http://127.0.0.1:{free_port()}/v1", "m", deadline_s=2.0)
    a = who("hello", 4)
    assert a.text == "" and a.error.startswith("connect")
    assert who.key.startswith("cloud:http://127.0.0.1:")
