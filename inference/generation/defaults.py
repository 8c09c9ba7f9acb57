"""Sampling defaults chosen on the validation split for the shipped weights (see the model card).

Torch-free, so the panel's properties and the runtime read the same numbers.
"""

STEPS = 10
"""Denoising steps of a Generate press (10 since the 8-block weights: 12 and 15 read a little better on
validation but a 4-s clip then takes 0.21 and 0.27 s on the 2-core CPU, not 10x faster than MDM-50)."""

GUIDANCE = 4.0
"""Classifier-free guidance scale (4 since the sampler drops the frame-rate alternation: guidance had
fed the tremor, and without it validation content rose from 0.906 at 2.5 to 0.930 at 4, FID 11.0 / 11.1)."""

ETA = 1.0
"""Sampler stochasticity (`sampler.sample_ddim`): 1 draws each step's noise afresh (ancestral), so
noise the denoiser lets through is not carried from step to step; 0 is deterministic DDIM."""

DROP_ALTERNATION = True
"""Whether the sampler drops the even/odd frame alternation from every estimate but the last
(`sampler.sample_ddim`); on validation it halved FID and brought the Nyquist share to the real takes'."""
