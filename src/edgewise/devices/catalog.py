"""Model shapes for fit estimates: a built-in catalog of small LMs, or any local Hugging Face config.json.

Only the shape matters here: parameter counts, bytes per token and KV cache size all follow from it, so a model can
be judged before a single weight is downloaded.
"""

from __future__ import annotations

import functools
import json
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from edgewise.errors import EdgewiseError

# Families whose MLP has two matrices (up, down) instead of the gated three (gate, up, down).
_UNGATED = {"gpt2", "gpt_neox", "gptj", "opt", "bloom", "phi", "falcon", "gpt_bigcode", "starcoder2"}
# Families whose q/k/v projections carry a bias even though config.json has no attention_bias key.
_QKV_BIAS = {"qwen2"}
# Families with a learned position-embedding table (context x hidden) instead of rotary positions.
_LEARNED_POSITIONS = {"gpt2", "gpt_bigcode", "opt"}
PARAMS_TOLERANCE = 0.03  # catalog entries must agree with their published parameter count this closely


@dataclass(frozen=True)
class ModelShape:
    """The shape of a decoder-only transformer, as its config.json gives it."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int  # trained context length (max_position_embeddings)
    tied: bool  # lm_head shares the embedding matrix
    attention_bias: bool = False
    gated_mlp: bool = True
    sliding_window: int = 0  # 0: every layer attends to the whole context
    sliding_layers: int = 0  # how many layers use the sliding window
    learned_positions: bool = False  # a context x hidden position table (GPT-2 style), read one row per token
    params_published: float | None = None
    hf_id: str = ""
    source: str = ""

    def __post_init__(self):
        for f in ("layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim", "vocab", "context"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise EdgewiseError(f"model {self.name}: {f} must be a positive integer, got {v!r}")
        if self.heads % self.kv_heads:
            raise EdgewiseError(f"model {self.name}: heads ({self.heads}) must be a multiple of kv_heads "
                                f"({self.kv_heads})")
        if self.sliding_window < 0 or not 0 <= self.sliding_layers <= self.layers:
            raise EdgewiseError(f"model {self.name}: sliding_window must be >= 0 and sliding_layers within "
                                f"0..{self.layers}")
        if self.sliding_layers and not self.sliding_window:
            raise EdgewiseError(f"model {self.name}: sliding_layers is set but sliding_window is 0")

    # Parameter counts. Norm weights (a few thousand per layer) are counted as two per layer; they change the total
    # by well under 0.1%.
    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def layer_params(self) -> int:
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        attn = self.hidden * q + 2 * self.hidden * kv + q * self.hidden
        if self.attention_bias:
            attn += q + 2 * kv
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.intermediate
        return attn + mlp + 2 * self.hidden

    @property
    def params(self) -> int:
        head = 0 if self.tied else self.embed_params
        return self.embed_params + self.layers * self.layer_params + self.hidden + head + self.position_params

    @property
    def position_params(self) -> int:
        return self.context * self.hidden if self.learned_positions else 0

    @property
    def matmul_params(self) -> int:
        """Weights read for every generated token: all layers plus the output head (one embedding row is noise)."""
        return self.layers * self.layer_params + self.hidden + self.embed_params

    def kv_cache_bytes(self, context: int, bytes_per_value: float) -> float:
        """K and V for `context` tokens: 2 x layers x kv_heads x head_dim x tokens x bytes (window-capped layers)."""
        full = self.layers - self.sliding_layers
        tokens = full * context + self.sliding_layers * min(context, self.sliding_window or context)
        return 2 * self.kv_heads * self.head_dim * tokens * bytes_per_value

    def as_dict(self) -> dict:
        d = asdict(self)
        d["params"] = self.params
        return d


def _catalog_path():
    return resources.files("edgewise") / "data" / "devices" / "catalog.toml"


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, ModelShape]:
    """The built-in catalog, each entry checked against its published parameter count."""
    out = {}
    for name, entry in tomllib.loads(_catalog_path().read_text(encoding="utf-8")).items():
        try:
            shape = ModelShape(name=name, **entry)
        except TypeError as e:
            raise EdgewiseError(f"catalog entry {name}: bad field ({e})") from None
        if shape.params_published and abs(shape.params / shape.params_published - 1) > PARAMS_TOLERANCE:
            raise EdgewiseError(f"catalog entry {name}: its shape gives {shape.params / 1e6:.1f}M parameters but "
                                f"the model card says {shape.params_published / 1e6:.0f}M; fix the shape")
        out[name] = shape
    return out


def _first(cfg: dict, *keys, default=None):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def shape_from_config(cfg: dict, name: str = "config") -> ModelShape:
    """A ModelShape from a parsed Hugging Face config.json (decoder-only LMs; multimodal ones via text_config)."""
    if isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg["text_config"], "model_type": cfg["text_config"].get("model_type", cfg.get("model_type"))}
    model_type = str(cfg.get("model_type", ""))
    layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    heads = _first(cfg, "num_attention_heads", "n_head")
    vocab = cfg.get("vocab_size")
    missing = [k for k, v in (("num_hidden_layers", layers), ("hidden_size", hidden),
                              ("num_attention_heads", heads), ("vocab_size", vocab)) if v is None]
    if missing:
        raise EdgewiseError(f"{name}: config.json lacks {', '.join(missing)}; `edgewise fit` needs the config of a "
                            "decoder-only language model")
    gated = model_type not in _UNGATED
    intermediate = _first(cfg, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    kv_heads = _first(cfg, "num_key_value_heads", "num_kv_heads", default=heads)
    if cfg.get("multi_query"):
        kv_heads = 1
    head_dim = _first(cfg, "head_dim", default=hidden // heads)
    context = _first(cfg, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length", default=2048)
    # A missing key means the class default, which is False for most decoder families; counting an untied head
    # errs towards more memory, the safe side for a fit.
    tied = bool(cfg.get("tie_word_embeddings", False))
    bias = bool(cfg.get("attention_bias", model_type in _QKV_BIAS))
    window, sliding = 0, 0
    if cfg.get("sliding_window") and cfg.get("use_sliding_window", True):
        if isinstance(cfg.get("layer_types"), list):
            sliding = sum(1 for t in cfg["layer_types"] if t == "sliding_attention")
        elif cfg.get("sliding_window_pattern"):
            sliding = layers - layers // int(cfg["sliding_window_pattern"])
        # Without a per-layer pattern (Mistral, Phi-3) runtimes commonly allocate the whole context anyway, so the
        # window is ignored there: a conservative estimate.
        window = int(cfg["sliding_window"]) if sliding else 0
    try:
        return ModelShape(name=name, layers=int(layers), hidden=int(hidden), intermediate=int(intermediate),
                          heads=int(heads), kv_heads=int(kv_heads), head_dim=int(head_dim), vocab=int(vocab),
                          context=int(context), tied=tied, attention_bias=bias, gated_mlp=gated,
                          sliding_window=window, sliding_layers=sliding,
                          learned_positions=model_type in _LEARNED_POSITIONS, source=f"parsed from {name}")
    except (TypeError, ValueError) as e:
        if isinstance(e, EdgewiseError):
            raise
        raise EdgewiseError(f"{name}: unreadable shape field in config.json ({e})") from None


def load_config_json(path: str | Path) -> ModelShape:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise EdgewiseError(f"no config.json at {p}: pass a catalog name, a config.json or a model folder")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgewiseError(f"{p} is not valid JSON ({e.__class__.__name__}): pass a Hugging Face config.json") \
            from None
    if not isinstance(cfg, dict):
        raise EdgewiseError(f"{p} is not a Hugging Face config.json (expected a JSON object)")
    return shape_from_config(cfg, name=str(p))


def get_model_shape(model: str | Path | ModelShape) -> ModelShape:
    """A catalog name, a config.json, or a model folder holding one."""
    if isinstance(model, ModelShape):
        return model
    key = str(model).strip().lower()
    cat = catalog()
    if key in cat:
        return cat[key]
    p = Path(str(model)).expanduser()
    if p.exists():
        return load_config_json(p)
    raise EdgewiseError(f"unknown model {str(model)!r}: use a catalog name ({', '.join(cat)}) "
                        "or a path to a config.json or model folder")
