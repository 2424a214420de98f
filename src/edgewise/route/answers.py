"""Both models' answers to task items, cached on disk so that a rerun costs nothing.

The cache is one SQLite file (default `$EDGEWISE_HOME/route-answers.sqlite`). A key is the sha256 of the
model's identity, the messages and the generation settings:
- an edge model is identified by the content hash of its file, its backend and its precision, so a
  re-quantized or replaced model never reuses old answers;
- a cloud model by the hash of its weights when the caller knows it (our benchmark serves a GGUF whose
  sha256 is recorded), else by its URL and name.
SQLite commits each answer as it comes, so an interrupted run keeps everything it had paid for.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from edgewise.errors import EdgewiseError
from edgewise.home import content_hash, edgewise_home
from edgewise.route.cloud import CloudClient, CloudConfig, CloudError


@dataclass(frozen=True)
class Answer:
    text: str
    logprobs: tuple[float, ...] = ()  # per generated token; empty when the model gave none
    error: str | None = None  # the request failed (the answer then scores 0 and is not cached)


class Answerer(Protocol):
    key: str  # the model's identity in the cache
    name: str  # for progress and reports

    def __call__(self, prompt: str, max_tokens: int) -> Answer: ...


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
        return Answer(v["text"], tuple(v.get("logprobs", ())))

    def put(self, key: str, answer: Answer) -> None:
        if answer.error is not None:
            return  # a failure is retried on the next run, never remembered
        value = json.dumps({"text": answer.text, "logprobs": list(answer.logprobs)})
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers (key, value) VALUES (?, ?)", (key, value))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def answer(self, who: Answerer, prompt: str, max_tokens: int) -> tuple[Answer, bool]:
        """(answer, came from the cache)."""
        k = self.key(who.key, prompt, {"max_tokens": max_tokens, "temperature": 0.0})
        if (hit := self.get(k)) is not None:
            return hit, True
        a = who(prompt, max_tokens)
        self.put(k, a)
        return a, False


class EdgeAnswerer:
    """A local model through Edgewise's runtime: greedy, chat template, log-probs of every answer token."""

    def __init__(self, ref: str, backend: str = "ort", precision: str = "auto", threads: int | None = None):
        from edgewise.runtime import load_model  # torch/onnxruntime: loaded only when an edge model runs

        self.lm = load_model(ref, backend=backend, precision=precision, threads=threads)
        self.key = f"edge:{content_hash(Path(self.lm.source.path))}:{self.lm.backend}:{self.lm.precision}"
        self.name = f"{ref} ({self.lm.backend} {self.lm.precision})"

    def __call__(self, prompt: str, max_tokens: int) -> Answer:
        from edgewise.runtime import GenerationConfig, generate

        r = generate(self.lm, prompt, GenerationConfig(max_tokens=max_tokens, temperature=0.0), chat=True)
        return Answer(r.text, tuple(float(x) for x in r.logprobs))


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
