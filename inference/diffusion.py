"""Gaussian diffusion with a clean-motion (x0) predicting denoiser, and a few-step DDIM sampler.

The sampler draws its noise on the CPU from a seeded generator, so the same seed gives the same
motion on CPU and GPU. Known values (keyframes, joints the animator keeps, a root path) are given
to the model as conditioning and imposed on every step's estimate so that they come out exactly:
not pasted in, but by spreading the estimate's miss at each known value over the free frames
around it (`spread_known`), so the motion arrives at a key already on its way there.
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


def spread_known(x0: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`x0` (B, T, F) made to hold `known` where `mask` is 1, with the correction spread in time.

    Per column, the miss (known - x0) at known frames is interpolated over the free frames between
    them (smoothstep, so the added velocity is zero at each key) and held beyond the first and last
    known frame; a column with nothing known is left alone. The free motion keeps its own shape and
    velocity and is shifted to pass through every key, rather than jumping onto it.
    """
    m = mask > 0.5
    b, t, f = x0.shape
    res = torch.where(m, known - x0, torch.zeros_like(x0))
    idx = torch.arange(t, device=x0.device).view(1, t, 1).expand(b, t, f)
    prev = torch.cummax(torch.where(m, idx, torch.full_like(idx, -1)), dim=1).values
    nxt = torch.flip(torch.cummin(torch.flip(torch.where(m, idx, torch.full_like(idx, t)), [1]), dim=1).values, [1])
    r_prev = torch.gather(res, 1, prev.clamp(0, t - 1))
    r_next = torch.gather(res, 1, nxt.clamp(0, t - 1))
    span = (nxt - prev).clamp_min(1).to(x0.dtype)
    w = ((idx - prev).to(x0.dtype) / span).clamp(0, 1)
    w = w * w * (3 - 2 * w)
    between = r_prev + w * (r_next - r_prev)
    corr = torch.where(prev < 0, r_next, torch.where(nxt >= t, r_prev, between))
    corr = torch.where((prev < 0) & (nxt >= t), torch.zeros_like(corr), corr)
    out = x0 + corr
    return torch.where(m, known, out)


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
            x0 = spread_known(x0, known, mask)
            if i + 1 < len(ts):
                a_t, a_next = ac[t].to(x.dtype), ac[ts[i + 1]].to(x.dtype)
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
            if callback is not None and callback(Progress(i + 1, len(ts))):
                raise Cancelled()
    return x0
