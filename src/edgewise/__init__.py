"""Edgewise: compress, prove and run AI models on edge devices, fully offline."""

__version__ = "0.1.0"
