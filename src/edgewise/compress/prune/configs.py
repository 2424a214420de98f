"""Pruning methods as typed values: `prune(model, Structured(mlp=0.25, blocks=0.1))`, `prune(model, Wanda(0.5))`.

Structured pruning removes whole units (MLP neurons, query heads, transformer blocks), so the model really gets
smaller and faster; the result is an ordinary, smaller Llama folder that every backend runs. Unstructured pruning
zeroes single weights: dense CPU runtimes gain no speed from it (locuslab/wanda issue 81) and it only saves bytes
once the weights are compressed, which the result reports as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgewise.compress.configs import option_value
from edgewise.errors import EdgewiseError

IMPORTANCE = ("activation", "gradient")


def _fraction(name: str, value: float, top: float = 0.95) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= top:
        raise EdgewiseError(f"{name} must be a fraction in [0, {top}] (e.g. 0.25), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Recovery:
    """A short fine-tune of the pruned model by distillation from the unpruned one (edgewise distill, init_from).

    data: text files or corpus:NAME entries; None trains on the calibration text. Keep it apart from the text
    the variants are evaluated on (the demo evaluates on Hamlet, so the default is Austen and fortunes)."""

    steps: int = 100
    lr: float = 2e-4
    batch: int = 8
    seq_len: int = 128
    alpha: float = 0.2  # weight of the hard-label loss; the rest is KL to the unpruned model
    temperature: float = 2.0
    teacher_windows: int | None = 256
    data: tuple[str, ...] | None = ("corpus:austen", "corpus:fortunes")
    autocast_bf16: bool = True

    def __post_init__(self):
        object.__setattr__(self, "data", None if self.data is None else tuple(self.data))
        for name in ("steps", "batch", "seq_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise EdgewiseError(f"recovery {name} must be a positive integer, got {v!r}")
        if not 0 < self.lr < 1:
            raise EdgewiseError(f"recovery lr must be in (0, 1) (try 2e-4), got {self.lr!r}")
        if not 0 <= self.alpha <= 1:
            raise EdgewiseError(f"recovery alpha must be in [0, 1], got {self.alpha!r}")


@dataclass(frozen=True)
class Structured:
    """Remove a fraction of each kind of unit, least important first.

    mlp: MLP neurons (the same count in every block, rounded to a multiple of 32 so int4 blocks still fit);
    heads: query heads (the same count from every key/value group, at least one kept per group);
    blocks: whole transformer blocks.
    importance: activation (weight norm x activation norm; for blocks, how little the block turns its input,
    ShortGPT's block influence) or gradient (first-order Taylor |w * dL/dw| summed over the unit).
    """

    mlp: float = 0.0
    heads: float = 0.0
    blocks: float = 0.0
    importance: str = "activation"
    calib_tokens: int = 2048
    recovery: Recovery | None = field(default_factory=Recovery)

    def __post_init__(self):
        _fraction("mlp", self.mlp, 0.9)
        _fraction("heads", self.heads, 0.9)
        _fraction("blocks", self.blocks, 0.75)
        if not (self.mlp or self.heads or self.blocks):
            raise EdgewiseError("structured pruning needs a fraction to remove: set mlp, heads and/or blocks, "
                                "e.g. structured:mlp=0.25")
        if self.importance not in IMPORTANCE:
            raise EdgewiseError(f"importance must be activation or gradient, got {self.importance!r}")
        if not isinstance(self.calib_tokens, int) or self.calib_tokens < 64:
            raise EdgewiseError(f"calib_tokens must be an integer >= 64, got {self.calib_tokens!r}")

    @property
    def label(self) -> str:
        parts = [f"{k}{round(v * 100)}" for k, v in (("mlp", self.mlp), ("heads", self.heads), ("blocks", self.blocks))
                 if v]
        return "pruned-" + "-".join(parts)

    def describe(self) -> str:
        parts = [f"{v:.0%} {k}" for k, v in (("MLP neurons", self.mlp), ("query heads", self.heads),
                                              ("blocks", self.blocks)) if v]
        rec = f", recovered by {self.recovery.steps} distillation steps" if self.recovery else ", no recovery"
        return f"structured pruning ({', '.join(parts)}; {self.importance} importance){rec}"


@dataclass(frozen=True)
class Magnitude:
    """Zero the smallest-magnitude weights of every linear layer in the blocks (per layer, `sparsity` of each)."""

    sparsity: float = 0.5
    label = "sparse-magnitude"

    def __post_init__(self):
        _fraction("sparsity", self.sparsity, 0.95)

    def describe(self) -> str:
        return f"unstructured magnitude pruning, {self.sparsity:.0%} zeros (no speed-up on dense runtimes)"


@dataclass(frozen=True)
class Wanda:
    """Wanda (Sun et al. 2023): score |W_ij| * ||X_j|| on calibration text, zero the lowest `sparsity` of each
    output row. No weight update and no recovery, as in the paper."""

    sparsity: float = 0.5
    calib_tokens: int = 2048
    label = "sparse-wanda"

    def __post_init__(self):
        _fraction("sparsity", self.sparsity, 0.95)
        if not isinstance(self.calib_tokens, int) or self.calib_tokens < 64:
            raise EdgewiseError(f"calib_tokens must be an integer >= 64, got {self.calib_tokens!r}")

    def describe(self) -> str:
        return f"unstructured Wanda pruning, {self.sparsity:.0%} zeros (no speed-up on dense runtimes)"


PruneConfig = Structured | Magnitude | Wanda
PRUNE_METHODS = {"structured": Structured, "magnitude": Magnitude, "wanda": Wanda}
RECOVERY_KEYS = {"recover_steps": "steps", "recover_lr": "lr", "recover_batch": "batch", "recover_data": "data"}


def parse_prune(spec: str):
    """`structured:mlp=0.25,blocks=0.1,recover_steps=50`, `wanda:sparsity=0.5`, `structured:...,recover_steps=0`
    (no recovery), `structured:...,recover_data=corpus:austen+my.txt` ('+' between entries; `calib` = the
    calibration text) -> config."""
    name, _, args = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in PRUNE_METHODS:
        raise EdgewiseError(f"unknown pruning method {name!r}: choose from {', '.join(PRUNE_METHODS)}")
    kwargs, recovery = {}, {}
    for part in filter(None, (a.strip() for a in args.split(","))):
        key, eq, val = part.partition("=")
        if not eq:
            raise EdgewiseError(f"pruning option {part!r} in {spec!r}: write key=value, e.g. structured:mlp=0.25")
        key = key.strip()
        if key == "recover_data" and name == "structured":
            items = tuple(x.strip() for x in val.split("+") if x.strip())
            recovery["data"] = None if items == ("calib",) else items
        elif key in RECOVERY_KEYS and name == "structured":
            recovery[RECOVERY_KEYS[key]] = option_value(val.strip())
        else:
            kwargs[key] = option_value(val.strip())
    if name == "structured":
        if recovery.get("steps") == 0:
            kwargs["recovery"] = None
        elif recovery:
            kwargs["recovery"] = Recovery(**recovery)
    try:
        return PRUNE_METHODS[name](**kwargs)
    except TypeError as e:
        raise EdgewiseError(f"bad options for pruning method {name!r}: {e}") from None
