"""Restyle an existing motion: the same action, in a style, keeping its timing, root path and foot contacts.

The action itself, noised part of the way (SDEdit), is the starting point, so what it does and when
comes through; its ground path is a known value on every frame (`Constraints.root_path`), so the
character travels exactly as before; the style adapters are attached while sampling; and the
feet are pinned on the frames where the action's own feet were planted (its contact flags),
so steps land when they landed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import lora
from . import representation as rep
from .constraints import Constraints
from ..body.motion import MotionClip, MotionError
from .sampler import Progress, initial_noise, sample_ddim

DEFAULT_AMOUNT = 0.6
"""How far the action is noised before the styled model redraws it (0 = unchanged, 1 = from scratch)."""


@dataclass(frozen=True)
class RestyleResult:
    clip: MotionClip
    """The restyled motion on the action's own frames (its frame rate and length)."""
    contacts: np.ndarray
    """(T, 4) the original's contact flags at the model's frame rate, which the result keeps."""
    prompt: str
    """What the action was read as (the likeliest everyday prompt, or the one given)."""


def restyle(generator, clip: MotionClip, adapters, amount: float = DEFAULT_AMOUNT, prompt: str = "",
            seed: int = 0, steps: int | None = None, guidance: float | None = None,
            callback: Callable[[Progress], bool | None] | None = None) -> RestyleResult:
    """`clip` (canonical skeleton, any frame rate) redrawn with `adapters` ((Adapter, strength), ...)."""
    from . import defaults
    from ..retargeting.cleanup import contacts_from_motion, continuous_twist, pin_planted_feet
    from .generate import _encode_world, _reference_frame, _restore_known, _to_world
    from .learner import caption
    from .text import encode

    if not 0.0 < amount <= 1.0:
        raise MotionError(f"Restyle amount must be more than 0 and at most 1; got {amount:g}.")
    fps = generator.fps
    source = clip
    if abs(clip.fps - fps) > 1e-6:
        clip = clip.at_rate(fps)
    n = clip.num_frames
    if not 1 <= n <= generator.max_frames:
        raise MotionError(f"Restyle works on actions of up to {generator.max_frames / fps:g} s; this one is "
                          f"{n / fps:.1f} s. Split it into shorter actions.")
    steps = steps or defaults.STEPS
    guidance = defaults.GUIDANCE if guidance is None else guidance
    m, dev = generator.model, generator.device
    cons = Constraints.root_path(clip)
    mask = cons.mask
    yaw, origin = _reference_frame(clip, mask, facing=True)
    ref = _encode_world(clip, yaw, origin, fps).to(dev)
    start = (ref - m.mean) / m.std
    mask_t = torch.as_tensor(mask, dtype=torch.float32, device=dev)[None]
    diffusion = generator.diffusion
    ts = [t for t in diffusion.timesteps(max(2, int(round(steps / amount)))) if t <= amount * (diffusion.steps - 1)]
    with generator._lock:
        if not prompt:
            prompt = caption(m, diffusion, [ref[0].cpu()], seed=seed)[0]
        text = torch.as_tensor(encode(prompt), device=dev)
        with lora.applied(m, adapters):
            ac = diffusion.alphas_cumprod.to(dev)[ts[0]].float()
            x = ac.sqrt() * start + (1 - ac).sqrt() * initial_noise(start, seed)
            x0 = sample_ddim(generator.guided(text, start, mask_t, guidance), x, ts, diffusion.alphas_cumprod, start,
                             mask_t, callback)
    feats = torch.where(mask_t > 0.5, ref, x0 * m.std + m.mean)
    q, root, _ = rep.decode(feats.float().cpu())
    q, root = _to_world(q[0].double().numpy(), root[0].double().numpy(), yaw, origin)
    q, root = _restore_known(q, root, clip, mask)
    contacts = contacts_from_motion(clip)
    # the feet land where the action's own feet landed (a style may shorten the stride; the root path
    # is the action's, so its footholds are in reach)
    out = pin_planted_feet(MotionClip(continuous_twist(q), root, fps), contacts, footholds=clip)
    if source is not clip:  # back on the action's own frames: same length, same root path exactly
        out = out.at_rate(source.fps)
        idx = np.arange(source.num_frames).clip(max=out.num_frames - 1)
        root = out.root_translation[idx].copy()
        root[:, :2] = source.root_translation[:, :2]
        out = MotionClip(out.rotations[idx], root, source.fps)
    return RestyleResult(out, contacts, prompt)


def kept_error(original: MotionClip, restyled: MotionClip) -> dict:
    """What a restyle kept, in metres: the root's largest ground-path miss, and the largest slide of a
    foot over a stretch where the original's foot was planted."""
    from ..retargeting.cleanup import contacts_from_motion
    from ..body.skeleton import JOINT_NAMES

    root = float(np.abs(restyled.root_translation[:, :2] - original.root_translation[:, :2]).max())
    contacts = contacts_from_motion(original) > 0.5
    _, pos = restyled.forward_kinematics()
    slide = 0.0
    for k, name in enumerate(("left_ankle", "left_foot", "right_ankle", "right_foot")):
        p = pos[:, JOINT_NAMES.index(name), :2]
        c = contacts[:, k]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], c.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a >= 3:
                slide = max(slide, float(np.linalg.norm(p[a:b] - p[a], axis=1).max()))
    return {"root_m": root, "contact_slide_m": slide}
