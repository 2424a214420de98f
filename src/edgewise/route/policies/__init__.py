"""Routing policies, one file each, found through one registry.

A policy class has a `Config` dataclass (the keys of its `[policies.<name>]` table) and is built as
`cls(config, clock=...)`. Built-ins register on import below; a plugin registers the same way.
"""

from __future__ import annotations

from edgewise.registry import Registry

POLICIES: Registry[type] = Registry("routing policy")
DEFAULT_ORDER = ("privacy", "connectivity", "confidence", "budget")

from edgewise.route.policies import budget, confidence, connectivity, privacy  # noqa: E402,F401
