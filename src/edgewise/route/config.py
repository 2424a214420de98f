"""The router's configuration: [router] settings as a typed value, and the policy chain built from a policy file."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgewise.errors import EdgewiseError
from edgewise.privacy import pii
from edgewise.route.policies import DEFAULT_ORDER, POLICIES
from edgewise.route.types import CLOUD, EDGE, config_from_table

PREFER = (EDGE, CLOUD)
# Built when a policy file has no table for them: privacy must never be off by accident.
ON_BY_DEFAULT = ("privacy", "connectivity")


@dataclass(frozen=True)
class RouterConfig:
    """prefer: where a request goes when no policy has an opinion (edge, or cloud = "cloud unless
    offline or private"). order: the policy chain. deadline_s: default latency budget per request.
    edge_reserve_s: time kept back for an edge fallback when the cloud is tried before the edge ran
    (None = 1.5x the edge's running average latency). log: decision log path ("" = none)."""

    prefer: str = EDGE
    order: tuple[str, ...] = DEFAULT_ORDER
    deadline_s: float = 30.0
    edge_reserve_s: float | None = None
    min_cloud_s: float = 0.05
    log: str = ""

    def __post_init__(self):
        if self.prefer not in PREFER:
            raise EdgewiseError(f"[router] prefer must be 'edge' or 'cloud', got {self.prefer!r}")
        object.__setattr__(self, "order", tuple(self.order))
        for name in self.order:
            POLICIES.get(name)  # raises with the list of known policies
        if len(set(self.order)) != len(self.order):
            raise EdgewiseError(f"[router] order lists a policy twice: {list(self.order)}")
        for name in ("deadline_s", "min_cloud_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise EdgewiseError(f"[router] {name} must be > 0 seconds, got {v!r}")
        if self.edge_reserve_s is not None and (not isinstance(self.edge_reserve_s, (int, float))
                                                or self.edge_reserve_s < 0):
            raise EdgewiseError(f"[router] edge_reserve_s must be >= 0 seconds, got {self.edge_reserve_s!r}")


def load_policy_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgewiseError(f"policy file {path} not found: write one with `edgewise route calibrate --out {path}`")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise EdgewiseError(f"policy file {path} is not valid TOML: {e}") from None


def check_privacy(doc: dict) -> None:
    """Fail closed: when the policy document builds a privacy policy that scans (redact, local-only), every detector
    it relies on loads now, or this raises one line naming it and the fix. build_policies checks the same; the
    server calls this before it loads its model, which takes far longer than the check."""
    router, tables = doc.get("router", {}), doc.get("policies", {})
    order = router.get("order", DEFAULT_ORDER) if isinstance(router, dict) else DEFAULT_ORDER
    table = tables.get("privacy", {}) if isinstance(tables, dict) else {}
    if isinstance(order, (list, tuple)) and "privacy" in order and isinstance(table, dict) \
            and table.get("enabled", True) is not False:
        _check_privacy_table(table)


def _check_privacy_table(table: dict) -> None:
    # Before PrivacyConfig is built, so that explicit `kinds` naming a tagger kind get this message, not "no detector".
    mode = table.get("mode", POLICIES.get("privacy").Config.mode)
    if mode in ("redact", "local-only"):
        kinds = table.get("kinds")
        pii.require_detectors(mode, kinds if isinstance(kinds, (list, tuple)) else None)


def build_policies(doc: dict, order: tuple[str, ...], base_dir: Path | None = None,
                   clock: Callable[[], float] = time.monotonic) -> list:
    tables = doc.get("policies", {})
    if not isinstance(tables, dict):
        raise EdgewiseError("[policies] must be a table of [policies.<name>] tables")
    for name in tables:
        POLICIES.get(name)  # unknown policy table -> error naming the known ones
        if name not in order:
            raise EdgewiseError(f"[policies.{name}] is configured but not in [router] order {list(order)}")
    out = []
    for name in order:
        table = dict(tables.get(name, {}))
        if name not in tables and name not in ON_BY_DEFAULT:
            continue
        if table.get("enabled", True) is False:
            continue
        if name == "privacy":
            _check_privacy_table(table)
        if base_dir is not None and isinstance(table.get("scorer"), str):
            table["scorer"] = str((base_dir / table["scorer"]).resolve())
        cls = POLICIES.get(name)
        out.append(cls(config_from_table(cls.Config, table, f"policies.{name}"), clock=clock))
    return out
