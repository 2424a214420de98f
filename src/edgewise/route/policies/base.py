"""The routing-policy registry, below the policies that register in it (route/policies/__init__.py imports them)."""

from __future__ import annotations

from edgewise.registry import Registry

POLICIES: Registry[type] = Registry("routing policy")
DEFAULT_ORDER = ("privacy", "connectivity", "confidence", "budget")
