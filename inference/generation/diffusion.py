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

    def timesteps(self, num_steps: int, power: float = 1.0) -> list[int]:
        """Descending training steps visited by a `num_steps` sampler (from the top, always ends at 0).

        power 1 spaces them evenly; above 1 they crowd towards the noisy end, where the motion's
        large-scale shape (where it goes, whether an arm swings) is decided, and take longer strides
        through the nearly clean end, where only detail is left to add.
        """
        num_steps = max(1, min(int(num_steps), self.steps))
        if power == 1:  # exactly the steps every earlier release visited (float32 rounding included)
            ts = torch.linspace(self.steps - 1, 0, num_steps).round().long().tolist()
        else:
            done = torch.linspace(0, 1, num_steps, dtype=torch.float64) ** float(power)
            ts = ((1 - done) * (self.steps - 1)).round().long().tolist()
        return sorted(set(ts), reverse=True)


SETTLE_FRAMES = 3.0
"""A run's velocity is bent to a key's over about this many frames next to it."""


def spread_known(x0: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`x0` (B, T, F) made to hold `known` where `mask` is 1, with the correction spread in time.

    Per column, each run of free frames is moved so that it leaves the known value before it and
    arrives at the known value after it: its own motion, carried on one frame past each end, is
    moved onto the key (the two misses blended by smoothstep across the run), and next to each key
    its velocity is bent, over a few frames, onto the key's (the mean of the motion's velocities on
    either side of it; a known neighbour's where known). A run with a key on one side only is moved
    by that side's miss. The free motion keeps its shape and passes through every key
    without a jump in position or speed; whatever the estimate holds on known frames is unused.
    A column with nothing known is left alone.
    """
    m = mask > 0.5
    if not bool(m.any()):
        return x0
    b, t, f = x0.shape
    dt = x0.dtype
    idx = torch.arange(t, device=x0.device).view(1, t, 1).expand(b, t, f)
    prev = torch.cummax(torch.where(m, idx, torch.full_like(idx, -1)), dim=1).values
    nxt = torch.flip(torch.cummin(torch.flip(torch.where(m, idx, torch.full_like(idx, t)), [1]), dim=1).values, [1])
    first, last = prev + 1, nxt - 1  # the free run a frame belongs to
    base = torch.where(m, known, x0)

    def at(x, i):
        return torch.gather(x, 1, i.clamp(0, t - 1))

    def known_at(i):
        return at(m.to(dt), i) > 0.5

    # each side's velocity at every frame k, as seen by a key at k: the known neighbour's step, or
    # the free run's own step next to it
    zero = torch.zeros_like(x0)
    v_left = torch.where(known_at(idx - 1), base - at(base, idx - 1), at(base, idx - 1) - at(base, idx - 2))
    v_right = torch.where(known_at(idx + 1), at(base, idx + 1) - base, at(base, idx + 2) - at(base, idx + 1))
    has_l, has_r = idx >= 1 + (~known_at(idx - 1)).long(), idx <= t - 2 - (~known_at(idx + 1)).long()
    v_left, v_right = torch.where(has_l, v_left, zero), torch.where(has_r, v_right, zero)
    n_sides = has_l.to(dt) + has_r.to(dt)
    v_key = (v_left + v_right) / n_sides.clamp_min(1)

    longer = last > first
    v_start = torch.where(longer, at(x0, first + 1) - at(x0, first), zero)  # the run's own velocity
    v_end = torch.where(longer, at(x0, last) - at(x0, last - 1), zero)
    miss_a = at(known, prev) - (at(x0, first) - v_start)
    miss_b = at(known, nxt) - (at(x0, last) + v_end)
    dv_a = at(v_key, prev) - v_start
    dv_b = at(v_key, nxt) - v_end

    span = (nxt - prev).clamp_min(1).to(dt)
    u = ((idx - prev).to(dt) / span).clamp(0, 1)
    d_a, d_b = (idx - prev).to(dt), (nxt - idx).to(dt)
    # velocity: a local bend at each key, gone a few frames in, so a long gap keeps the model's path
    # (the first step next to the key takes the key's velocity exactly: the bend is dv at one frame)
    bend_a = dv_a * d_a * torch.exp(-(d_a - 1).clamp_min(0) / SETTLE_FRAMES)
    bend_b = -dv_b * d_b * torch.exp(-(d_b - 1).clamp_min(0) / SETTLE_FRAMES)
    between = miss_a + u * u * (3 - 2 * u) * (miss_b - miss_a) + bend_a + bend_b
    after_last = miss_a + bend_a
    before_first = miss_b + bend_b
    corr = torch.where(prev < 0, before_first, torch.where(nxt >= t, after_last, between))
    corr = torch.where((prev < 0) & (nxt >= t), zero, corr)
    return torch.where(m, known, x0 + corr)


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
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM from pure noise to clean normalised motion (B, T, F); eta as in `sampler.sample_ddim`.

    text: (B, 384) embeddings; known / mask: (B, T, F) normalised known values and where they hold.
    guidance: classifier-free guidance scale on the text (1 = none; 0 = ignore the text).
    callback(Progress) is called after every step; returning True cancels (raises `Cancelled`).
    """
    from .sampler import Guided, initial_noise, sample_ddim, step_noise

    mask = mask.to(known.dtype)
    denoise = Guided(model, text, known, mask, guidance, frame_mask)
    return sample_ddim(denoise, initial_noise(known, seed), diffusion.timesteps(num_steps), diffusion.alphas_cumprod,
                       known, mask, callback, eta=eta, noise=step_noise(seed))
