"""Sampling defaults chosen on the validation split for the shipped weights (see the model card).

Torch-free, so the panel's properties and the runtime read the same numbers.
"""

STEPS = 15
"""Denoising steps of a Generate press."""

GUIDANCE = 2.5
"""Classifier-free guidance scale."""

ETA = 1.0
"""Sampler stochasticity (`sampler.sample_ddim`): 1 draws each step's noise afresh (ancestral), so
noise the denoiser lets through is not carried from step to step; 0 is deterministic DDIM."""
