"""Tasks that compare each variant with the full model on the user's own data.

    task = parse_task("perplexity:notes.txt")       # validates the file now
    ref = task.reference(full_model)                  # the full model's outputs, once
    metrics = task.evaluate(variant_model, ref)       # {"perplexity": ..., "kld": ..., "same_top_token": ...}

Kinds: perplexity, nextword, choice, generate (decoders); retrieval, classify (encoders). choice and generate keep
one outcome per item (`per_item = True`): their file formats are in docs/tasks.md.
"""

# Task kinds register on import; TASKS imports them (edgewise.plugins) on its first lookup.
from edgewise.evaluate.base import TASKS, Task, check_model_fits, parse_task, relative_drop

__all__ = ["TASKS", "Task", "parse_task", "check_model_fits", "relative_drop"]
