"""Motion evaluator: content and style classifiers trained on the training split only, plus the
physical measures (foot skating, floor penetration, jitter). Protocol after MDM's action-to-motion
evaluation (accuracy, FID in the classifier's feature space, diversity, multimodality).
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from inference import representation as rep
from inference.skeleton import CANONICAL, JOINT_NAMES

MIN_FRAMES, MAX_FRAMES = 30, 80


def motion_features(rotations: np.ndarray, root: np.ndarray, fps: float) -> torch.Tensor:
    """(T, 69) per-frame input: joint positions around the root's ground point in the clip's own frame
    (facing -Y at frame 0) and the root velocity."""
    q = torch.as_tensor(np.asarray(rotations), dtype=torch.float32)[None]
    r = torch.as_tensor(np.asarray(root), dtype=torch.float32)[None]
    rotm, rr = rep.canonicalize(rep.quat_to_matrix(q), r)
    pos = rep.canonical_forward_kinematics_torch(rotm, rr)[0]
    rel = pos.clone()
    rel[..., :2] -= rr[0, :, None, :2]
    vel = torch.zeros_like(rr[0])
    vel[1:] = (rr[0, 1:] - rr[0, :-1]) * fps
    vel[0] = vel[1] if len(vel) > 1 else 0
    return torch.cat([rel.reshape(len(rel), -1), vel], dim=-1)


class Classifier(nn.Module):
    def __init__(self, in_dim: int, classes: int, width: int = 128):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv1d(in_dim, width, 5, padding=2), nn.Conv1d(width, width, 5, padding=2, dilation=1),
            nn.Conv1d(width, width, 5, padding=4, dilation=2),
        ])
        self.norms = nn.ModuleList(nn.GroupNorm(8, width) for _ in self.convs)
        self.embed = nn.Linear(2 * width, width)
        self.head = nn.Linear(width, classes)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def features(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), valid: (B, T) -> (B, width) embedding (the FID space)."""
        h = ((x - self.mean) / self.std).transpose(1, 2)
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(norm(conv(h)))
        v = valid[:, None].to(h.dtype)
        avg = (h * v).sum(-1) / v.sum(-1).clamp_min(1)
        mx = h.masked_fill(v == 0, -1e4).amax(-1)
        return torch.tanh(self.embed(torch.cat([avg, mx], -1)))

    def forward(self, x, valid):
        return self.head(self.features(x, valid))


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
    """Contents and styles the classifiers learn: those with at least MIN_TAKES takes, the same rule
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


class Evaluator:
    """Both classifiers, trained once per dataset and cached under .cache/evaluator/."""

    def __init__(self, content: Classifier, style: Classifier, contents: list[str], styles: list[str]):
        self.content, self.style = content.eval(), style.eval()
        self.contents, self.styles = contents, styles

    @torch.no_grad()
    def predict(self, feats: list[torch.Tensor]):
        x, v = pad_batch(feats)
        emb = self.content.features(x, v)
        c = self.content.head(emb).argmax(-1)
        s = self.style(x, v).argmax(-1)
        return emb.numpy(), c.numpy(), s.numpy()

    @staticmethod
    def train_or_load(meta: dict, rotations, root, cache: Path, steps: int = 1500, seed: int = 0,
                      verbose: bool = True) -> "Evaluator":
        contents, styles = evaluated_labels(meta)
        key = hashlib.sha1(json.dumps([contents, styles, len(meta["clips"]), steps, seed, 3])
                           .encode()).hexdigest()[:10]
        path = cache / f"evaluator_{key}.pt"
        fps = meta["fps"]
        if path.exists():
            ck = torch.load(path, weights_only=False)
            c, s = Classifier(69, len(contents)), Classifier(69, len(styles))
            c.load_state_dict(ck["content"])
            s.load_state_dict(ck["style"])
            return Evaluator(c, s, contents, styles)
        torch.manual_seed(seed)
        rng = random.Random(seed)
        train = [c for c in meta["clips"] if c["split"] == "train" and c["content"] in contents
                 and c["style"] in styles]
        feats = [motion_features(rotations[c["start"]:c["start"] + c["length"]],
                                 root[c["start"]:c["start"] + c["length"]], fps) for c in train]
        yc = torch.tensor([contents.index(c["content"]) for c in train])
        ys = torch.tensor([styles.index(c["style"]) for c in train])
        allf = torch.cat(feats)
        mean, std = allf.mean(0), allf.std(0).clamp_min(1e-3)
        models = {}
        for name, y, k in (("content", yc, len(contents)), ("style", ys, len(styles))):
            model = Classifier(69, k)
            model.mean.copy_(mean)
            model.std.copy_(std)
            # balance classes: rare contents/styles are sampled as often as common ones
            counts = torch.bincount(y, minlength=k).float()
            w = (1.0 / counts.clamp_min(1))[y]
            opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
            for step in range(steps):
                idx = torch.multinomial(w, 64, replacement=True).tolist()
                batch = []
                for i in idx:
                    f = feats[i]
                    n = rng.randint(MIN_FRAMES, MAX_FRAMES)
                    if len(f) > n:
                        s0 = rng.randint(0, len(f) - n)
                        f = f[s0:s0 + n]
                    batch.append(f)
                x, v = pad_batch(batch)
                loss = F.cross_entropy(model(x, v), y[idx], label_smoothing=0.1)
                opt.zero_grad()
                loss.backward()
                opt.step()
                for g in opt.param_groups:
                    g["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * (step + 1) / steps))
                if verbose and (step + 1) % 500 == 0:
                    print(f"evaluator {name}: step {step + 1} loss {loss.item():.3f}", flush=True)
            models[name] = model
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({"content": models["content"].state_dict(), "style": models["style"].state_dict()}, path)
        return Evaluator(models["content"], models["style"], contents, styles)


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


_FOOT = [JOINT_NAMES.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
_REST = CANONICAL.rest_pose()[1][_FOOT, 2]


def physical(positions: np.ndarray, fps: float) -> dict:
    """Foot skating ratio, floor penetration (m) and jitter (m/s^3) of joint positions (T, 22, 3).

    A foot (ankle + toe) skates on a frame when its lower joint is under 5 cm above its rest height
    and moves faster than 0.5 m/s over the ground.
    """
    feet = positions[:, _FOOT]
    h = feet[..., 2] - _REST
    vel = np.zeros(feet.shape[:2])
    vel[1:] = np.linalg.norm(feet[1:, :, :2] - feet[:-1, :, :2], axis=-1) * fps
    vel[0] = vel[1] if len(vel) > 1 else 0
    skating = []
    for side in ((0, 1), (2, 3)):
        low = h[:, side].min(axis=1) < 0.05
        fast = vel[:, side].max(axis=1) > 0.5
        skating.append(low & fast)
    skate = float(np.mean(skating))
    pen = float(np.clip(-h.min(axis=1), 0, None).mean())
    jerk = np.diff(positions, n=3, axis=0) * fps ** 3 if len(positions) > 3 else np.zeros((1, 22, 3))
    return {"skate": skate, "penetration": pen, "jitter": float(np.linalg.norm(jerk, axis=-1).mean())}
