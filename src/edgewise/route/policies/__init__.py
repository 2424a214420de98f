"""Routing policies, one file each, found through one registry.

A policy class has a `Config` dataclass (the keys of its `[policies.<name>]` table) and is built as
`cls(config, clock=...)`. Built-ins register on import below; a plugin registers the same way.
"""

from __future__ import annotations

from edgewise.route.policies.base import DEFAULT_ORDER, POLICIES  # noqa: F401  (the registry, re-exported)
# The built-ins register on import.
from edgewise.route.policies import budget, confidence, connectivity, privacy  # noqa: F401
