"""Both models' answers to task items, cached on disk so that a rerun costs nothing.

The cache is one SQLite file (default `$EDGEWISE_HOME/route-answers.sqlite`). A key is the sha256 of the
model's identity, the messages and the generation settings:
- an edge model is identified by the content hash of its file, its backend and its precision, so a
  re-quantized or replaced model never reuses old answers;
- a cloud model by the hash of its weights when the caller knows it (our benchmark serves a GGUF whose
  sha256 is recorded), else by its URL and name.
SQLite commits each answer as it comes, so an interrupted run keeps everything it had paid for. Each answer keeps
the seconds it took, so a signal's cost in edge time is known on a rerun that generates nothing.

Sampled answers (answer consistency: the edge answers k more times at a temperature) are cached the same way, with
the temperature and the seed in the key; the seeds are fixed, so a rerun asks for, and finds, the same samples. Long
samples are drawn as one batch (runtime.batch), short ones in turn: either is a draw from the model with that seed.

`answer_items` turns both models' answers into scored `EvalRow`s, the input of edgewise.route.eval.evaluation.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

from edgewise.errors import EdgewiseError
from edgewise.evaluate.answers import TaskItem, final_answer, score
from edgewise.home import content_hash, edgewise_home
from edgewise.progress import Progress
from edgewise.route.cloud import CloudClient, CloudConfig, CloudError


@dataclass(frozen=True)
class Answer:
    text: str
    logprobs: tuple[float, ...] = ()  # per generated token; empty when the model gave none
    error: str | None = None  # the request failed (the answer then scores 0 and is not cached)
    seconds: float | None = None  # wall time of the call that made it (None: cached before times were kept)


class Answerer(Protocol):
    """Greedy answers. An answerer that can also sample has `sample(prompt, max_tokens, temperature, seed)`
    (found with hasattr): only those give the answer-consistency signal."""

    key: str  # the model's identity in the cache
    name: str  # for progress and reports

    def __call__(self, prompt: str, max_tokens: int) -> Answer: ...


@dataclass(frozen=True)
class ConsistencyConfig:
    """Answer consistency: k sampled answers at `temperature` (k = 0: off). Sample j of a prompt is drawn with seed
    item_seed(prompt) + seed + j: fixed, so a rerun finds it in the cache, and different for every prompt. With the
    same k seeds for every item, the k draws would be the same k quantiles of every item's answer distribution, and
    agreement would measure the model's letter prior as much as the item."""

    k: int = 4
    temperature: float = 0.7
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise EdgewiseError(f"consistency samples k must be an integer >= 0 (0 turns it off), got {self.k!r}")
        if not 0.0 < float(self.temperature) <= 2.0:
            raise EdgewiseError(f"consistency temperature must be in (0, 2], e.g. 0.7, got {self.temperature!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise EdgewiseError(f"consistency seed must be an integer, got {self.seed!r}")


def item_seed(prompt: str) -> int:
    """A prompt's own sampling seed (31 bits of its sha256)."""
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big") >> 1


class AnswerCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else edgewise_home() / "route-answers.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.commit()
        except sqlite3.DatabaseError as e:
            raise EdgewiseError(f"answer cache {self.path} is not a usable SQLite file ({e}): "
                                "delete it, or pass another --cache") from None
        self._lock = threading.Lock()

    @staticmethod
    def key(model_key: str, prompt: str, settings: dict) -> str:
        blob = json.dumps({"model": model_key, "prompt": prompt, "settings": settings}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        v = json.loads(row[0])
        return Answer(v["text"], tuple(v.get("logprobs", ())), seconds=v.get("seconds"))

    def put(self, key: str, answer: Answer) -> None:
        if answer.error is not None:
            return  # a failure is retried on the next run, never remembered
        value = json.dumps({"text": answer.text, "logprobs": list(answer.logprobs), "seconds": answer.seconds})
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers (key, value) VALUES (?, ?)", (key, value))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def answer(self, who: Answerer, prompt: str, max_tokens: int, temperature: float = 0.0,
               seed: int | None = None) -> tuple[Answer, bool]:
        """(answer, came from the cache). temperature 0 is the greedy answer; above 0, a sample drawn with `seed`
        from `who.sample`."""
        settings = {"max_tokens": max_tokens, "temperature": float(temperature)}
        if temperature > 0:  # greedy keys stay as they were, so older caches keep their answers
            if not hasattr(who, "sample"):
                raise EdgewiseError(f"{who.name} cannot sample: answer consistency needs an edge model run by Edgewise")
            settings["seed"] = seed
        k = self.key(who.key, prompt, settings)
        if (hit := self.get(k)) is not None:
            return hit, True
        t0 = time.perf_counter()
        a = who(prompt, max_tokens) if temperature <= 0 else who.sample(prompt, max_tokens, temperature, seed)
        if a.seconds is None:
            a = replace(a, seconds=time.perf_counter() - t0)
        self.put(k, a)
        return a, False

    def samples(self, who: Answerer, prompt: str, max_tokens: int,
                cfg: ConsistencyConfig) -> tuple[list[Answer], int]:
        """(the k sampled answers, how many were generated now rather than read from the cache). An answerer with
        `sample_many` draws the missing ones in one call (an edge model may decode them as one batch); each then
        keeps its share of that call's time, so the k together still cost what they took."""
        seeds = [item_seed(prompt) + cfg.seed + j for j in range(cfg.k)]
        if not hasattr(who, "sample_many"):
            got = [self.answer(who, prompt, max_tokens, cfg.temperature, s) for s in seeds]
            return [a for a, _ in got], sum(not hit for _, hit in got)
        keys = [self.key(who.key, prompt, {"max_tokens": max_tokens, "temperature": float(cfg.temperature),
                                           "seed": s}) for s in seeds]
        found = [self.get(k) for k in keys]
        missing = [j for j, a in enumerate(found) if a is None]
        if missing:
            made = who.sample_many(prompt, max_tokens, cfg.temperature, [seeds[j] for j in missing])
            for j, a in zip(missing, made):
                self.put(keys[j], a)
                found[j] = a
        return found, len(missing)


class EdgeAnswerer:
    """A local model through Edgewise's runtime: greedy, chat template, log-probs of every answer token."""

    def __init__(self, ref: str, backend: str = "ort", precision: str = "auto", threads: int | None = None):
        from edgewise.runtime import load_model  # torch/onnxruntime: loaded only when an edge model runs

        self.lm = load_model(ref, backend=backend, precision=precision, threads=threads)
        self.key = f"edge:{content_hash(Path(self.lm.source.path))}:{self.lm.backend}:{self.lm.precision}"
        self.name = f"{ref} ({self.lm.backend} {self.lm.precision})"
        self.reused_prompt_tokens = 0  # prompt tokens the samples took from the cache instead of computing
        self._session = None  # the greedy answer's KV cache, which the samples of the same prompt go on from
        self._one_session = False  # the backend has only the model's own session (llama.cpp)

    def __call__(self, prompt: str, max_tokens: int) -> Answer:
        return self.sample(prompt, max_tokens, 0.0, None)

    def sample(self, prompt: str, max_tokens: int, temperature: float, seed: int | None) -> Answer:
        from edgewise.runtime import GenerationConfig, generate

        cfg = GenerationConfig(max_tokens=max_tokens, temperature=temperature, seed=seed)
        # The k consistency samples of one prompt share its prefill through the KV cache: on a multiple-choice
        # item the prompt is most of the cost, so k samples cost about one greedy answer, not k + 1. The greedy
        # answer always runs in a new session (an empty cache), so it does not depend on what came before (a
        # prompt computed in two passes can round differently under int8 activations) and older caches keep their
        # answers; the samples then reuse that session, whose record says what it holds.
        if temperature <= 0 or self._session is None:
            self._session = self._new_session()
        r = generate(self.lm, prompt, cfg, chat=True, session=self._session,
                     reuse_cache=self._session is None and temperature > 0)
        self.reused_prompt_tokens += r.cached_tokens
        return Answer(r.text, tuple(float(x) for x in r.logprobs))

    def sample_many(self, prompt: str, max_tokens: int, temperature: float, seeds: list[int]) -> list[Answer]:
        """One sample per seed. Long answers are decoded as one batch (runtime.batch: 4 rows cost about 2); short
        ones in turn from the greedy answer's cached prompt, which is cheaper when the prompt is most of the work."""
        from edgewise.runtime import GenerationConfig, batch_pays, generate_many

        cfg = GenerationConfig(max_tokens=max_tokens, temperature=temperature)
        if not batch_pays(self.lm, cfg, len(seeds)):
            out = []
            for s in seeds:
                t0 = time.perf_counter()
                a = self.sample(prompt, max_tokens, temperature, s)
                out.append(replace(a, seconds=time.perf_counter() - t0))
            return out
        t0 = time.perf_counter()
        rs = generate_many(self.lm, prompt, cfg, seeds, chat=True, batch=True)  # batch_pays said so above
        share = (time.perf_counter() - t0) / len(seeds)
        return [Answer(r.text, tuple(float(x) for x in r.logprobs), seconds=share) for r in rs]

    def _new_session(self):
        """A fresh session on the model's weights; None where the backend holds one session per model (its
        own cache, reused through reuse_cache). Such a backend says so once: it is not asked again."""
        if self._one_session:
            return None
        try:
            return self.lm.session()
        except EdgewiseError:
            self._one_session = True
            return None


class CloudAnswerer:
    """Any OpenAI-compatible chat endpoint, greedy, through the router's own client (retries, deadline)."""

    def __init__(self, url: str, model: str, *, model_hash: str | None = None, deadline_s: float = 300.0,
                 key_env: str | None = None, client: Callable | None = None):
        self.client = client or CloudClient(CloudConfig(url=url, model=model, deadline_s=deadline_s,
                                                        key_env=key_env))
        # Known weights identify the model wherever they are served (a benchmark's loopback port changes every
        # run); otherwise the endpoint and the name are all there is.
        self.key = f"cloud:{model}:{model_hash}" if model_hash else f"cloud:{url.rstrip('/')}:{model}"
        self.name = f"{model} at {url}"

    def __call__(self, prompt: str, max_tokens: int) -> Answer:
        try:
            a = self.client(prompt, max_tokens=max_tokens, temperature=0.0)
        except CloudError as e:
            return Answer("", (), f"{e.kind}: {e}")
        return Answer(a.text)


# --- scored rows ------------------------------------------------------------------------------

FOLDS = 5  # route eval's cross-validation folds


@dataclass
class EvalRow:
    family: str
    id: str
    prompt: str
    edge_answer: str
    edge_logprobs: list[float]
    edge_quality: float
    cloud_answer: str
    cloud_quality: float
    error: str | None = None  # a model failed on this item (the row is left out of the metrics)
    consistency: float | None = None  # share of sampled answers with the greedy answer's final answer
    edge_seconds: float | None = None  # the greedy answer's edge time (None: cached before times were kept)
    sample_seconds: float | None = None  # the k samples' edge time together
    edge_samples: list[str] = field(default_factory=list)

    @property
    def calibration(self) -> bool:
        """The half this row belongs to: fixed by its id, the same on every run."""
        return hashlib.sha256(f"split:{self.id}".encode()).digest()[0] % 2 == 0

    @property
    def fold(self) -> int:
        """Its fold of the 5-fold cross-validation, fixed by its id like the half."""
        return hashlib.sha256(f"fold:{self.id}".encode()).digest()[0] % FOLDS


def agreement(item: TaskItem, greedy: str, samples: list[str]) -> float:
    """Share of the samples whose final answer is the greedy one's. A greedy answer that commits to nothing (no
    letter, no number) scores 0: agreeing on no answer is no reason to trust it."""
    g = final_answer(item, greedy)
    if g is None or not samples:
        return 0.0
    return sum(final_answer(item, s) == g for s in samples) / len(samples)


def answer_items(items: list[TaskItem], edge: Answerer, cloud: Answerer, cache: AnswerCache,
                 progress: Progress | None = None,
                 consistency: ConsistencyConfig | None = ConsistencyConfig(), *,
                 overlap: bool = False) -> list[EvalRow]:
    """Both models' scored answers to every item, in item order (cached answers cost nothing).

    By default the edge answers all items first (with its consistency samples when it can sample and k > 0), then
    the cloud: on a small machine the two never compete for the cores, so the edge's seconds are its own.
    With `overlap`, the cloud answers in a second thread while the edge answers. A cloud in another process (a
    server on loopback, or a real remote one) then uses the cores the edge leaves idle, and the run takes the longer
    of the two instead of their sum; the edge's seconds are then measured beside the cloud's load. If the edge
    fails, the cloud stops after its current request."""
    progress = progress or Progress()
    sampling = consistency is not None and consistency.k > 0 and hasattr(edge, "sample")
    extra = f", +{consistency.k} samples at T={consistency.temperature:g}" if sampling else ""
    got, samples = {}, {}
    step_lock, stop = threading.Lock(), threading.Event()

    def answer_all(who: Answerer, label: str) -> None:
        for it in items:
            if stop.is_set():
                return
            with step_lock:  # one progress display, two threads
                progress.step(it.family)
            got[label, it.id] = cache.answer(who, it.prompt, it.max_tokens)[0]
            if sampling and who is edge:
                samples[it.id] = cache.samples(edge, it.prompt, it.max_tokens, consistency)[0]

    if overlap and cloud is not edge:
        progress.stage(f"edge and cloud answers at once ({edge.name}{extra}; {cloud.name})", 2 * len(items))
        with ThreadPoolExecutor(1, thread_name_prefix="cloud-answers") as pool:
            cloud_done = pool.submit(answer_all, cloud, "cloud")
            try:
                answer_all(edge, "edge")
            except BaseException:
                stop.set()
                raise
            cloud_done.result()  # the cloud thread's own failure, if any, surfaces here
    else:
        for who, label in ((edge, "edge"), (cloud, "cloud")):
            progress.stage(f"{label} answers ({who.name}{extra if who is edge else ''})", len(items))
            answer_all(who, label)
    progress.done()
    rows = []
    for it in items:
        e, c = got["edge", it.id], got["cloud", it.id]
        err = "; ".join(f"{k} {a.error}" for k, a in (("edge", e), ("cloud", c)) if a.error) or None
        s = [a.text for a in samples.get(it.id, [])]
        secs = [a.seconds for a in samples.get(it.id, [])]
        rows.append(EvalRow(it.family, it.id, it.prompt, e.text, list(e.logprobs), score(it, e.text),
                            c.text, score(it, c.text), err,
                            consistency=agreement(it, e.text, s) if s else None, edge_seconds=e.seconds,
                            sample_seconds=sum(secs) if s and None not in secs else None, edge_samples=s))
    return rows
