"""Generation: motion representation, the denoiser and its adapters, diffusion and sampling, text, requests, constraints, jobs, and the modes built on them. Imports from body and retargeting."""
