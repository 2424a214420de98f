"""The on-disk answer cache: keyed by model, prompt and settings; failures never cached; survives reopening."""

from dataclasses import replace

import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.eval.answers import Answer, AnswerCache, CloudAnswerer, ConsistencyConfig, item_seed


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
    assert a.seconds is not None and a.seconds >= 0  # the call's own time, kept with the answer
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


class Sampling(Counting):
    """An answerer that can also sample: the text says which temperature and seed made it."""

    def sample(self, prompt, max_tokens, temperature, seed):
        self.calls += 1
        return Answer(f"{prompt}@{temperature}#{seed}", (-1.0,), seconds=0.25)


def test_samples_are_keyed_by_temperature_and_seed_and_keep_their_time(tmp_path):
    c = AnswerCache(tmp_path / "a.sqlite")
    who = Sampling()
    greedy, _ = c.answer(who, "p", 8)
    got, made = c.samples(who, "p", 8, ConsistencyConfig(k=3, temperature=0.7, seed=5))
    base = item_seed("p") + 5  # the prompt's own seeds, then the config's offset
    assert [a.text for a in got] == [f"p@0.7#{base + j}" for j in range(3)] and made == 3
    assert all(a.seconds == 0.25 for a in got)  # an answerer's own time is kept as it is
    c.close()
    c = AnswerCache(tmp_path / "a.sqlite")
    again, made = c.samples(who, "p", 8, ConsistencyConfig(k=4, temperature=0.7, seed=5))
    assert again[:3] == got and made == 1 and who.calls == 5  # one new seed
    _, made = c.samples(who, "p", 8, ConsistencyConfig(k=3, temperature=1.0, seed=5))
    assert made == 3  # another temperature: other samples
    assert c.answer(who, "p", 8) == (greedy, True)  # the greedy key is unchanged by sampling


class SamplingMany(Sampling):
    """An answerer that draws several seeds in one call (an edge model batching its samples)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.batches = []

    def sample_many(self, prompt, max_tokens, temperature, seeds):
        self.batches.append(list(seeds))
        return [Answer(f"{prompt}@{temperature}#{s}", (-1.0,), seconds=0.5 / len(seeds)) for s in seeds]


def test_missing_samples_are_drawn_in_one_call_under_the_same_keys(tmp_path):
    c = AnswerCache(tmp_path / "a.sqlite")
    cfg = ConsistencyConfig(k=4, temperature=0.7, seed=0)
    base = item_seed("p")
    c.answer(Sampling(), "p", 8, 0.7, base + 1)  # one sample drawn alone earlier
    who = SamplingMany()
    got, made = c.samples(who, "p", 8, cfg)
    assert who.batches == [[base, base + 2, base + 3]] and made == 3  # only the missing seeds, together
    assert [a.text for a in got] == [f"p@0.7#{base + j}" for j in range(4)]
    assert sum(a.seconds for a in got if a.text != f"p@0.7#{base + 1}") == pytest.approx(0.5)  # the call's time
    again, made = c.samples(Sampling(), "p", 8, cfg)  # an answerer drawing one at a time finds them all
    assert again == got and made == 0


def test_sampling_needs_an_answerer_that_samples(tmp_path):
    c = AnswerCache(tmp_path / "a.sqlite")
    with pytest.raises(EdgewiseError, match="cannot sample"):
        c.answer(Counting(), "p", 8, temperature=0.7, seed=0)


@pytest.mark.parametrize("bad", [{"k": -1}, {"k": 2.5}, {"temperature": 0.0}, {"temperature": 3.0}, {"seed": "x"}])
def test_consistency_config_refuses_bad_values(bad):
    with pytest.raises(EdgewiseError):
        ConsistencyConfig(**bad)


class Slow(Counting):
    """An answerer that takes `delay` seconds per answer and records when it was busy (like a cloud in another
    process, it leaves the caller's thread idle while it waits)."""

    def __init__(self, key, delay, fail_at=None):
        super().__init__(key)
        self.delay, self.fail_at, self.busy = delay, fail_at, []

    def __call__(self, prompt, max_tokens):
        import time

        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("edge crashed")
        t0 = time.monotonic()
        time.sleep(self.delay)
        self.busy.append((t0, time.monotonic()))
        return super().__call__(prompt, max_tokens)


def _items(n):
    from edgewise.evaluate.answers import TaskItem

    return [TaskItem("qa", f"{i:016x}", f"question {i}", "contains", (f"question {i}",), max_tokens=4)
            for i in range(n)]


def test_overlap_answers_edge_and_cloud_at_once_and_gives_the_same_rows(tmp_path):
    from edgewise.route.eval.answers import answer_items

    items = _items(6)
    edge, cloud = Slow("edge", 0.05), Slow("cloud", 0.05)
    rows = answer_items(items, edge, cloud, AnswerCache(tmp_path / "a.sqlite"), consistency=None, overlap=True)
    assert edge.calls == cloud.calls == len(items)
    # the two were busy at the same time: some edge answer and some cloud answer overlap in time
    assert any(a0 < b1 and b0 < a1 for a0, a1 in edge.busy for b0, b1 in cloud.busy)
    seq_edge, seq_cloud = Slow("edge", 0.0), Slow("cloud", 0.0)
    in_turn = answer_items(items, seq_edge, seq_cloud, AnswerCache(tmp_path / "b.sqlite"), consistency=None)
    timeless = lambda rs: [replace(r, edge_seconds=None) for r in rs]  # noqa: E731 (the seconds differ by design)
    assert timeless(rows) == timeless(in_turn)  # same items, same order, same answers and scores
    assert [r.edge_answer for r in rows] == [f"question {i}!4" for i in range(6)]


def test_overlap_stops_the_cloud_when_the_edge_fails(tmp_path):
    from edgewise.route.eval.answers import answer_items

    items = _items(40)
    edge, cloud = Slow("edge", 0.01, fail_at=1), Slow("cloud", 0.02)
    with pytest.raises(RuntimeError, match="edge crashed"):
        answer_items(items, edge, cloud, AnswerCache(tmp_path / "a.sqlite"), consistency=None, overlap=True)
    assert cloud.calls < len(items)  # it stopped after its current request instead of answering all 40
