"""In-betweening on the held-out test split: the LAFAN1 protocol (Harvey et al. 2020), reimplemented
at 30 fps, and blocking (whole-pose keys every second on 8-s clips). The model and plain
interpolation (lerp root + slerp rotations) are measured in the same run on the same frames.

    python -m benchmarks.inbetween [--limit N] [--split test] [--model DIR]

LAFAN1 protocol: test clips resampled 20 -> 30 fps; windows every 40 frames; 10 context frames, a gap
of 5, 15 or 30 frames, then the target frame. The model runs at 20 fps, so each request is built at
20 fps around the protocol: the 20-fps grid is anchored on the last context frame, the context is
resampled onto it (known frames, drawn from the context only), the gap is rounded to whole 20-fps
frames (0, 3 and 1.6 % longer for gaps 5, 15, 30) and the target pose is the key at its end; the
generated gap is then time-scaled back onto the 30-fps gap frames (slerp/lerp between 20-fps frames).
L2P: global joint positions normalised by the training split's mean/std (windows of 50 frames every
20, turned to face -Y at frame 9 and centred on their mean root, as LAFAN1's benchmark does); L2Q:
global quaternions (sign-matched); NPSS: normalised power spectrum similarity of the global
quaternions over the gap (Gopalakrishnan et al. 2019). All three over the gap frames only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inference.body import quat
from inference.generation.constraints import Constraints
from inference.generation.generate import DEFAULT_GUIDANCE, DEFAULT_STEPS, Generator
from inference.body.motion import MotionClip
from inference.body.skeleton import NUM_JOINTS

from .evaluator import velocity_jumps

FPS30 = 30.0
CONTEXT = 10
GAPS = (5, 15, 30)
STRIDE = 40
STATS_WINDOW, STATS_STRIDE = 50, 20
BLOCK_SECONDS, KEY_EVERY_S = 8.0, 1.0


# ------------------------------------------------------------------------------------------- data
def split_clips(meta: dict, rot, root, split: str) -> list[MotionClip]:
    """Original (not mirrored) clips of a split, both datasets, at the dataset's rate."""
    out = []
    for c in meta["clips"]:
        if c["split"] == split and not c["mirrored"]:
            a, b = c["start"], c["start"] + c["length"]
            out.append(MotionClip(np.asarray(rot[a:b]), np.asarray(root[a:b]), meta["fps"]))
    return out


SOURCES = {"bandai1": "bandai", "bandai2": "bandai", "cmu": "cmu"}
"""Dataset source -> the group its windows are also reported under (`_bandai`, `_cmu` keys)."""


def split_sources(meta: dict, split: str) -> list[str]:
    """Per clip of `split_clips` (same order), its group in `SOURCES`."""
    return [SOURCES.get(c["source"], c["source"]) for c in meta["clips"] if c["split"] == split and not c["mirrored"]]


def sample_at(clip: MotionClip, u: np.ndarray) -> MotionClip:
    """The clip at fractional frame indices u (slerp rotations, lerp root), at `clip.fps`."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0, clip.num_frames - 1)
    i0 = np.floor(u).astype(int)
    i1 = np.minimum(i0 + 1, clip.num_frames - 1)
    a = u - i0
    r = quat.slerp(clip.rotations[i0], clip.rotations[i1], np.repeat(a[:, None], NUM_JOINTS, 1))
    t = clip.root_translation[i0] * (1 - a[:, None]) + clip.root_translation[i1] * a[:, None]
    return MotionClip(r, t, clip.fps)


def interpolate(clip: MotionClip, keys) -> MotionClip:
    """Lerp root + slerp local rotations between consecutive keys (held before the first and after the last)."""
    keys = np.asarray(sorted(keys))
    f = np.arange(clip.num_frames)
    j = np.clip(np.searchsorted(keys, f, side="right") - 1, 0, len(keys) - 1)
    j1 = np.minimum(j + 1, len(keys) - 1)
    span = np.maximum(keys[j1] - keys[j], 1)
    a = np.where(j1 == j, 0.0, np.clip((f - keys[j]) / span, 0, 1))
    only_keys = MotionClip(clip.rotations[keys], clip.root_translation[keys], clip.fps)
    return sample_at(only_keys, j + a)


def _yaw_undo(orient_pelvis: np.ndarray) -> np.ndarray:
    """Quaternion that turns a pelvis orientation (4,) to face -Y."""
    fwd = -quat.rotate(orient_pelvis, np.array([0.0, 1.0, 0.0]))
    yaw = np.arctan2(fwd[1], fwd[0]) + np.pi / 2
    return np.array([np.cos(-yaw / 2), 0.0, 0.0, np.sin(-yaw / 2)])


def global_frames(clip: MotionClip, at: int) -> tuple[np.ndarray, np.ndarray]:
    """Global quaternions (T, J, 4) and positions (T, J, 3), turned so frame `at` faces -Y."""
    orient, pos = clip.forward_kinematics()
    undo = _yaw_undo(orient[at, 0])
    orient = quat.mul(np.broadcast_to(undo, orient.shape), orient)
    pos = quat.rotate(np.broadcast_to(undo, pos.shape[:-1] + (4,)), pos)
    return orient, pos


def position_stats(clips: list[MotionClip]) -> tuple[np.ndarray, np.ndarray]:
    """LAFAN1's normalisation: mean and std (J*3,) of global positions over training windows."""
    rows = []
    for c in clips:
        c30 = c.resample(FPS30)
        for s in range(0, c30.num_frames - STATS_WINDOW + 1, STATS_STRIDE):
            w = c30.slice(s, s + STATS_WINDOW)
            _, pos = global_frames(w, CONTEXT - 1)
            pos[..., :2] -= pos[:, 0, :2].mean(0)
            rows.append(pos.reshape(STATS_WINDOW, -1))
    x = np.concatenate(rows)
    return x.mean(0), x.std(0)


# ---------------------------------------------------------------------------------------- metrics
def _sign_match(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.where((q * ref).sum(-1, keepdims=True) < 0, -q, q)


def npss(gt: np.ndarray, pred: np.ndarray) -> float:
    """Normalised power spectrum similarity of (B, T, D) sequences: the earth mover's distance between
    each feature's normalised power spectra, weighted by the feature's share of the true power."""
    gp = np.abs(np.fft.fft(gt, axis=1)) ** 2
    pp = np.abs(np.fft.fft(pred, axis=1)) ** 2
    gtot = gp.sum(1)
    w = gtot / max(gtot.sum(), 1e-12)
    gn = gp / np.maximum(gtot[:, None], 1e-12)
    pn = pp / np.maximum(pp.sum(1)[:, None], 1e-12)
    emd = np.abs(np.cumsum(gn, 1) - np.cumsum(pn, 1)).sum(1)
    return float((w * emd).sum())


def gap_errors(gt: MotionClip, pred: MotionClip, gap: slice, x_mean, x_std) -> dict:
    """L2P and L2Q per gap frame and the global quaternions over the gap (for NPSS)."""
    qg, pg = global_frames(gt, CONTEXT - 1)
    qp, pp = global_frames(pred, CONTEXT - 1)
    qg = quat.make_continuous(qg)
    qp = _sign_match(qp, qg)
    n = len(pg)
    zg = (pg.reshape(n, -1) - x_mean) / x_std
    zp = (pp.reshape(n, -1) - x_mean) / x_std
    return {"l2p": np.linalg.norm(zp - zg, axis=-1)[gap], "l2q": np.linalg.norm((qp - qg).reshape(n, -1), axis=-1)[gap],
            "q_gt": qg[gap].reshape(len(range(*gap.indices(n))), -1),
            "q_pred": qp[gap].reshape(len(range(*gap.indices(n))), -1)}


# ------------------------------------------------------------------------------------------ model
class Filler:
    """Runs the model the way an animator would: known frames + keyframe mask, no prompt, defaults."""

    def __init__(self, gen: Generator, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                 smoothing: float | None = None, foot_lock: bool | None = None, prompt: str = "",
                 key_guidance: float | None = None):
        self.gen, self.steps, self.guidance, self.key_guidance = gen, steps, guidance, key_guidance
        self.smoothing, self.foot_lock, self.prompt = smoothing, foot_lock, prompt

    def __call__(self, known: MotionClip, keys, seed: int) -> MotionClip:
        c = Constraints.pose_keys(known, keys)  # whole-pose keys, guided as the In-between panel's
        kg = c.key_guidance if self.key_guidance is None else self.key_guidance
        return self.gen.generate(self.prompt, num_frames=known.num_frames, seed=seed, steps=self.steps,
                                 guidance=self.guidance, known=known, mask=c.mask, smoothing=self.smoothing,
                                 foot_lock=self.foot_lock, key_guidance=kg).clip

    def lafan(self, window: MotionClip, gap: int, seed: int) -> MotionClip:
        """Fill frames CONTEXT .. CONTEXT+gap-1 of a 30-fps window at the model's 20 fps (see the module doc)."""
        fps = self.gen.fps
        t_c, t_t = (CONTEXT - 1) / FPS30, (CONTEXT + gap) / FPS30
        k = max(1, int(round((t_t - t_c) * fps)))
        n_ctx = int(np.floor(t_c * fps + 1e-9)) + 1
        n = n_ctx + k
        # 20-fps frame i sits at time t_c + (i - (n_ctx-1)) / fps on the context side
        t_known = t_c + (np.arange(n_ctx) - (n_ctx - 1)) / fps
        ctx = sample_at(window, t_known * FPS30)
        target = window.slice(CONTEXT + gap, CONTEXT + gap + 1)
        rot = np.concatenate([ctx.rotations, np.repeat(target.rotations, k, 0)])
        root = np.concatenate([ctx.root_translation, np.repeat(target.root_translation, k, 0)])
        known = MotionClip(rot, root, fps)
        out = self(known, list(range(n_ctx)) + [n - 1], seed)
        # back to 30 fps: gap frame j at time j/30 -> 20-fps index, the gap time-scaled to k frames
        j = np.arange(CONTEXT, CONTEXT + gap)
        u = (n_ctx - 1) + (j / FPS30 - t_c) / (t_t - t_c) * k
        filled = sample_at(out, u)
        rot = window.rotations[:CONTEXT + gap + 1].copy()
        root = window.root_translation[:CONTEXT + gap + 1].copy()
        rot[CONTEXT:CONTEXT + gap], root[CONTEXT:CONTEXT + gap] = filled.rotations, filled.root_translation
        return MotionClip(rot, root, FPS30)


# --------------------------------------------------------------------------------------- protocols
def _evenly(items: list, limit: int) -> list:
    """At most `limit` of `items`, evenly spread over them (deterministic); all when limit is 0."""
    if limit and len(items) > limit:
        return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]
    return items


def lafan_windows(clips: list[MotionClip], limit: int = 0, labels: list | None = None):
    """The LAFAN1 windows of `clips` at 30 fps; with `labels` (one per clip), (windows, their clips' labels)."""
    length = CONTEXT + max(GAPS) + 1
    wins = []
    for k, c in enumerate(clips):
        c30 = c.resample(FPS30)
        for s in range(0, c30.num_frames - length + 1, STRIDE):
            wins.append((c30.slice(s, s + length), None if labels is None else labels[k]))
    wins = _evenly(wins, limit)
    windows = [w for w, _ in wins]
    return windows if labels is None else (windows, [lab for _, lab in wins])


def run_lafan(filler: Filler, windows: list[MotionClip], x_mean, x_std, labels: list | None = None) -> dict:
    """Every LAFAN1 figure over `windows`; with `labels` (one per window) also each label's L2P ratio
    (`inb_l2p_ratio_<gap>_<label>`)."""
    out = {}
    for gap in GAPS:
        sl = slice(CONTEXT, CONTEXT + gap)
        rows = {"model": [], "interp": []}
        for i, w in enumerate(windows):
            w = w.slice(0, CONTEXT + gap + 1)
            pred = filler.lafan(w, gap, seed=i)
            lerp = interpolate(w, [CONTEXT - 1, CONTEXT + gap])
            rows["model"].append(gap_errors(w, pred, sl, x_mean, x_std))
            rows["interp"].append(gap_errors(w, lerp, sl, x_mean, x_std))
        for name, r in rows.items():
            out[f"{name}_l2p_{gap}"] = float(np.mean([x["l2p"].mean() for x in r]))
            out[f"{name}_l2q_{gap}"] = float(np.mean([x["l2q"].mean() for x in r]))
            out[f"{name}_npss_{gap}"] = npss(np.stack([x["q_gt"] for x in r]), np.stack([x["q_pred"] for x in r]))
        out[f"inb_l2p_ratio_{gap}"] = out[f"model_l2p_{gap}"] / out[f"interp_l2p_{gap}"]
        by_label(out, f"inb_l2p_ratio_{gap}", [x["l2p"].mean() for x in rows["model"]],
                  [x["l2p"].mean() for x in rows["interp"]], labels)
        out[f"inb_l2q_ratio_{gap}"] = out[f"model_l2q_{gap}"] / out[f"interp_l2q_{gap}"]
        out[f"inb_npss_{gap}"] = out[f"model_npss_{gap}"]
    return out


def block_windows(clips: list[MotionClip], limit: int = 0, labels: list | None = None):
    """One centred 8-s window (plus the closing key's frame) from each test clip that long; with
    `labels` (one per clip), (windows, their clips' labels)."""
    fps = clips[0].fps
    n = int(round(BLOCK_SECONDS * fps)) + 1
    wins = []
    for k, c in enumerate(clips):
        if c.num_frames >= n:
            s = (c.num_frames - n) // 2
            wins.append((c.slice(s, s + n), None if labels is None else labels[k]))
    wins = _evenly(wins, limit)
    windows = [w for w, _ in wins]
    return windows if labels is None else (windows, [lab for _, lab in wins])


def by_label(out: dict, key: str, model: list, interp: list, labels: list | None):
    """`key`_<label>: the ratio of the model's mean error to interpolation's over each label's windows."""
    if labels is None:
        return
    labels = np.asarray(labels)
    for lab in sorted(set(labels.tolist())):
        pick = labels == lab
        out[f"{key}_{lab}"] = float(np.mean(np.asarray(model)[pick]) / np.mean(np.asarray(interp)[pick]))
        out[f"{key}_{lab}_windows"] = int(pick.sum())


def blocking_errors(real: MotionClip, pred: MotionClip, keys) -> dict:
    """Mean joint error on unkeyed frames, and per inner key the largest joint-velocity jump (m/frame)."""
    free = np.setdiff1d(np.arange(real.num_frames), keys)
    pr, pp = real.positions(), pred.positions()
    err = np.linalg.norm(pp - pr, axis=-1)[free].mean()
    inner = [k for k in keys if 0 < k < real.num_frames - 1]
    jumps = velocity_jumps(pp)  # index t-1 <-> frame t
    return {"err": float(err), "jumps": jumps[np.array(inner) - 1]}


def run_blocking(filler: Filler, windows: list[MotionClip], real_clips: list[MotionClip],
                 labels: list | None = None) -> dict:
    """Blocking figures over `windows`; with `labels` (one per window) also each label's ratio
    (`inb_blocking_ratio_<label>`)."""
    if not windows:
        return {}
    fps = windows[0].fps
    n = windows[0].num_frames
    keys = list(range(0, n, int(round(KEY_EVERY_S * fps))))
    m_err, i_err, m_pop, r_pop = [], [], [], []
    for i, w in enumerate(windows):
        pred = filler(w, keys, seed=i)
        lerp = interpolate(w, keys)
        bm, bi, br = blocking_errors(w, pred, keys), blocking_errors(w, lerp, keys), blocking_errors(w, w, keys)
        m_err.append(bm["err"])
        i_err.append(bi["err"])
        m_pop.append(bm["jumps"].max())
        r_pop.append(br["jumps"].max())
    # the real data's 99th percentile of the per-frame largest joint-velocity change, same clips' split
    jumps = [velocity_jumps(c.positions()) for c in real_clips if c.num_frames > 2]
    p99 = float(np.percentile(np.concatenate(jumps), 99))
    out = {
        "inb_blocking_ratio": float(np.mean(m_err) / np.mean(i_err)),
        "inb_blocking_model_err_m": float(np.mean(m_err)),
        "inb_blocking_interp_err_m": float(np.mean(i_err)),
        "inb_pop": float(np.median(m_pop) / p99),
        "inb_pop_max": float(np.max(m_pop) / p99),
        "real_pop": float(np.median(r_pop) / p99),
        "real_velocity_jump_p99_m_per_s2": p99 * fps * fps,
        "inb_blocking_clips": len(windows),
    }
    by_label(out, "inb_blocking_ratio", m_err, i_err, labels)
    return out


def measure(gen: Generator, meta: dict, rot, root, split: str = "test", limit: int = 0, stats=None,
            **filler_kw) -> dict:
    """Every in-betweening key of `make bench` (see benchmarks/README.md)."""
    t0 = time.time()
    if stats is None:
        stats = position_stats(split_clips(meta, rot, root, "train"))
    x_mean, x_std = stats
    clips = split_clips(meta, rot, root, split)
    sources = split_sources(meta, split)
    filler = Filler(gen, **filler_kw)
    wins, labels = lafan_windows(clips, limit, sources)
    out = {"inb_lafan_windows": len(wins)}
    out.update(run_lafan(filler, wins, x_mean, x_std, labels))
    blocks, block_labels = block_windows(clips, limit, sources)
    out.update(run_blocking(filler, blocks, clips, block_labels))
    out["inb_seconds"] = round(time.time() - t0, 1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--split", default="test", choices=["test", "val"])
    ap.add_argument("--limit", type=int, default=0, help="at most N LAFAN1 windows and N blocking clips")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    ap.add_argument("--smoothing", type=float, default=None)
    ap.add_argument("--no-foot-lock", action="store_true")
    ap.add_argument("--key-guidance", type=float, default=None,
                    help="guidance on the keyed poses (1: none; default: the in-betweening's)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from training import build_dataset

    meta, rot, root, _ = build_dataset.load()
    gen = Generator(args.model, "cpu")
    out = measure(gen, meta, rot, root, args.split, args.limit, steps=args.steps, guidance=args.guidance,
                  smoothing=args.smoothing, foot_lock=False if args.no_foot_lock else None,
                  key_guidance=args.key_guidance)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
