"""Sampling in the k-diffusion shape: a denoiser is a plain callable `denoise(x, t) -> x0`, guidance
wraps one, and the sampler is a plain function over a denoiser, timesteps, known values and a mask.

A solver, a guidance term (styles, constraints) or a different model can change without editing the
loop, and the loop never sees a mode name: text to motion, in-betweening, body-part editing and root
paths differ only in `known` and `mask`. The noise schedule and the way known values are imposed
(`spread_known`) live in `diffusion.py`.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch

from . import defaults
from .diffusion import Cancelled, Progress, spread_known

__all__ = ["Denoise", "Guided", "initial_noise", "step_noise", "without_alternation", "sample_ddim", "Cancelled",
           "Progress"]


class Denoise(Protocol):
    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Noisy normalised motion (B, T, F) at training steps t (B,) -> clean estimate (B, T, F)."""


class Guided:
    """Classifier-free guidance as a wrapper: the model with its condition bound, `denoise(x, t)`.

    The condition is the text and the attached style adapters' condition shifts (`model.CondShift`):
    the unconditioned estimate has neither, so a learned style is guided as strongly as a style word
    in the prompt would be. scale 1 (or no text and no style) is the conditioned model itself, called
    once; otherwise the conditioned and unconditioned estimates come from one batched call and are
    mixed as uncond + scale * (cond - uncond).

    style_scale: how strongly the attached styles are guided, when not `scale`. With text and a style,
    the estimate is then uncond + scale * (text - uncond) + style_scale * (styled - text), the text-only
    estimate another row of the same call: the prompt is guided as without a style and the style on
    top of it (composed guidance). style_scale == scale is the two-row mix above.

    known_scale: guidance on the known values (keys). Above 1 it adds (known_scale - 1) * (cond -
    cond without known values), one more row: the estimate moves further from the motion the model
    would make with no keys towards the motion the keys imply (the in-between between the keys,
    not only at them). 1 = the model's own conditioning.

    noisy_text: the text at the noisy steps (t >= noisy_from), where a motion's content is decided;
    `text` at the others (`defaults.NOISY_CONTENT_FROM`). None: `text` at every step.
    unstyled_from: the attached styles are left out of every estimate at the steps t >= this (the
    motion's first outline is the prompt's alone, `defaults.UNSTYLED_FROM`); None: styled throughout.
    """

    def __init__(self, model, text: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, scale: float = 1.0,
                 frame_mask: torch.Tensor | None = None, style_scale: float | None = None,
                 known_scale: float = 1.0, noisy_text: torch.Tensor | None = None, noisy_from: int = 0,
                 unstyled_from: int | None = None):
        self.model, self.text, self.known, self.mask, self.frame_mask = model, text, known, mask, frame_mask
        self.noisy_text, self.noisy_from = noisy_text, int(noisy_from)
        self.unstyled_from = unstyled_from
        self.scale = float(scale)
        self.style_scale = self.scale if style_scale is None else float(style_scale)
        self.known_scale = float(known_scale)
        self._has_text = bool(text.abs().sum() > 0)
        self._has_known = bool(mask.any())

    def _styled(self, step: int | None = None) -> bool:
        if step is not None and self.unstyled_from is not None and step >= self.unstyled_from:
            return False
        shift = getattr(self.model, "cond_shift", None)
        return shift is not None and shift.active

    def weights(self, step: int | None = None) -> dict[tuple[bool, bool, bool], float]:
        """Estimates to mix at diffusion step `step` (None: a step that is styled), {(text, styles,
        known values): weight}; the weights sum to 1."""
        text, styled = self._has_text, self._styled(step)
        full = (text, styled, True)
        if styled and not text:
            w = {full: self.style_scale, (False, False, True): 1.0 - self.style_scale}
        elif styled and self.style_scale != self.scale:
            w = {full: self.style_scale, (True, False, True): self.scale - self.style_scale,
                 (False, False, True): 1.0 - self.scale}
        elif text or styled:
            w = {full: self.scale, (False, False, True): 1.0 - self.scale}
        else:
            w = {full: 1.0}
        if self._has_known and self.known_scale != 1.0:
            w[full] = w.get(full, 0.0) + self.known_scale - 1.0
            key = (text, styled, False)
            w[key] = w.get(key, 0.0) + 1.0 - self.known_scale
        return {k: v for k, v in w.items() if v != 0.0}

    @property
    def active(self) -> bool:
        """Whether guidance applies now (the styles attached to the model may change between calls)."""
        return len(self.weights()) > 1

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        step = int(t.flatten()[0])
        weights = self.weights(step)
        said = self.text if self.noisy_text is None or step < self.noisy_from else self.noisy_text
        rows = list(weights)
        if len(rows) == 1 and (rows[0][1] or not self._styled()):  # one row, and no style to leave out
            return self.model(x, t, said, self.known, self.mask, self.frame_mask)
        n, b = len(rows), x.shape[0]
        none = torch.zeros_like(said)
        text = torch.cat([said if r[0] else none for r in rows])
        known = torch.cat([self.known if r[2] else torch.zeros_like(self.known) for r in rows])
        mask = torch.cat([self.mask if r[2] else torch.zeros_like(self.mask) for r in rows])
        fm = None if self.frame_mask is None else torch.cat([self.frame_mask] * n)
        shift = getattr(self.model, "cond_shift", None)
        if shift is not None:
            shift.gate = torch.cat([torch.full((b,), float(r[1])) for r in rows])
        try:
            out = self.model(torch.cat([x] * n), torch.cat([t] * n), text, known, mask, fm).chunk(n)
        finally:
            if shift is not None:
                shift.gate = None
        # the first row (the full condition) plus weighted differences, as in uncond + s * (cond - uncond)
        first = out[0]
        return first + sum(weights[r] * (o - first) for r, o in zip(rows[1:], out[1:]))


def initial_noise(like: torch.Tensor, seed: int) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn on the CPU from `seed` (same motion on CPU and GPU)."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(like.shape, generator=gen, dtype=torch.float32).to(device=like.device, dtype=like.dtype)


def step_noise(seed: int) -> torch.Generator:
    """The CPU generator of a stochastic sampler's fresh noise for `seed` (a stream apart from
    `initial_noise`'s, so that no seed's step noise is another seed's starting noise)."""
    import numpy as np

    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 1]).generate_state(1, np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state) & 0x7FFFFFFFFFFFFFFF)


ALTERNATION_KERNEL = (1.0, 4.0, 6.0, 4.0, 1.0)
"""Binomial weights over which `without_alternation` reads each frame's even/odd alternation."""


def without_alternation(x: torch.Tensor) -> torch.Tensor:
    """`x` (B, T, F) less its alternation between even and odd frames (a notch at the frame rate).

    Each frame's alternation is the signal times (-1)^n averaged over five frames with binomial
    weights (mirrored at the ends); that, modulated back, is subtracted. The response is
    1 - sin^4(pi f / fps): 0 at half the frame rate (10 Hz at 20 fps), 0.75 at a quarter, 0.96 at
    3 Hz and 0.99 at 2 Hz, so gestures pass and a two-frame buzz does not. Windows under five
    frames are returned as they are.
    """
    n = len(ALTERNATION_KERNEL)
    if x.shape[1] < n:
        return x
    sign = (1 - 2 * (torch.arange(x.shape[1], device=x.device) % 2)).to(x.dtype)[None, :, None]
    y = x * sign
    h = n // 2
    y = torch.cat([y[:, 1:h + 1].flip(1), y, y[:, -h - 1:-1].flip(1)], dim=1)  # mirrored about the end frames
    k = torch.tensor(ALTERNATION_KERNEL, dtype=x.dtype, device=x.device)
    k = k / k.sum()
    t = x.shape[1]
    alternation = sum(k[i] * y[:, i:i + t] for i in range(n))
    return x - sign * alternation


def sample_ddim(
    denoise: Denoise,
    x: torch.Tensor,
    timesteps: list[int],
    alphas_cumprod: torch.Tensor,
    known: torch.Tensor,
    mask: torch.Tensor,
    callback: Callable[[Progress], bool | None] | None = None,
    eta: float = 0.0,
    noise: torch.Generator | None = None,
    drop_alternation: bool = defaults.DROP_ALTERNATION,
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """DDIM from `x` (noise) through descending `timesteps` to the clean estimate.

    eta: 0 is deterministic DDIM (each step keeps the noise it inferred); 1 replaces that noise
    with fresh noise in the amount of the posterior's spread (ancestral, DDPM-like). With eta > 0,
    whatever the denoiser lets through of one step's noise (its frame-rate part above all) is not
    carried to the next step but drawn again, so it does not build up over the run (model card:
    sampling). Fresh noise comes from `noise` (a CPU generator: `step_noise(seed)`).
    drop_alternation: every estimate but the last loses its even/odd frame alternation
    (`without_alternation`) before the next step is drawn from it. At mid noise the denoiser lets the
    noise's frame-rate part into its estimate (of waves above all: model card, "The data's tremor"),
    and the next steps take it for motion; dropped there, it is not carried on. The last estimate,
    the motion returned, is the denoiser's own: nothing filters the output.
    Every step's estimate holds `known` exactly where `mask` is 1 (`spread_known`); with `stats`, the
    features' (mean, std) that `x` is normalised by, known joint rotations are spread as rotations.
    callback(Progress) after every step; returning True raises `Cancelled`.
    """
    device = x.device
    ac = alphas_cumprod.to(device)
    eta = float(eta)
    if eta > 0 and noise is None:
        raise ValueError("A stochastic sampler (eta > 0) needs a noise generator (sampler.step_noise(seed)).")
    x0 = x
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            tt = torch.full((x.shape[0],), t, device=device, dtype=torch.long)
            x0 = denoise(x, tt)
            if i + 1 < len(timesteps) and drop_alternation:
                x0 = without_alternation(x0)
            x0 = spread_known(x0, known, mask, stats)
            if i + 1 < len(timesteps):
                a_t, a_next = ac[t].to(x.dtype), ac[timesteps[i + 1]].to(x.dtype)
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
                sigma = eta * ((1 - a_next) / (1 - a_t) * (1 - a_t / a_next)).clamp_min(0).sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next - sigma ** 2).clamp_min(0).sqrt() * eps
                if eta > 0:
                    fresh = torch.randn(x.shape, generator=noise, dtype=torch.float32)
                    x = x + sigma * fresh.to(device=device, dtype=x.dtype)
            if callback is not None and callback(Progress(i + 1, len(timesteps))):
                raise Cancelled()
    return x0
