"""Motion evaluator: a content + style classifier trained on the training split only, shipped as a
small file (`benchmarks/evaluator/`), plus the measures a viewer notices (tremor, twist, snaps, foot
skating, floor penetration). Protocol after MDM's action-to-motion evaluation (accuracy, FID,
diversity, multimodality), with features that see what a skinned character shows.

    python -m benchmarks.evaluator --train     # retrain (deterministic, 1 thread) and overwrite the file
    python -m benchmarks.evaluator             # accuracy and FID of real test/val motion, tremor check
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from inference.body.skeleton import CANONICAL, CONTACT_FEATURES, JOINT_NAMES, NUM_JOINTS

MIN_FRAMES, MAX_FRAMES = 30, 80
WEIGHTS_DIR = Path(__file__).resolve().parent / "evaluator"
FORMAT = 1

# -------------------------------------------------------------------------------- skeleton facts
_PARENTS = np.array(CANONICAL.parents)
_CHILDREN = [CANONICAL.children(j) for j in range(NUM_JOINTS)]
# joints whose rotation drives exactly one bone: twist about that bone is measurable
_TWIST_JOINTS = [j for j in range(NUM_JOINTS) if len(_CHILDREN[j]) == 1]
_BONE_AXIS = np.array([CANONICAL.offsets[_CHILDREN[j][0]] / np.linalg.norm(CANONICAL.offsets[_CHILDREN[j][0]])
                       for j in _TWIST_JOINTS])
_GROUPS = {
    "legs": [JOINT_NAMES.index(n) for n in JOINT_NAMES if n.endswith(("hip", "knee", "ankle"))],
    "spine": [JOINT_NAMES.index(n) for n in ("spine1", "spine2", "spine3", "neck")],
    "arms": [JOINT_NAMES.index(n) for n in JOINT_NAMES if n.endswith(("collar", "shoulder", "elbow"))],
}

BANDS_HZ = (1.0, 2.0, 4.0, 7.0)
"""Upper edges of the velocity-spectrum bands (the last band runs to the Nyquist frequency)."""

QUALITY_NAMES = (
    "log_band_0_1hz", "log_band_1_2hz", "log_band_2_4hz", "log_band_4_7hz", "log_band_7hz_nyq",
    "log_nyquist_share", "log_jerk", "acc_lag1_corr",
    "twist_legs_deg", "twist_spine_deg", "twist_arms_deg",
    "log_axis_speed_p99", "log_pop_p99",
)
"""Clip-level descriptors of what a viewer sees: where the velocity energy sits in frequency (tremor),
jerk, whether successive accelerations alternate, bone twist about the bone's own axis, how fast the
bones' secondary axes spin (twist flips) and the largest frame-to-frame velocity changes (snaps)."""


# ------------------------------------------------------------------------------------ measures
def twist_deg(rotations: np.ndarray) -> np.ndarray:
    """(T, len(_TWIST_JOINTS)) twist in degrees of each local rotation about its own bone
    (swing-twist decomposition); rotations (T, 22, 4) canonical local, w first."""
    q = np.asarray(rotations, dtype=np.float64)[:, _TWIST_JOINTS]
    along = (q[..., 1:] * _BONE_AXIS).sum(-1)
    ang = 2 * np.degrees(np.arctan2(along, q[..., 0]))
    return (ang + 180.0) % 360.0 - 180.0


def velocity_spectrum(positions: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and energy (summed over joints and axes) of joint velocities (T, J, 3).
    The velocity sequence is cut to an even length so that the top bin is exactly the Nyquist
    frequency (a period of two frames)."""
    v = np.diff(np.asarray(positions, dtype=np.float64), axis=0) * fps
    n = len(v) - len(v) % 2
    if n < 2:
        return np.zeros(1), np.zeros(1)
    v = v[:n].reshape(n, -1)
    e = (np.abs(np.fft.rfft(v, axis=0)) ** 2).sum(-1)
    return np.fft.rfftfreq(n, 1.0 / fps), e


def nyquist_share(positions: np.ndarray, fps: float) -> float:
    """Share of joint-velocity energy in the top frequency bin (tremor at the frame rate)."""
    _, e = velocity_spectrum(positions, fps)
    return float(e[-1] / max(e.sum(), 1e-12))


def band_shares(positions: np.ndarray, fps: float) -> np.ndarray:
    f, e = velocity_spectrum(positions, fps)
    edges = (-1.0,) + BANDS_HZ + (np.inf,)
    tot = max(e.sum(), 1e-12)
    return np.array([e[(f > a) & (f <= b)].sum() / tot for a, b in zip(edges[:-1], edges[1:])])


def velocity_jumps(positions: np.ndarray) -> np.ndarray:
    """(T-2,) the largest joint velocity change (metres per frame per frame) at each inner frame."""
    v = np.diff(positions, axis=0)
    return np.linalg.norm(np.diff(v, axis=0), axis=-1).max(-1)


def quality_descriptors(orient: np.ndarray, positions: np.ndarray, rotations: np.ndarray | None,
                        fps: float) -> np.ndarray:
    """(len(QUALITY_NAMES),) descriptors of one clip from world orientations (T, 22, 4), joint
    positions (T, 22, 3) and, where known, local rotations (twist; otherwise from the orientations)."""
    eps = 1e-6
    pos = np.asarray(positions, dtype=np.float64)
    bands = np.log10(band_shares(pos, fps) + eps)
    nyq = np.log10(nyquist_share(pos, fps) + eps)
    acc = np.diff(pos, n=2, axis=0) * fps ** 2
    jerk = np.linalg.norm(np.diff(acc, axis=0) * fps, axis=-1).mean() if len(acc) > 1 else 0.0
    if len(acc) > 2:
        a0, a1 = acc[:-1].ravel(), acc[1:].ravel()
        a0, a1 = a0 - a0.mean(), a1 - a1.mean()
        corr = float((a0 * a1).sum() / max(np.sqrt((a0 ** 2).sum() * (a1 ** 2).sum()), 1e-12))
    else:
        corr = 0.0
    if rotations is None:  # local = parent^-1 * world
        from inference.body import quat

        o = np.asarray(orient, dtype=np.float64)
        rotations = o.copy()
        rotations[:, 1:] = quat.mul(quat.conj(o[:, _PARENTS[1:]]), o[:, 1:])
    tw = np.abs(twist_deg(rotations))
    tw_by = {j: tw[:, k] for k, j in enumerate(_TWIST_JOINTS)}
    twists = [float(np.mean([tw_by[j].mean() for j in g if j in tw_by])) for g in _GROUPS.values()]
    axes = secondary_axes(orient)
    if len(axes) > 1:
        cosang = np.clip((axes[1:] * axes[:-1]).sum(-1), -1, 1)
        speed = np.degrees(np.arccos(cosang)) * fps
        axis_p99 = np.log10(np.percentile(speed.max(-1), 99) + 1.0)
    else:
        axis_p99 = 0.0
    jumps = velocity_jumps(pos) if len(pos) > 2 else np.zeros(1)
    pop = np.log10(np.percentile(jumps, 99) * fps ** 2 + 1e-3)
    return np.array([*bands, nyq, np.log10(jerk + 1e-3), corr, *twists, axis_p99, pop], dtype=np.float64)


def secondary_axes(orient: np.ndarray) -> np.ndarray:
    """(T, 22, 3) each joint frame's Y axis in world space. Canonical bones run along X (arms) or Z
    (legs, spine), so Y is perpendicular to every bone: it shows each bone's twist (the kneecap's
    direction from the thigh, the palm's from the forearm), which a bone's direction alone does not."""
    from inference.body import quat

    o = np.asarray(orient, dtype=np.float64)
    return quat.rotate(o, np.broadcast_to([0.0, 1.0, 0.0], o.shape[:-1] + (3,)))


def physical(positions: np.ndarray, fps: float) -> dict:
    """Foot skating ratio, floor penetration (m), jitter (mean jerk, m/s^3) and the Nyquist share of
    joint positions (T, 22, 3).

    A foot (ankle + toe) skates on a frame when its lower joint is as low as a planted one (under
    5 cm above its rest height, `CONTACT_FEATURES`) but moves faster than a planted one (0.5 m/s).
    """
    feet = positions[:, _FOOT]
    h = feet[..., 2] - _REST
    vel = np.zeros(feet.shape[:2])
    vel[1:] = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) * fps
    vel[0] = vel[1] if len(vel) > 1 else 0
    skating = []
    for side in ((0, 1), (2, 3)):
        low = h[:, side].min(axis=1) < CONTACT_FEATURES.height
        fast = vel[:, side].max(axis=1) > CONTACT_FEATURES.speed
        skating.append(low & fast)
    skate = float(np.mean(skating))
    pen = float(np.clip(-h.min(axis=1), 0, None).mean())
    jerk = np.diff(positions, n=3, axis=0) * fps ** 3 if len(positions) > 3 else np.zeros((1, 22, 3))
    return {"skate": skate, "penetration": pen, "jitter": float(np.linalg.norm(jerk, axis=-1).mean()),
            "nyquist_share": nyquist_share(positions, fps)}


_FOOT = [JOINT_NAMES.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
_REST = CANONICAL.rest_pose()[1][_FOOT, 2]


# ------------------------------------------------------------------------------------ features
@dataclass
class Features:
    """What the evaluator reads from one clip."""

    frames: torch.Tensor
    """(T, FRAME_DIM) per-frame input of the classifier."""
    quality: np.ndarray
    """(len(QUALITY_NAMES),) clip-level descriptors (see QUALITY_NAMES)."""


FRAME_DIM = 4 * 3 * NUM_JOINTS + 6
"""Root-relative positions, their velocities and accelerations, each joint's secondary axis (22 x 3
each), plus the root's velocity and acceleration."""


def _facing(orient: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (3, 3) that turns frame 0's pelvis to face -Y, and the ground origin."""
    from inference.body import quat

    fwd = -quat.rotate(orient[0, 0], np.array([0.0, 1.0, 0.0]))
    yaw = np.arctan2(fwd[1], fwd[0]) + np.pi / 2
    c, s = np.cos(-yaw), np.sin(-yaw)
    undo = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    origin = np.array([root[0, 0], root[0, 1], 0.0])
    return undo, origin


def features_from_fk(orient: np.ndarray, positions: np.ndarray, fps: float,
                     rotations: np.ndarray | None = None) -> Features:
    """Evaluator input from world orientations (T, 22, 4) and joint positions (T, 22, 3)."""
    pos = np.asarray(positions, dtype=np.float64)
    undo, origin = _facing(orient, pos[:, 0])
    pos = (pos - origin) @ undo.T
    root = pos[:, 0].copy()
    rel = pos.copy()
    rel[..., :2] -= root[:, None, :2]  # around the root's ground point; heights stay absolute
    axes = secondary_axes(orient) @ undo.T

    def deriv(x):
        d = np.zeros_like(x)
        if len(x) > 1:
            d[1:] = (x[1:] - x[:-1]) * fps
            d[0] = d[1]
        return d

    vel = deriv(rel)
    acc = deriv(vel)
    rv = deriv(root)
    ra = deriv(rv)
    t = len(pos)
    frames = np.concatenate([rel.reshape(t, -1), vel.reshape(t, -1), acc.reshape(t, -1), axes.reshape(t, -1),
                             rv, ra], -1)
    return Features(torch.as_tensor(frames, dtype=torch.float32),
                    quality_descriptors(orient, positions, rotations, fps))


def motion_features(rotations: np.ndarray, root: np.ndarray, fps: float) -> Features:
    """Evaluator input of a clip given as local rotations (T, 22, 4) and root positions (T, 3)."""
    rot = np.asarray(rotations, dtype=np.float64)
    orient, pos = CANONICAL.forward_kinematics(rot, root_position=np.asarray(root, dtype=np.float64))
    return features_from_fk(orient, pos, fps, rot)


def alternate(positions: np.ndarray, amplitude: float = 0.01) -> np.ndarray:
    """Positions with a two-frame alternation added: even frames +amplitude, odd -amplitude on every
    coordinate of every joint (the frame-rate buzz, for checking that the evaluator sees it)."""
    sign = np.where(np.arange(len(positions)) % 2 == 0, 1.0, -1.0)
    return positions + amplitude * sign[:, None, None]


# ----------------------------------------------------------------------------------- the model
class Classifier(nn.Module):
    """Per-frame projection, three dilated temporal convolutions, mean+max pooling, a tanh embedding,
    and two heads (content, style)."""

    def __init__(self, contents: int, styles: int, in_dim: int = FRAME_DIM, width: int = 64):
        super().__init__()
        self.proj = nn.Conv1d(in_dim, width, 1)
        self.convs = nn.ModuleList(nn.Conv1d(width, width, 5, padding=2 * d, dilation=d) for d in (1, 2, 4))
        self.norms = nn.ModuleList(nn.GroupNorm(8, width) for _ in self.convs)
        self.embed = nn.Linear(2 * width, width)
        self.content_head = nn.Linear(width, contents)
        self.style_head = nn.Linear(width, styles)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def features(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), valid: (B, T) -> (B, width) embedding."""
        h = self.proj(((x - self.mean) / self.std).transpose(1, 2))
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.relu(norm(conv(h)))
        v = valid[:, None].to(h.dtype)
        avg = (h * v).sum(-1) / v.sum(-1).clamp_min(1)
        mx = h.masked_fill(v == 0, -1e4).amax(-1)
        return torch.tanh(self.embed(torch.cat([avg, mx], -1)))

    def forward(self, x, valid):
        e = self.features(x, valid)
        return self.content_head(e), self.style_head(e)


def pad_batch(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(x) for x in items)
    out = torch.zeros(len(items), n, items[0].shape[-1])
    valid = torch.zeros(len(items), n, dtype=torch.bool)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
        out[i, len(x):] = x[-1]
        valid[i, : len(x)] = True
    return out, valid


def center_crop(n: int, length: int = MAX_FRAMES) -> slice:
    if n <= length:
        return slice(0, n)
    s = (n - length) // 2
    return slice(s, s + length)


MIN_TAKES = 10


def evaluated_labels(meta: dict) -> tuple[list[str], list[str]]:
    """Contents and styles the classifier learns: those with at least MIN_TAKES takes, the same rule
    that decides which contents have a test split. Contents with one or two takes (a single kick or
    dance) would otherwise be classes the classifier can only memorise, which then catch anything
    unusual."""
    from collections import Counter

    orig = [c for c in meta["clips"] if not c["mirrored"] and c["content"]]
    cc = Counter(c["content"] for c in orig)
    contents = sorted(k for k, v in cc.items() if v >= MIN_TAKES)
    sc = Counter(c["style"] for c in orig if c["content"] in contents)
    styles = sorted(k for k, v in sc.items() if v >= MIN_TAKES)
    return contents, styles


def clip_arrays(rot, root, c: dict, crop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A dataset clip's rotations and root, centre-cropped to MAX_FRAMES (the bench's window)."""
    r, t = np.asarray(rot[c["start"]:c["start"] + c["length"]]), np.asarray(root[c["start"]:c["start"] + c["length"]])
    if crop:
        sl = center_crop(len(r))
        r, t = r[sl], t[sl]
    return r, t


class Evaluator:
    """The classifier with the FID space: its embedding beside the z-scored quality descriptors."""

    def __init__(self, model: Classifier, contents: list[str], styles: list[str], q_mean: np.ndarray,
                 q_std: np.ndarray):
        self.model = model.eval()
        self.contents, self.styles = contents, styles
        self.q_mean, self.q_std = np.asarray(q_mean), np.asarray(q_std)

    @torch.no_grad()
    def predict(self, feats: list[Features]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(FID-space embeddings (N, 64 + Q), content indices (N,), style indices (N,))."""
        out_e, out_c, out_s = [], [], []
        for i in range(0, len(feats), 256):
            chunk = feats[i:i + 256]
            x, v = pad_batch([f.frames for f in chunk])
            emb = self.model.features(x, v)
            out_e.append(emb.double().numpy())
            out_c.append(self.model.content_head(emb).argmax(-1).numpy())
            out_s.append(self.model.style_head(emb).argmax(-1).numpy())
        quality = (np.stack([f.quality for f in feats]) - self.q_mean) / self.q_std
        return np.concatenate([np.concatenate(out_e), quality], 1), np.concatenate(out_c), np.concatenate(out_s)

    # ------------------------------------------------------------------------- file
    def save(self, folder: Path = WEIGHTS_DIR, info: dict | None = None) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().to(torch.float16).contiguous() for k, v in self.model.state_dict().items()},
                  str(folder / "evaluator.safetensors"))
        (folder / "evaluator.safetensors").chmod(0o644)
        cfg = dict(format=FORMAT, contents=self.contents, styles=self.styles, frame_dim=FRAME_DIM,
                   quality_names=list(QUALITY_NAMES), quality_mean=self.q_mean.tolist(),
                   quality_std=self.q_std.tolist(), **(info or {}))
        (folder / "evaluator.json").write_text(json.dumps(cfg, indent=1))

    @staticmethod
    def load(folder: Path = WEIGHTS_DIR) -> "Evaluator":
        from safetensors.torch import load_file

        cfg_path = folder / "evaluator.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"No evaluator in {folder}; train one with "
                                    "`python -m benchmarks.evaluator --train`.")
        cfg = json.loads(cfg_path.read_text())
        if cfg["format"] != FORMAT or cfg["frame_dim"] != FRAME_DIM or cfg["quality_names"] != list(QUALITY_NAMES):
            raise ValueError(f"{folder} holds an evaluator for other features; retrain with "
                             "`python -m benchmarks.evaluator --train`.")
        model = Classifier(len(cfg["contents"]), len(cfg["styles"]))
        model.load_state_dict({k: v.float() for k, v in load_file(str(folder / "evaluator.safetensors")).items()})
        return Evaluator(model, cfg["contents"], cfg["styles"], np.array(cfg["quality_mean"]),
                         np.array(cfg["quality_std"]))

    # ---------------------------------------------------------------------- training
    @staticmethod
    def train(meta: dict, rotations, root, steps: int = 2000, seed: int = 0, verbose: bool = True) -> "Evaluator":
        """Deterministic training on the training split (both mirror images) with one thread."""
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        rng = random.Random(seed)
        contents, styles = evaluated_labels(meta)
        fps = meta["fps"]
        train = [c for c in meta["clips"] if c["split"] == "train" and c["content"] in contents]
        feats, quality = [], []
        for c in train:
            f = motion_features(*clip_arrays(rotations, root, c, crop=False), fps)
            feats.append(f.frames)
        # quality statistics over the same windows the bench scores (centre crops of original takes)
        for c in train:
            if not c["mirrored"]:
                quality.append(motion_features(*clip_arrays(rotations, root, c), fps).quality)
        quality = np.stack(quality)
        q_mean, q_std = quality.mean(0), np.maximum(quality.std(0), 1e-3)
        yc = torch.tensor([contents.index(c["content"]) for c in train])
        ys = torch.tensor([styles.index(c["style"]) if c["style"] in styles else -100 for c in train])
        allf = torch.cat(feats)
        model = Classifier(len(contents), len(styles))
        model.mean.copy_(allf.mean(0))
        model.std.copy_(allf.std(0).clamp_min(1e-2))
        # balance contents: rare contents are sampled as often as common ones
        counts = torch.bincount(yc, minlength=len(contents)).float()
        w = (1.0 / counts.clamp_min(1))[yc]
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
        for step in range(steps):
            idx = torch.multinomial(w, 64, replacement=True, generator=gen).tolist()
            batch = []
            for i in idx:
                f = feats[i]
                n = rng.randint(MIN_FRAMES, MAX_FRAMES)
                if len(f) > n:
                    s0 = rng.randint(0, len(f) - n)
                    f = f[s0:s0 + n]
                batch.append(f)
            x, v = pad_batch(batch)
            lc, ls = model(x, v)
            loss = F.cross_entropy(lc, yc[idx], label_smoothing=0.1) + \
                F.cross_entropy(ls, ys[idx], label_smoothing=0.1, ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for g in opt.param_groups:
                g["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * (step + 1) / steps))
            if verbose and (step + 1) % 250 == 0:
                print(f"evaluator: step {step + 1} loss {loss.item():.3f}", flush=True)
        ev = Evaluator(model, contents, styles, q_mean, q_std)
        # round-trip through fp16 so the evaluator in memory is the one that gets shipped
        for p in model.state_dict().values():
            p.copy_(p.to(torch.float16).float())
        return ev

    @staticmethod
    def train_or_load(meta: dict = None, rotations=None, root=None, cache=None, **_) -> "Evaluator":
        """The shipped evaluator (kept for callers of the former per-machine cache)."""
        return Evaluator.load()


# ------------------------------------------------------------------------------------ statistics
def fid(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def diversity(emb: np.ndarray, pairs: int = 200, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    n = len(emb)
    i, j = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    keep = i != j
    return float(np.linalg.norm(emb[i[keep]] - emb[j[keep]], axis=1).mean())


def multimodality(groups: list[np.ndarray]) -> float:
    """Mean distance between samples generated from the same prompt."""
    d = []
    for g in groups:
        for a in range(len(g)):
            for b in range(a + 1, len(g)):
                d.append(np.linalg.norm(g[a] - g[b]))
    return float(np.mean(d))


def split_clips(meta: dict, ev: Evaluator, split: str) -> list[dict]:
    """Original (not mirrored) takes of a split whose content and style the evaluator knows."""
    return [c for c in meta["clips"] if c["split"] == split and c["content"] and not c["mirrored"]
            and c["content"] in ev.contents and c["style"] in ev.styles]


def tremor_check(meta: dict, rotations, root, ev: Evaluator, amplitude: float = 0.01) -> dict:
    """FID of real test motion against real validation motion, with and without a two-frame
    alternation of `amplitude` metres added to every joint of the test clips, and accuracies."""
    fps = meta["fps"]
    out = {}
    embs, preds = {}, {}
    for split in ("test", "val"):
        clips = split_clips(meta, ev, split)
        feats, buzz = [], []
        for c in clips:
            r, t = clip_arrays(rotations, root, c)
            orient, pos = CANONICAL.forward_kinematics(r, root_position=t)
            feats.append(features_from_fk(orient, pos, fps, r))
            if split == "test":
                buzz.append(features_from_fk(orient, alternate(pos, amplitude), fps, r))
        e, pc, ps = ev.predict(feats)
        embs[split] = e
        yc = np.array([ev.contents.index(c["content"]) for c in clips])
        ys = np.array([ev.styles.index(c["style"]) for c in clips])
        out[f"{split}_content_acc"] = float((pc == yc).mean())
        out[f"{split}_style_acc"] = float((ps == ys).mean())
        if split == "test":
            eb, bc, bs = ev.predict(buzz)
            embs["buzz"] = eb
            out["buzz_content_acc"] = float((bc == yc).mean())
            out["buzz_style_acc"] = float((bs == ys).mean())
    out["fid_real_test_vs_val"] = fid(embs["test"], embs["val"])
    out["fid_buzz_test_vs_val"] = fid(embs["buzz"], embs["val"])
    out["fid_ratio"] = out["fid_buzz_test_vs_val"] / max(out["fid_real_test_vs_val"], 1e-9)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="retrain and overwrite benchmarks/evaluator/")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default .cache/dataset)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from training import build_dataset

    meta, rot, root, _ = build_dataset.load(args.data)
    if args.train:
        ev = Evaluator.train(meta, rot, root, steps=args.steps)
        info = dict(steps=args.steps, seed=0, dataset_clips=len(meta["clips"]), dataset_version=meta.get("version"))
        ev.save(info=info)
    ev = Evaluator.load()
    print(json.dumps(tremor_check(meta, rot, root, ev), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
