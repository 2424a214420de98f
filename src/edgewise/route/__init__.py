"""Hybrid edge-cloud routing (issue #4)."""
