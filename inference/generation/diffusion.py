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

from .representation import NUM_JOINTS, ROT, matrix_to_6d, matrix_to_quat, quat_to_matrix, sixd_to_matrix


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
TURN_FROM = math.pi / 3
"""A joint's run whose correction turns it by more than this (radians, from one key's miss to the
other's) is spread as a rotation (`spread_known` with stats), fully from twice this."""
FAR_SHARE = 0.5
"""`spread_known` skips the rotation's spread when no joint's plain change reaches this share of the
least a TURN_FROM turn makes (a margin: the estimate's six numbers are not exactly a rotation's)."""


def _spread(x0: torch.Tensor, known: torch.Tensor, m: torch.Tensor, sub, add, misses: bool = False,
            carry=None):
    """`spread_known` over elements of any kind: x0, known (B, T, C, *element), m (B, T, C) bool.

    sub(a, b): how far `a` is from `b`, as a tangent (B, T, C, *tangent) in which misses and velocities
    are added and scaled; add(v, a): `a` moved by the tangent `v`. Plain numbers: a - b and a + v.
    misses: also return, per frame, the tangent by which its run's correction changes from one end to
    the other (the miss itself at a run with a key on one side only; zero where nothing is known).
    carry(miss, v): the velocity `v` of the estimate once moved by `miss` (for rotations: turned with
    it). Given, the miss is applied first and the velocity bends on top of it, each bend measured
    against the carried velocity; plain numbers need neither (the default: one sum)."""
    b, t, c = m.shape
    dev = x0.device
    idx = torch.arange(t, device=dev).view(1, t, 1).expand(b, t, c)
    prev = torch.cummax(torch.where(m, idx, torch.full_like(idx, -1)), dim=1).values
    nxt = torch.flip(torch.cummin(torch.flip(torch.where(m, idx, torch.full_like(idx, t)), [1]), dim=1).values, [1])
    first, last = prev + 1, nxt - 1  # the free run a frame belongs to

    def wide(mask_like, like):  # (B, T, C) -> broadcastable over `like`'s element dims
        return mask_like.view(mask_like.shape + (1,) * (like.dim() - 3))

    def at(x, i):
        i = i.clamp(0, t - 1)
        return torch.gather(x, 1, wide(i, x).expand(x.shape))

    def known_at(i):
        return at(m, i)

    base = torch.where(wide(m, x0), known, x0)
    # each side's velocity at every frame k, as seen by a key at k: the known neighbour's step, or
    # the free run's own step next to it
    left_known, right_known = known_at(idx - 1), known_at(idx + 1)
    v_left_k, v_left_f = sub(base, at(base, idx - 1)), sub(at(base, idx - 1), at(base, idx - 2))
    v_left = torch.where(wide(left_known, v_left_k), v_left_k, v_left_f)
    v_right_k, v_right_f = sub(at(base, idx + 1), base), sub(at(base, idx + 2), at(base, idx + 1))
    v_right = torch.where(wide(right_known, v_right_k), v_right_k, v_right_f)
    zero = torch.zeros_like(v_left)
    has_l, has_r = idx >= 1 + (~left_known).long(), idx <= t - 2 - (~right_known).long()
    v_left, v_right = torch.where(wide(has_l, zero), v_left, zero), torch.where(wide(has_r, zero), v_right, zero)
    n_sides = has_l.to(zero.dtype) + has_r.to(zero.dtype)
    v_key = (v_left + v_right) / wide(n_sides.clamp_min(1), zero)

    longer = wide(last > first, zero)
    v_start = torch.where(longer, sub(at(x0, first + 1), at(x0, first)), zero)  # the run's own velocity
    v_end = torch.where(longer, sub(at(x0, last), at(x0, last - 1)), zero)
    miss_a = sub(at(known, prev), add(-v_start, at(x0, first)))
    miss_b = sub(at(known, nxt), add(v_end, at(x0, last)))
    dv_a = at(v_key, prev) - (v_start if carry is None else carry(miss_a, v_start))
    dv_b = at(v_key, nxt) - (v_end if carry is None else carry(miss_b, v_end))

    dt = zero.dtype
    span = (nxt - prev).clamp_min(1).to(dt)
    u = wide(((idx - prev).to(dt) / span).clamp(0, 1), zero)
    d_a, d_b = wide((idx - prev).to(dt), zero), wide((nxt - idx).to(dt), zero)
    # velocity: a local bend at each key, gone a few frames in, so a long gap keeps the model's path
    # (the first step next to the key takes the key's velocity exactly: the bend is dv at one frame)
    bend_a = dv_a * d_a * torch.exp(-(d_a - 1).clamp_min(0) / SETTLE_FRAMES)
    bend_b = -dv_b * d_b * torch.exp(-(d_b - 1).clamp_min(0) / SETTLE_FRAMES)
    one_side_a, one_side_b = wide(nxt >= t, zero), wide(prev < 0, zero)
    nothing = wide((prev < 0) & (nxt >= t), zero)

    def per_run(between, after_last, before_first):
        pick = torch.where(one_side_b, before_first, torch.where(one_side_a, after_last, between))
        return torch.where(nothing, zero, pick)

    shift = per_run(miss_a + u * u * (3 - 2 * u) * (miss_b - miss_a), miss_a, miss_b)
    bend = per_run(bend_a + bend_b, bend_a, bend_b)
    moved = add(shift + bend, x0) if carry is None else add(bend, add(shift, x0))
    out = torch.where(wide(m, x0), known, moved)
    if not misses:
        return out
    change = per_run(miss_b - miss_a, miss_a, miss_b)
    return out, torch.where(wide(m, zero), zero, change)


def _rotation_log(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> rotation vectors (..., 3) (axis x angle, angle in [0, pi])."""
    q = matrix_to_quat(r)  # w >= 0
    xyz = q[..., 1:]
    n = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(n, q[..., :1])
    # angle / sin(angle / 2) -> 2 as the angle goes to 0
    return xyz * torch.where(n > 1e-8, angle / n.clamp_min(1e-12), torch.full_like(n, 2.0))


def _rotation_exp(v: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (..., 3) -> rotation matrices (..., 3, 3); exactly the identity for zero."""
    angle = v.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    scale = torch.where(angle > 1e-8, torch.sin(half) / angle.clamp_min(1e-12), 0.5 - angle * angle / 48)
    return quat_to_matrix(torch.cat([torch.cos(half), v * scale], dim=-1))


def _sixd_sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The rotation taking 6D rotation `b` to `a`, in the world (parent) frame, as a rotation vector."""
    return _rotation_log(sixd_to_matrix(a) @ sixd_to_matrix(b).transpose(-1, -2))


def _sixd_add(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """6D rotation `a` turned by the rotation vector `v` (both of its columns, as they are)."""
    r = _rotation_exp(v)
    return torch.cat([(r @ a[..., :3, None])[..., 0], (r @ a[..., 3:, None])[..., 0]], dim=-1)


def spread_known(x0: torch.Tensor, known: torch.Tensor, mask: torch.Tensor,
                 stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """`x0` (B, T, F) made to hold `known` where `mask` is 1, with the correction spread in time.

    Per column, each run of free frames is moved so that it leaves the known value before it and
    arrives at the known value after it: its own motion, carried on one frame past each end, is
    moved onto the key (the two misses blended by smoothstep across the run), and next to each key
    its velocity is bent, over a few frames, onto the key's (the mean of the motion's velocities on
    either side of it; a known neighbour's where known). A run with a key on one side only is moved
    by that side's miss. The free motion keeps its shape and passes through every key
    without a jump in position or speed; whatever the estimate holds on known frames is unused.
    A column with nothing known is left alone.

    stats: the features' (mean, std), when `x0` and `known` are normalised by them. A joint's run
    whose correction turns it far (more than `TURN_FROM` between its two keys' misses; its six columns
    known whole) is then moved as a rotation: misses are turns (rotation vectors), blended the same
    way, and the velocity bends are applied on top of them. Blending the six numbers instead, a miss
    near half a turn (a keyed turn-around the model did not make) passes through a degenerate
    rotation halfway between the keys, and the joint flips there in a frame or two. Smaller turns
    keep the plain spread.
    """
    m = mask > 0.5
    if not bool(m.any()):
        return x0
    if stats is None:
        return _spread(x0, known, m, lambda a, b: a - b, lambda v, a: a + v)
    out, plain_change = _spread(x0, known, m, lambda a, b: a - b, lambda v, a: a + v, misses=True)
    mean, std = (s.to(x0.device, x0.dtype) for s in stats)
    cols = slice(ROT.start, ROT.start + 6 * NUM_JOINTS)
    b, t, _ = x0.shape
    group = m[..., cols].reshape(b, t, NUM_JOINTS, 6)
    whole = group.all(-1)  # the joint's rotation known on that frame
    used = whole.any(dim=1, keepdim=True) & ~(group.any(-1) & ~whole).any(dim=1, keepdim=True)
    # a turn of TURN_FROM moves a rotation's two unit columns by 2 sin(TURN_FROM / 2) or more together:
    # where the plain change of a joint's six numbers stays well below that, no run turns far, and the
    # rotation's spread (a few times the plain one's cost) is not needed
    six = (plain_change[..., cols] * std[cols]).reshape(b, t, NUM_JOINTS, 6).norm(dim=-1)
    far = (used & (six > FAR_SHARE * 2 * math.sin(TURN_FROM / 2))).any(dim=1).any(dim=0)
    if not bool(far.any()):
        return out
    joints = torch.nonzero(far).flatten()  # the rotation's spread is made on these joints only
    k = len(joints)
    mean6, std6 = (s[cols].reshape(NUM_JOINTS, 6)[joints] for s in (mean, std))

    def raw(x):
        return x[..., cols].reshape(b, t, NUM_JOINTS, 6)[:, :, joints] * std6 + mean6

    # each 6D value is a rotation times a shape (its two columns in the rotation's own frame: lengths
    # and skew, the identity's for a true rotation); the rotation is spread as a rotation, the shape
    # as plain numbers, so that the estimate's miss of a key is undone whole, as by the plain spread
    def split(x6):
        r = sixd_to_matrix(x6)
        cols2 = torch.stack([x6[..., :3], x6[..., 3:]], dim=-1)  # (..., 3, 2)
        return matrix_to_6d(r), (r.transpose(-1, -2) @ cols2).flatten(-2)

    sel = (whole & used)[:, :, joints]
    rot_x, shape_x = split(raw(x0))
    rot_k, shape_k = split(raw(known))
    turned6, change = _spread(rot_x, rot_k, sel, _sixd_sub, _sixd_add, misses=True,
                              carry=lambda miss, v: (_rotation_exp(miss) @ v[..., None])[..., 0])
    rot_out = sixd_to_matrix(turned6)
    shape_out = _spread(shape_x.reshape(b, t, -1), shape_k.reshape(b, t, -1), sel.repeat_interleave(6, dim=2),
                        lambda a, c: a - c, lambda v, a: a + v).reshape(b, t, k, 3, 2)
    turned = rot_out @ shape_out
    turned = (torch.cat([turned[..., 0], turned[..., 1]], dim=-1) - mean6) / std6
    # small turns: the plain spread, which undoes the estimate's miss in all six numbers (a little closer
    # to the truth on validation); from TURN_FROM, the rotation's, fully from twice that
    share = ((change.norm(dim=-1) - TURN_FROM) / TURN_FROM).clamp(0, 1)[..., None]
    share = torch.where((used & ~whole)[:, :, joints, None], share, torch.zeros_like(share))
    rot = out[..., cols].reshape(b, t, NUM_JOINTS, 6).clone()
    rot[:, :, joints] = rot[:, :, joints] + share * (turned - rot[:, :, joints])
    rot = rot.reshape(b, t, -1)
    return torch.cat([out[..., :cols.start], rot, out[..., cols.stop:]], dim=-1)


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
