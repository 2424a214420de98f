"""Privacy: find PII in everything the cloud would see; redact it, keep it local, or ignore it."""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.errors import EdgewiseError
from edgewise.privacy import pii
from edgewise.privacy.base import available_kinds
from edgewise.route.policies.base import POLICIES
from edgewise.route.types import EDGE, RouteContext, Verdict

MODES = ("redact", "local-only", "off")


@dataclass(frozen=True)
class PrivacyConfig:
    """mode: redact (cloud sees placeholders, the answer is restored), local-only (a request with
    PII never leaves the device) or off. kinds: which PII kinds to look for (default: all available)."""

    mode: str = "redact"
    kinds: tuple[str, ...] | None = None
    enabled: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise EdgewiseError(f"privacy mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.kinds is not None:
            kinds = tuple(self.kinds)
            bad = [k for k in kinds if k not in pii.LABELS]
            if bad:
                raise EdgewiseError(f"unknown PII kind {bad[0]!r}: choose from {', '.join(pii.LABELS)}")
            missing = [k for k in kinds if k not in pii.DETECTORS]
            if missing:
                raise EdgewiseError(f"no detector for PII kind {missing[0]!r} is installed "
                                    f"(available: {', '.join(available_kinds())})")
            object.__setattr__(self, "kinds", kinds)


@POLICIES.register("privacy")
class PrivacyPolicy:
    name = "privacy"
    Config = PrivacyConfig

    def __init__(self, config: PrivacyConfig, clock=None):
        self.config = config

    def decide(self, ctx: RouteContext) -> Verdict | None:
        if self.config.mode == "off":
            return None
        r = pii.Redactor(self.config.kinds)
        if isinstance(ctx.request, str):
            redacted = r(ctx.request)
        else:
            redacted = [_redact_message(m, r) for m in ctx.request]
        if not r.found:
            return None
        ctx.pii = dict(r.found)
        if self.config.mode == "local-only":
            return Verdict(EDGE, f"privacy: {', '.join(sorted(r.found))} stays on the device", final=True)
        ctx.cloud_request, ctx.mapping = redacted, r.mapping
        return None


def _redact_message(msg: dict, r: pii.Redactor) -> dict:
    content = msg.get("content")
    if isinstance(content, str):
        return {**msg, "content": r(content)}
    if isinstance(content, list):  # multi-part content: redact the text parts
        parts = [{**p, "text": r(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
                 for p in content]
        return {**msg, "content": parts}
    return msg
