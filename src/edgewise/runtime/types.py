"""The objects every consumer of the runtime reads: configs in, responses out."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgewise.errors import EdgewiseError


@dataclass(frozen=True)
class GenerationConfig:
    """How long to generate and how to pick tokens. temperature 0 means greedy; seed makes sampling reproducible.

    The picking itself is not done here: runtime.sampling builds a sampler (temperature, top_k, top_p, seed) and
    logits processors (logit_bias, repetition_penalty) from these values, and the generation loop calls them.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # generate max_tokens regardless (benchmarks: every variant decodes the same count)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit); a dict is accepted too
    repetition_penalty: float = 1.0  # 1 = off; > 1 discourages the last repetition_context_size tokens
    repetition_context_size: int = 20

    def __post_init__(self):
        bias = self.logit_bias.items() if isinstance(self.logit_bias, dict) else self.logit_bias
        try:
            bias = tuple(sorted((int(t), float(b)) for t, b in bias))
        except (TypeError, ValueError):
            raise EdgewiseError("logit_bias must map token ids to numbers, e.g. {50256: -100}") from None
        if any(t < 0 for t, _ in bias):
            raise EdgewiseError("logit_bias token ids must be non-negative")
        object.__setattr__(self, "logit_bias", bias)
        if not 0.0 < float(self.repetition_penalty) <= 10.0:
            raise EdgewiseError(f"repetition_penalty must be in (0, 10] (1 = off), got {self.repetition_penalty!r}")
        if not isinstance(self.repetition_context_size, int) or self.repetition_context_size < 1:
            raise EdgewiseError(f"repetition_context_size must be a positive integer, got "
                                f"{self.repetition_context_size!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise EdgewiseError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not 0.0 <= float(self.temperature) <= 10.0:
            raise EdgewiseError(f"temperature must be in [0, 10], got {self.temperature!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise EdgewiseError(f"top_k must be a non-negative integer (0 disables it), got {self.top_k!r}")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise EdgewiseError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise EdgewiseError("stop strings must be non-empty strings")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class DraftStats:
    """Speculative decoding's running totals: tokens a draft proposed, how many the model accepted, and the
    verify passes it took (runtime/speculative.py)."""

    proposed: int = 0
    accepted: int = 0
    steps: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0

    def as_dict(self) -> dict:
        return {"proposed": self.proposed, "accepted": self.accepted, "steps": self.steps,
                "acceptance": round(self.acceptance, 4)}


@dataclass
class GenerationResponse:
    """One streamed step. Timing fields are running totals, so the last response is the summary."""

    text: str  # the text delta of this step (may be empty while a multi-byte char or stop prefix is held back)
    token_ids: list[int]  # tokens chosen in this step
    logprobs: list[float]  # log-probability of each chosen token under the model (temperature 1)
    prompt_tokens: int
    generation_tokens: int
    prompt_tps: float
    generation_tps: float
    ttft_ms: float
    peak_rss_mb: float
    finish_reason: str | None = None  # "stop" | "length" | None while streaming
    cached_tokens: int = 0  # prompt tokens whose KV entries were reused, not computed (reuse_cache)
    draft: DraftStats | None = None  # speculative decoding's totals so far; None without a draft


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    logprobs: list[float]
    prompt_tokens: int
    generation_tokens: int
    prompt_tps: float
    generation_tps: float
    ttft_ms: float
    peak_rss_mb: float
    finish_reason: str  # "stop" | "length" | "cancelled"
    cached_tokens: int = 0
    extra: dict = field(default_factory=dict)
    draft: DraftStats | None = None

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "tokens": self.generation_tokens,
            "token_ids": self.token_ids,
            "logprobs": [round(x, 5) for x in self.logprobs],
            "prompt_tokens": self.prompt_tokens,
            "prompt_tps": round(self.prompt_tps, 2),
            "generation_tps": round(self.generation_tps, 2),
            "ttft_ms": round(self.ttft_ms, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "finish_reason": self.finish_reason,
            **({"draft": self.draft.as_dict()} if self.draft is not None else {}),
            **self.extra,
        }
