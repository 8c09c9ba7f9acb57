"""Gaussian diffusion with a clean-motion (x0) predicting denoiser, and a few-step DDIM sampler.

The sampler draws its noise on the CPU from a seeded generator, so the same seed gives the same
motion on CPU and GPU. Known values (keyframes, joints the animator keeps, a root path) are given
to the model as conditioning and also written into every step's estimate, so they come out exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch


class Cancelled(Exception):
    """Raised inside `sample` when the progress callback asks to stop."""


def cosine_alphas_cumprod(steps: int, s: float = 0.008) -> torch.Tensor:
    t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    ac = f[1:] / f[0]
    return ac.clamp(1e-5, 0.9999)


class Diffusion:
    def __init__(self, steps: int = 1000):
        self.steps = steps
        self.alphas_cumprod = cosine_alphas_cumprod(steps)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        ac = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        return ac.sqrt().view(shape) * x0 + (1 - ac).sqrt().view(shape) * noise

    def timesteps(self, num_steps: int) -> list[int]:
        """Descending training steps visited by a `num_steps` sampler (always ends at 0)."""
        num_steps = max(1, min(int(num_steps), self.steps))
        ts = torch.linspace(self.steps - 1, 0, num_steps).round().long().tolist()
        return sorted(set(ts), reverse=True)


@dataclass
class Progress:
    step: int
    total: int


def sample(
    model,
    diffusion: Diffusion,
    text: torch.Tensor,
    known: torch.Tensor,
    mask: torch.Tensor,
    num_steps: int = 10,
    guidance: float = 2.5,
    seed: int = 0,
    frame_mask: torch.Tensor | None = None,
    callback: Callable[[Progress], bool | None] | None = None,
) -> torch.Tensor:
    """DDIM (eta = 0) from pure noise to clean normalised motion (B, T, F).

    text: (B, 384) embeddings; known / mask: (B, T, F) normalised known values and where they hold.
    guidance: classifier-free guidance scale on the text (1 = none; 0 = ignore the text).
    callback(Progress) is called after every step; returning True cancels (raises `Cancelled`).
    """
    device = known.device
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    x = torch.randn(known.shape, generator=gen, dtype=torch.float32).to(device=device, dtype=known.dtype)
    mask = mask.to(known.dtype)
    ts = diffusion.timesteps(num_steps)
    ac = diffusion.alphas_cumprod.to(device)
    use_cfg = guidance != 1.0 and bool(text.abs().sum() > 0)
    if use_cfg:
        text_in = torch.cat([text, torch.zeros_like(text)])
        known_in, mask_in = torch.cat([known, known]), torch.cat([mask, mask])
        fm_in = None if frame_mask is None else torch.cat([frame_mask, frame_mask])
    x0 = x
    with torch.no_grad():
        for i, t in enumerate(ts):
            tt = torch.full((x.shape[0],), t, device=device, dtype=torch.long)
            if use_cfg:
                out = model(torch.cat([x, x]), torch.cat([tt, tt]), text_in, known_in, mask_in, fm_in)
                cond, uncond = out.chunk(2)
                x0 = uncond + guidance * (cond - uncond)
            else:
                out = model(x, tt, text, known, mask, frame_mask)
                x0 = out
            x0 = known * mask + x0 * (1 - mask)
            if i + 1 < len(ts):
                a_t, a_next = ac[t].to(x.dtype), ac[ts[i + 1]].to(x.dtype)
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
            if callback is not None and callback(Progress(i + 1, len(ts))):
                raise Cancelled()
    return x0
