"""Routing policies, one file each, found through one registry.

A policy class has a `Config` dataclass (the keys of its `[policies.<name>]` table) and is built as
`cls(config, clock=...)`. Each module registers on import, and POLICIES imports the built-ins on its first
lookup (edgewise.plugins); a plugin registers the same way (docs/plugins.md).
"""

from __future__ import annotations

from edgewise.route.policies.base import DEFAULT_ORDER, POLICIES  # noqa: F401  (the registry, re-exported)
