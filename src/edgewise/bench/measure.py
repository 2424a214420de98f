"""Cost measurements of one loaded model, run inside a child process (see child.py) so memory figures are its own.

Decoders: load time, time to first token, prompt and generation tokens/s, per-token decode latency p50/p95, all
read from the runtime's own `stream_generate` responses; weight bytes streamed per token for the bandwidth figure.
With a draft spec (spec["draft"]), decoders also time greedy decode with that draft against plain decode on a
grounded prompt, both in each of the same interleaved rounds, so the speed-up is a ratio within one process.
Encoders: latency of one request (p50/p95) and batched throughput.
"""

from __future__ import annotations

import resource
import time
from importlib import resources
from pathlib import Path

import numpy as np
import psutil

from edgewise.runtime import GenerationConfig, embed, load_model, prompt_ids, stream_generate
from edgewise.runtime.api import text_model
from edgewise.errors import EdgewiseError
from edgewise.runtime.backend import capability
from edgewise.runtime.drafts import load_draft

PROMPT_CHARS = 1200  # ~300 tokens of the demo text: long enough that prompt tokens/s means something
ENCODER_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Edge devices run small models locally, offline and privately.",
    "What is the capital of France? Paris is the capital of France.",
    "Quantization stores weights in fewer bits to save memory and bandwidth.",
]


GROUNDED_CHARS = 600  # 252 prompt tokens on SmolLM2-135M with its chat template: longer than a bench copies


def _scene() -> str:
    return (resources.files("edgewise") / "data" / "text" / "hamlet-act1-scene1.txt").read_text()


def default_prompt() -> str:
    return _scene()[:PROMPT_CHARS] + "\n\nRetell this scene in your own words, in detail."


def grounded_prompt() -> str:
    """The draft's prompt: a packaged passage to copy. Prompt lookup pays where the answer repeats its input
    (rewrites, extraction, code edits); a copy asks for exactly that, so the figure shows what a draft can do on
    grounded work, and the same words on every model make the rows comparable. The ask comes last, so cutting the
    prompt from the front to fit a short context keeps it."""
    return _scene()[:GROUNDED_CHARS] + "\n\nRepeat the passage above word for word."


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1 << 20)


def _peak_rss_mb() -> float:
    """This process's high-water RSS. Read from /proc (VmHWM): ru_maxrss of a child started by fork+exec keeps the
    parent's RSS at fork time as a floor, which would charge every variant with the parent's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def weight_bytes_per_token(lm) -> int | None:
    """Bytes of weights one decode step reads, where the backend can say (its `weight_bytes_per_token`)."""
    return capability(lm, "weight_bytes_per_token")


def _fitted_ids(lm, text: str, max_tokens: int) -> list[int]:
    """The prompt as token ids, cut from the front to fit a short context (test models hold only a few hundred)."""
    return prompt_ids(lm, text)[-max(8, lm.context_length - max_tokens - 1):]


def _greedy(lm, prompt: list[int], max_tokens: int, draft=None):
    """One greedy generation of max_tokens (ignore_eos: a run that stops early would time a few tokens): its last
    response (the running totals) and every token it chose."""
    last, ids = None, []
    for r in stream_generate(lm, prompt, GenerationConfig(max_tokens=max_tokens, ignore_eos=True), draft=draft):
        last = r
        ids += r.token_ids
    return last, ids


class DraftRounds:
    """The draft's share of each round: plain decode then decode with the draft, on the grounded prompt."""

    def __init__(self, lm, spec: str, max_tokens: int, threads: int | None):
        self.spec, self.max_tokens = spec, max_tokens
        self.draft = load_draft(spec, lm, threads=threads)  # built once: a model draft loads its model here
        self.prompt = _fitted_ids(lm, grounded_prompt(), max_tokens)
        self.plain_tps, self.draft_tps, self.same = [], [], True
        self.proposed = self.accepted = self.steps = self.tokens = 0
        _greedy(lm, self.prompt, 4, self.draft)  # warm-up of the verify path (and of a model draft's session)

    def round(self, lm) -> None:
        plain, plain_ids = _greedy(lm, self.prompt, self.max_tokens)
        fast, fast_ids = _greedy(lm, self.prompt, self.max_tokens, self.draft)
        self.plain_tps.append(plain.generation_tps)
        self.draft_tps.append(fast.generation_tps)
        self.same = self.same and plain_ids == fast_ids
        d = fast.draft
        self.proposed, self.accepted, self.steps = self.proposed + d.proposed, self.accepted + d.accepted, \
            self.steps + d.steps
        self.tokens += fast.generation_tokens - 1  # the first token came from the prompt's pass, not a step

    def summary(self) -> dict:
        plain, fast = float(np.median(self.plain_tps)), float(np.median(self.draft_tps))
        return {"source": self.spec, "acceptance": self.accepted / self.proposed if self.proposed else 0.0,
                "tokens_per_step": self.tokens / self.steps if self.steps else None,
                "speedup": fast / plain if plain else None, "same_tokens": self.same,
                "generation_tps": fast, "plain_tps": plain, "proposed": self.proposed, "accepted": self.accepted,
                "steps": self.steps, "tokens": self.tokens, "prompt_tokens": len(self.prompt),
                "rounds": len(self.draft_tps)}


def measure_decoder(lm, max_tokens: int, passes: int, draft: str | None = None,
                    threads: int | None = None) -> dict:
    prompt = _fitted_ids(lm, default_prompt(), max_tokens)
    # Warm-up: first runs pay for allocator growth and kernel selection, which a server pays once.
    for _ in stream_generate(lm, prompt, GenerationConfig(max_tokens=4)):
        pass
    drafted = None
    if draft:
        try:
            drafted = DraftRounds(lm, draft, max_tokens, threads)
        except EdgewiseError as e:  # e.g. a model draft of another tokenizer: the plain figures still stand
            drafted = str(e).splitlines()[0]
    ttft, ptps, gtps, lat, ntoks = [], [], [], [], []
    last = None
    for _ in range(passes):
        if isinstance(drafted, DraftRounds):
            drafted.round(lm)
        stamps = []
        # ignore_eos: a variant that happens to stop early would otherwise report the speed of a few tokens.
        for r in stream_generate(lm, prompt, GenerationConfig(max_tokens=max_tokens, ignore_eos=True)):
            stamps.append(time.perf_counter())
            last = r
        ttft.append(last.ttft_ms)
        ptps.append(last.prompt_tps)
        gtps.append(last.generation_tps)
        ntoks.append(last.generation_tokens)
        lat += list(np.diff(stamps) * 1000.0)
    out = {
        "prompt_tokens": last.prompt_tokens,
        "generation_tokens": int(np.median(ntoks)),
        "ttft_ms": float(np.median(ttft)),
        "prompt_tps": float(np.median(ptps)),
        "generation_tps": float(np.median(gtps)),
        "decode_p50_ms": float(np.percentile(lat, 50)) if lat else None,
        "decode_p95_ms": float(np.percentile(lat, 95)) if lat else None,
        "passes": passes,
    }
    wb = weight_bytes_per_token(lm)
    if wb:
        out["weight_bytes_per_token"] = wb
        out["achieved_bandwidth_gbs"] = wb * out["generation_tps"] / 1e9
    if drafted is not None:
        out["draft"] = drafted.summary() if isinstance(drafted, DraftRounds) else {"source": draft, "error": drafted}
    return out


def measure_encoder(lm, repeats: int) -> dict:
    embed(lm, ENCODER_TEXTS)  # warm-up
    lat = []
    for i in range(repeats):
        t = time.perf_counter()
        embed(lm, [ENCODER_TEXTS[i % len(ENCODER_TEXTS)]])
        lat.append((time.perf_counter() - t) * 1000.0)
    batch = ENCODER_TEXTS * 16
    t = time.perf_counter()
    embed(lm, batch, batch_size=32)
    secs = time.perf_counter() - t
    return {"latency_p50_ms": float(np.percentile(lat, 50)), "latency_p95_ms": float(np.percentile(lat, 95)),
            "throughput_per_s": len(batch) / secs, "requests": repeats}


def measure(spec: dict) -> dict:
    """Load spec["path"] on spec["backend"] and measure it. Returns a JSON-able dict."""
    base_rss = _rss_mb()
    t0 = time.perf_counter()
    lm = load_model(spec["path"], backend=spec.get("backend", "ort"), precision=spec.get("precision", "fp32"),
                    threads=spec.get("threads"))
    out = {"load_s": time.perf_counter() - t0, "rss_after_load_mb": _rss_mb(), "runtime_rss_mb": base_rss,
           "threads": spec.get("threads"), "backend": lm.backend, "precision": lm.precision}
    if text_model(lm, "any").decoder is not None:
        out.update(measure_decoder(lm, int(spec.get("max_tokens", 64)), int(spec.get("passes", 2)),
                                   spec.get("draft"), spec.get("threads")))
    else:
        out.update(measure_encoder(lm, int(spec.get("repeats", 30))))
    out["peak_rss_mb"] = _peak_rss_mb()
    return out
