"""Sampling defaults chosen on the validation split for the shipped weights (see the model card).

Torch-free, so the panel's properties and the runtime read the same numbers.
"""

STEPS = 10
"""Denoising steps of a Generate press."""

GUIDANCE = 2.5
"""Classifier-free guidance scale."""
