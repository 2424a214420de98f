"""Confidence: escalate when the edge is unsure, scored from its answer's log-probs or, before
generating, from the prompt's embedding with a learned scorer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgewise.errors import EdgewiseError
from edgewise.route.confidence import (DEFAULT_METHOD, PromptScorer, check_method, load_prompt_scorer,
                                       sequence_confidence)
from edgewise.route.policies.base import POLICIES
from edgewise.route.types import CLOUD, EDGE, RouteContext, Verdict

SOURCES = ("logprobs", "prompt", "combined")


@dataclass(frozen=True)
class ConfidenceConfig:
    """Escalate when score < threshold (get one from `edgewise route calibrate`).
    source "logprobs": score the edge answer's token log-probs with `method` (mean, min, p10, p25).
    source "prompt": P(edge is good) from the learned scorer in `scorer` (a .npz file), decided
    before the edge runs.
    source "combined": P(edge is good) from a scorer over the prompt embedding and the edge answer's
    log-prob statistics (written by `edgewise route eval`); the edge answers first."""

    threshold: float | None = None
    source: str = "logprobs"
    method: str = DEFAULT_METHOD
    scorer: str | None = None
    enabled: bool = True

    def __post_init__(self):
        if self.threshold is None or isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or math.isnan(self.threshold):
            raise EdgewiseError("[policies.confidence] needs a numeric threshold: run `edgewise route calibrate` "
                                "to choose one from your own data")
        if self.source not in SOURCES:
            raise EdgewiseError(f"confidence source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        check_method(self.method)
        if self.source in ("prompt", "combined") and not self.scorer:
            raise EdgewiseError(f"confidence source {self.source!r} needs scorer = 'FILE.npz' "
                                "(train one with `edgewise route train-scorer` or `edgewise route eval`)")


@POLICIES.register("confidence")
class ConfidencePolicy:
    name = "confidence"
    Config = ConfidenceConfig

    def __init__(self, config: ConfidenceConfig, clock=None, scorer: PromptScorer | None = None):
        self.config = config
        self.scorer = scorer
        if config.source != "logprobs" and scorer is None:
            self.scorer = load_prompt_scorer(config.scorer)
        if self.scorer is not None and self.scorer.needs_answer != (config.source == "combined"):
            kind = "combined" if self.scorer.needs_answer else "prompt"
            raise EdgewiseError(f"scorer {config.scorer} is a {kind} scorer: set source = \"{kind}\" "
                                "in [policies.confidence]")

    def decide(self, ctx: RouteContext) -> Verdict | None:
        c = self.config
        if c.source == "logprobs":
            score = sequence_confidence(ctx.edge().logprobs, c.method)
            label = c.method
        elif c.source == "combined":
            score = self.scorer.score(ctx.prompt, ctx.edge().logprobs)
            label = "combined"
        else:
            score = self.scorer.score(ctx.prompt)
            label = "prompt"
        ctx.scores["confidence"] = score
        if score < c.threshold:
            return Verdict(CLOUD, f"low confidence ({label} {score:.3f} < {c.threshold:.3f})")
        return Verdict(EDGE, f"confident ({label} {score:.3f} >= {c.threshold:.3f})", final=True)
