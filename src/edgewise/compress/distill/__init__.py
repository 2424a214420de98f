"""Knowledge distillation of a causal LM into a small Llama-style student: `distill(DistillConfig(...)) -> Path`.

The loss at each position mixes the hard-label cross-entropy with the KL divergence to the teacher's
temperature-softened distribution (Hinton et al. 2015), scaled by T^2 so its gradient does not shrink with T:

    loss = alpha * CE(student, next token) + (1 - alpha) * T^2 * KL(teacher_T || student_T)

The teacher's top-k logits are computed once per window and cached (a 135M teacher costs ~100x the student per
token on a CPU), so `teacher_windows` sets how much of the data gets soft targets; windows without them train on
the hard labels alone. Optional sequence-level KD first extends the data with text sampled from the teacher.

Runs are resumable: model, optimizer, step and RNG state are checkpointed atomically every `checkpoint_every`
steps into the work folder, and Ctrl-C stops at the next step boundary after saving one more checkpoint.

Modules: config (DistillConfig, recipes), loss (kd_loss), data (student vocabulary, windows, teacher targets and
samples), prepare (building those once per work folder), train (the run), eval (word perplexity), bars (progress).
"""

from edgewise.compress.distill.config import (DTYPES, DistillConfig, expand_data, load_recipe,
                                              student_config_from_file)
from edgewise.compress.distill.eval import word_perplexity
from edgewise.compress.distill.loss import kd_loss
from edgewise.compress.distill.train import DistillResult, StepInfo, distill

__all__ = ["DTYPES", "DistillConfig", "DistillResult", "StepInfo", "distill", "expand_data", "kd_loss", "load_recipe",
           "student_config_from_file", "word_perplexity"]
