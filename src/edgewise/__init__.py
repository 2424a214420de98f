"""Edgewise: compress, prove and run AI models on edge devices, fully offline."""

import os as _os

__version__ = "0.1.0"

# torch and llama.cpp (ggml) load the same libgomp.so.1, and libgomp reads its wait policy once, when the first of
# them loads it: in practice torch, before any llama.cpp model. Its default (spin 300,000 rounds at every barrier)
# starves the thread being waited for on a busy 2-core machine, and PASSIVE (sleep at once) halves 2-thread decode
# on an idle one; spinning briefly, then sleeping, kept 2 threads ahead of 1 in both cases (docs/backends.md).
# Set here, before anything imports torch; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if not any(v in _os.environ for v in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
    _os.environ["GOMP_SPINCOUNT"] = "300"
