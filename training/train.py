"""Train the denoiser. Resumes from its last checkpoint; CPU by default, CUDA (bf16) when present.

    python -m training.train --run base --minutes 90              # train (resumes if the run exists)
    python -m training.train --run base --export assets/models/marionette-base   # write the shipped folder

The same command runs unchanged on a GPU machine. Checkpoints and logs go to .cache/runs/<run>/.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from inference.generation import representation as rep
from inference.generation.diffusion import Diffusion
from inference.generation.model import Denoiser, ModelConfig
from inference.generation.sampler import ALTERNATION_KERNEL
from inference.body.skeleton import canonical_forward_kinematics_torch

from . import build_dataset, reader
from .masks import random_mask

REPO = Path(__file__).resolve().parent.parent
FOOT = rep.FOOT_INDEX


def runs_dir() -> Path:
    return Path(os.environ.get("MARIONETTE_CACHE", REPO / ".cache")) / "runs"


class WindowSampler:
    """Random training windows (quaternions + root, any length up to max_frames) from one split."""

    def __init__(self, meta, rotations, root, text_emb, split: str = "train", seed: int = 0, balance: float = 0.0,
                 clip_cap: int = 160):
        """clip_cap: a clip's share grows with its length up to this many frames (0: no cap, every
        training frame equally likely). At 160, the long CMU takes (salsa, 550-1,000 frames) were 2.9 %
        of the windows while they hold 7.3 % of the training frames.
        balance: each clip's share is divided by (frames of its content)^balance (0: by length only;
        1: every content equally often). The Bandai-Namco contents are very uneven: walks, runs, raised
        and waving hands have 19,000-29,000 training frames each, sidesteps, dashes, bows and goodbyes
        600-1,400, so at 0 a sidestep is one window in 250."""
        self.meta, self.rot, self.root, self.emb = meta, rotations, root, text_emb
        self.clips = [c for c in meta["clips"] if c["split"] == split and c["length"] >= 10]
        lengths = np.array([c["length"] for c in self.clips], dtype=np.float64)
        w = np.minimum(lengths, clip_cap) if clip_cap else lengths.copy()
        if balance:
            groups = [c["content"] or "" for c in self.clips]  # CMU takes (no content label) are one group
            frames: dict[str, float] = {}
            for g, n in zip(groups, lengths):
                frames[g] = frames.get(g, 0.0) + n
            w = w * np.array([frames[g] for g in groups]) ** -balance
        self.p = w / w.sum()
        self.rng = np.random.default_rng(seed)
        self.fps = meta["fps"]

    def batch(self, size: int, length: int):
        idx = self.rng.choice(len(self.clips), size=size, p=self.p)
        rot = np.zeros((size, length, 22, 4), np.float32)
        rot[..., 0] = 1
        root = np.zeros((size, length, 3), np.float32)
        valid = np.zeros((size, length), bool)
        text_ids = []
        for b, i in enumerate(idx):
            c = self.clips[i]
            n = min(length, c["length"])
            s = c["start"] + int(self.rng.integers(0, c["length"] - n + 1))
            rot[b, :n] = self.rot[s : s + n]
            root[b, :n] = self.root[s : s + n]
            # pad by holding the last frame (padding is masked out of attention and loss anyway)
            rot[b, n:] = rot[b, n - 1]
            root[b, n:] = root[b, n - 1]
            valid[b, :n] = True
            text_ids.append(int(self.rng.choice(c["texts"])))
        return torch.from_numpy(rot), torch.from_numpy(root), torch.from_numpy(valid), self.emb[text_ids]

    def window(self, length: int):
        """One window of exactly `length` frames from a clip at least that long, with one of its
        sentences: (rotations, root, text embedding), or None if no clip is long enough."""
        for _ in range(20):
            c = self.clips[int(self.rng.choice(len(self.clips), p=self.p))]
            if c["length"] >= length:
                s = c["start"] + int(self.rng.integers(0, c["length"] - length + 1))
                return (torch.from_numpy(np.array(self.rot[s:s + length], np.float32)),
                        torch.from_numpy(np.array(self.root[s:s + length], np.float32)),
                        self.emb[int(self.rng.choice(c["texts"]))])
        return None


MIX_KEPT = ("lower_body", "upper_body", "left_arm", "right_arm")
"""Which part a composed window keeps from its first clip (the rest comes from the second)."""


def part_mix(q, r, text, n: int, other, kept: str):
    """A window composed as an animator's part edit asks: `kept` from this clip (known to the model),
    every other joint from `other`, a window of another clip, whose sentence becomes the text. Local
    rotations compose (SINC-style): the other clip's arms ride on this clip's spine. Where the lower
    body is not kept, the pelvis, legs and root path all come from the other clip. Returns the new
    (rotations, root, text, mask); the mask keeps `kept` over the whole window.

    On natural clips the kept part predicts the rest (a walk's legs imply its arm swing), so a model
    trained only on them follows the kept part and ignores the prompt; these windows teach it that the
    free part follows the text.
    """
    from inference.body.skeleton import BODY_PART_BY_NAME, JOINT_NAMES
    from inference.generation.constraints import body_part_mask

    oq, orr, otext = other
    part = BODY_PART_BY_NAME[kept]
    take = [i for i, j in enumerate(JOINT_NAMES) if j not in part.joints]
    q, r = q.clone(), r.clone()
    q[:n, take] = oq[:, take]
    if not part.root_translation:
        # the other clip's path, started where this one starts (same heading: the pelvis came along)
        ground = torch.tensor([1.0, 1.0, 0.0])  # x, y on the ground, z up
        r[:n] = orr - orr[:1] * ground + r[:1] * ground
        r[n:] = r[n - 1]
    q[n:] = q[n - 1]
    mask = torch.from_numpy(body_part_mask(n, [kept], keep=True).astype(np.float32))
    return q, r, otext, mask


class Batches(torch.utils.data.IterableDataset):
    """Endless training batches (rotations, root, valid, text, mask) built on the CPU, so that on a
    GPU machine several worker processes can keep the accelerator busy."""

    def __init__(self, sampler: WindowSampler, batch: int, min_frames: int, max_frames: int, text_dropout: float,
                 seed: int, mix: float = 0.0):
        self.sampler, self.batch = sampler, batch
        self.min_frames, self.max_frames, self.text_dropout, self.seed = min_frames, max_frames, text_dropout, seed
        self.mix = mix

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        seed = self.seed + (0 if info is None else 7919 * (info.id + 1))
        rng = random.Random(seed)
        self.sampler.rng = np.random.default_rng(seed)
        while True:
            length = rng.randint(self.min_frames, self.max_frames)
            q, r, valid, text = self.sampler.batch(self.batch, length)
            masks = []
            for b, n in enumerate(valid.sum(1).tolist()):
                other = self.sampler.window(int(n)) if self.mix and rng.random() < self.mix else None
                if other is None:
                    masks.append(random_mask(int(n), rng))
                else:
                    q[b], r[b], text[b], m = part_mix(q[b], r[b], text[b], int(n), other, rng.choice(MIX_KEPT))
                    masks.append(m)
            drop = torch.rand(text.shape[0], generator=torch.Generator().manual_seed(rng.getrandbits(31))) \
                < self.text_dropout
            text = torch.where(drop[:, None], torch.zeros_like(text), text)
            mask = torch.stack([F.pad(m, (0, 0, 0, length - m.shape[0])) for m in masks])
            yield q, r, valid, text, mask * valid[..., None]


def warm_start(model: Denoiser, folder: Path) -> list[str]:
    """Copy every weight of a model folder whose name and shape match (statistics excluded: they come
    from the data); returns the names that were left at their fresh values."""
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}
    old_patch = json.loads((Path(folder) / "config.json").read_text()).get("patch", 1)
    if old_patch != model.config.patch and model.config.patch == 1:
        # From tokens of several frames to one frame a token: a frame's input is what the old
        # layer gave a token of equal frames, its output the mean of the old per-frame read-outs,
        # and each frame takes its old token's position.
        w = state["input.weight"]
        state["input.weight"] = w.reshape(w.shape[0], old_patch, -1).sum(1)
        w, b = state["output.weight"], state["output.bias"]
        state["output.weight"] = w.reshape(old_patch, -1, w.shape[1]).mean(0)
        state["output.bias"] = b.reshape(old_patch, -1).mean(0)
        pos = state["pos"]
        frames = torch.arange(model.pos.shape[1] - 1) // old_patch
        state["pos"] = torch.cat([pos[:, :1], pos[:, 1 + frames.clamp(max=pos.shape[1] - 2)]], dim=1)
    own = model.state_dict()
    fresh = []
    for k, v in own.items():
        if k in state and state[k].shape == v.shape and k not in ("mean", "std"):
            own[k] = state[k]
        else:
            fresh.append(k)
    # Blocks the old model did not have (a deeper model) start as the identity: the blocks are
    # pre-norm, so with the attention's and feed-forward's output layers at zero each new block
    # passes its input through, and the deeper model starts exactly where the old one was.
    new_blocks = {k.split(".")[1] for k in own if k.startswith("blocks.")} - {
        k.split(".")[1] for k in state if k.startswith("blocks.")}
    for i in new_blocks:
        for layer in ("proj", "ff2"):
            own[f"blocks.{i}.{layer}.weight"].zero_()
            own[f"blocks.{i}.{layer}.bias"].zero_()
    model.load_state_dict(own)
    return fresh


def feature_stats(sampler: WindowSampler, n: int = 4000, length: int = 120):
    rot, root, valid, _ = sampler.batch(n, length)
    feats = rep.encode(rot, root, sampler.fps)[valid]
    mean, std = feats.mean(0), feats.std(0)
    return mean, std.clamp_min(1e-2)


ROOT_WEIGHT = 4.0
"""The root's columns count this much more in the feature loss: an absolute root normalised by its
spread over whole windows makes a 30 cm miss cheap otherwise, and keys are missed by the root."""


def losses(model, diffusion, x0, t, text, known, mask, valid, mean, std, fps, geo_weight=1.0, smooth_weight=1.0,
           tremor_weight=0.0):
    """Denoising losses on the clean-motion prediction.

    x0: features (normalised, MSE; root columns weighted), joint positions (m), and the motion's
    first and second differences in time, in normalised features and in joint positions: an error
    that alternates between even and odd frames (tremor) costs 4x and 16x more there than a slow one,
    so the model is taught to leave none. Frames are weighted by `key_distance_weights`: free frames
    next to known ones, where the motion must arrive at a key, count most. `tremor_weight`: see
    `tremor_excess`.
    """
    noise = torch.randn_like(x0)
    x_t = diffusion.q_sample(x0, t, noise)
    pred = model(x_t, t, text, known, mask, valid).float()
    with torch.autocast(x0.device.type, enabled=False):  # differences of positions need float32
        return _losses(pred, x0, mask, valid, mean, std, geo_weight, smooth_weight, tremor_weight)


TREMOR_KERNEL = ALTERNATION_KERNEL
"""Binomial weights (1, 4, 6, 4, 1) over which `tremor_excess` averages a joint's even/odd alternation:
the sampler's (`sampler.without_alternation`), so training charges the alternation the sampler drops."""


def tremor_excess(p_pos: torch.Tensor, t_pos: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """How much more the estimate's joints alternate between even and odd frames than the real motion's.

    A joint's second difference times (-1)^n, averaged over five frames with binomial weights, is four
    times the amplitude of an alternation that lasts, while motion at 5 Hz keeps an eighth of its
    size and a 2-Hz wave under 1 % (a one-frame bend or a swing averages out). Only the estimate's
    excess over the target's is charged, in (cm/frame^2)^2 per joint, so real fast motion costs
    nothing. The other losses charge a lasting 1-cm wrist tremor about 0.03 in all (this: 0.7); at
    mid noise the denoiser lets the noise's frame-rate part through for fast gestures (waves), and
    the sampler carries it into the next step."""
    k = torch.tensor(TREMOR_KERNEL, device=p_pos.device, dtype=p_pos.dtype)
    k = k / k.sum()
    n = len(TREMOR_KERNEL)

    def alternation(p):
        a = p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]  # (B, T-2, J, 3)
        sign = (1 - 2 * (torch.arange(a.shape[1], device=p.device) % 2)).to(p.dtype)
        a = a * sign[None, :, None, None]
        m = a.shape[1] - n + 1
        return sum(k[i] * a[:, i:i + m] for i in range(n))  # (B, T-1-n, J, 3)

    ap, at = alternation(p_pos / 0.01), alternation(t_pos / 0.01)
    wk = w
    for _ in range(n + 1):  # a window reads n + 2 frames: all of them real
        wk = torch.minimum(wk[:, 1:], wk[:, :-1])
    excess = ((ap ** 2).sum(-1) - (at ** 2).sum(-1)).clamp_min(0)  # (B, T', J)
    return (excess * wk[..., None]).sum() / (wk.sum() * excess.shape[-1]).clamp_min(1)


def _losses(pred, x0, mask, valid, mean, std, geo_weight, smooth_weight, tremor_weight=0.0):
    from .masks import key_distance_weights

    w = key_distance_weights(mask, valid.to(x0.dtype))  # (B, T), 0 on padding
    col = torch.ones(x0.shape[-1], device=x0.device, dtype=x0.dtype)
    col[rep.ROOT] = ROOT_WEIGHT
    denom = w.sum() * col.sum()
    out = {"x0": (((pred - x0) ** 2) * col * w[..., None]).sum() / denom}
    w1 = torch.minimum(w[:, 1:], w[:, :-1])
    w2 = torch.minimum(w1[:, 1:], w1[:, :-1])
    d1p, d1t = pred[:, 1:] - pred[:, :-1], x0[:, 1:] - x0[:, :-1]
    d2p, d2t = d1p[:, 1:] - d1p[:, :-1], d1t[:, 1:] - d1t[:, :-1]
    out["fvel"] = (((d1p - d1t) ** 2) * col * w1[..., None]).sum() / (w1.sum() * col.sum()).clamp_min(1)
    out["facc"] = (((d2p - d2t) ** 2) * col * w2[..., None]).sum() / (w2.sum() * col.sum()).clamp_min(1)
    pm, tm = pred * std + mean, x0 * std + mean
    p_rot, p_root = rep.decode_rotmats(pm)
    t_rot, t_root = rep.decode_rotmats(tm)
    p_pos = canonical_forward_kinematics_torch(p_rot, p_root)
    t_pos = canonical_forward_kinematics_torch(t_rot, t_root)
    nj = p_pos.shape[-2] * 3
    # positions in units of 10 cm, velocities in 1 cm/frame, accelerations in 1 cm/frame^2: errors of
    # those sizes weigh about as much as a one-sigma feature error
    out["pos"] = ((((p_pos - t_pos) / 0.1) ** 2) * w[..., None, None]).sum() / (w.sum() * nj)
    p_vel, t_vel = p_pos[:, 1:] - p_pos[:, :-1], t_pos[:, 1:] - t_pos[:, :-1]
    out["vel"] = ((((p_vel - t_vel) / 0.01) ** 2) * w1[..., None, None]).sum() / (w1.sum() * nj).clamp_min(1)
    p_acc, t_acc = p_vel[:, 1:] - p_vel[:, :-1], t_vel[:, 1:] - t_vel[:, :-1]
    out["acc"] = ((((p_acc - t_acc) / 0.01) ** 2) * w2[..., None, None]).sum() / (w2.sum() * nj).clamp_min(1)
    contact = tm[:, 1:, rep.CONTACT].clamp(0, 1) * (w1 > 0)[..., None]
    foot_v = p_vel[:, :, FOOT] / 0.01
    out["foot"] = ((foot_v ** 2).sum(-1) * contact).sum() / contact.sum().clamp_min(1)
    geo = 0.1 * out["pos"] + 0.1 * out["vel"] + 0.05 * out["acc"] + 0.02 * out["foot"]
    out["total"] = out["x0"] + smooth_weight * (out["fvel"] + out["facc"]) + geo_weight * geo
    if tremor_weight:
        out["tremor"] = tremor_excess(p_pos, t_pos, w)
        out["total"] = out["total"] + tremor_weight * out["tremor"]
    else:  # logged only: kept out of the backward pass
        with torch.no_grad():
            out["tremor"] = tremor_excess(p_pos, t_pos, w)
    return out


def draw_steps(batch: int, steps: int, low_noise: float = 0.0, device="cpu") -> torch.Tensor:
    """Each window's diffusion step: uniform over the schedule, but a `low_noise` share of the batch
    from its nearly clean fifth, where the denoiser has to keep the detail it is given."""
    t = torch.randint(0, steps, (batch,), device=device)
    k = int(round(low_noise * batch))
    if k:
        t[:k] = torch.randint(0, steps // 5, (k,), device=device)
    return t


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def train(args) -> Path:
    run = runs_dir() / args.run
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "ckpt.pt"
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    meta, rot, root, emb = build_dataset.load(args.data)
    emb = torch.from_numpy(emb)
    sampler = WindowSampler(meta, np.asarray(rot), np.asarray(root), emb, "train", args.seed, args.balance,
                            args.clip_cap)

    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        config = ModelConfig.from_dict(ck["config"])
        model = Denoiser(config)
        model.load_state_dict(ck["model"])
        ema = Denoiser(config)
        ema.load_state_dict(ck["ema"])
        state = ck["state"]
        print(f"resuming {run} at step {state['step']}", flush=True)
    else:
        config = ModelConfig(width=args.width, layers=args.layers, heads=args.heads, fps=meta["fps"],
                             window_frames=args.max_frames, min_frames=args.min_frames, patch=args.patch,
                             skip=args.skip)
        model = Denoiser(config)
        if args.init:
            fresh = warm_start(model, args.init)
            print(f"warm start from {args.init}; fresh: {', '.join(fresh) or 'nothing'}", flush=True)
        mean, std = feature_stats(sampler)
        model.mean.copy_(mean)
        model.std.copy_(std)
        ema = copy.deepcopy(model)
        state = dict(step=0, seconds=0.0, hardware=[], data=dict(exclude_content=meta["exclude_content"],
                     exclude_style=meta["exclude_style"], fps=meta["fps"]),
                     args=vars(args) | {"data": str(args.data), "init": str(args.init) if args.init else None},
                     sittings=[])
        ck = None
    model.to(device).train()
    ema.to(device).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    if ck is not None and "opt" in ck:
        opt.load_state_dict(ck["opt"])
        sampler.rng = np.random.default_rng(args.seed + state["step"])
    diffusion = Diffusion(config.diffusion_steps)
    mean, std = model.mean.detach(), model.std.detach()
    hw = hardware()
    if hw not in state["hardware"]:
        state["hardware"].append(hw)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model {n_params / 1e6:.2f} M parameters on {hw}", flush=True)
    log = open(run / "log.jsonl", "a")
    amp = device.type == "cuda"
    batches = Batches(sampler, args.batch, args.min_frames, args.max_frames, args.text_dropout,
                      args.seed + state["step"], args.part_mix)
    loader = iter(torch.utils.data.DataLoader(batches, batch_size=None, num_workers=args.workers,
                                              persistent_workers=args.workers > 0,
                                              prefetch_factor=4 if args.workers else None))
    sitting = dict(start_step=state["step"], hardware=hw, batch=args.batch, lr=args.lr, decay=args.decay,
                   part_mix=args.part_mix, smooth_weight=args.smooth_weight, balance=args.balance,
                   clip_cap=args.clip_cap, tremor_weight=args.tremor_weight, low_noise=args.low_noise)
    state.setdefault("sittings", []).append(sitting)

    def save():
        torch.save(dict(config=asdict(config), model=model.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(),
                        state=state), run / "ckpt.tmp")
        os.replace(run / "ckpt.tmp", ckpt_path)

    t_start = time.time()
    t_last_save = t_start
    t_step = time.time()
    running: dict[str, float] = {}
    while True:
        elapsed = time.time() - t_start
        if args.minutes and elapsed > args.minutes * 60:
            break
        if args.steps and state["step"] >= args.steps:
            break
        step = state["step"]
        lr = args.lr * min(1.0, (step + 1) / 500)
        if args.decay and args.minutes:  # anneal linearly to lr/10 over this run (a final polishing run)
            lr *= 1.0 - 0.9 * min(1.0, elapsed / (args.minutes * 60))
        for g in opt.param_groups:
            g["lr"] = lr
        q, r, valid, text, mask = next(loader)
        with torch.no_grad():
            x0 = (rep.encode(q.to(device), r.to(device), sampler.fps) - mean) / std
            valid, text, mask = valid.to(device), text.to(device), mask.to(device)
            t = draw_steps(args.batch, diffusion.steps, args.low_noise, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = losses(model, diffusion, x0, t, text, x0, mask, valid, mean, std, sampler.fps, args.geo_weight,
                         args.smooth_weight, args.tremor_weight)
        opt.zero_grad(set_to_none=True)
        out["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        state["step"] += 1
        now = time.time()
        state["seconds"] += now - t_step
        t_step = now
        for k, v in out.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if state["step"] % args.log_every == 0:
            avg = {k: round(v / args.log_every, 5) for k, v in running.items()}
            running = {}
            rec = dict(step=state["step"], hours=round(state["seconds"] / 3600, 3), lr=lr, **avg)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
        if now - t_last_save > args.save_minutes * 60:
            save()
            t_last_save = now
    sitting.update(end_step=state["step"], hours=round((time.time() - t_start) / 3600, 3))
    save()
    print(f"saved {ckpt_path} at step {state['step']} ({state['seconds'] / 3600:.2f} h)", flush=True)
    return ckpt_path


def export(run_name: str, folder: Path, weights: str = "ema", defaults: dict | None = None) -> Path:
    """Write the EMA (or raw) weights (fp16) + config.json + training.json + vocabulary + prompt reader to `folder`.

    defaults: sampling defaults for config.json (e.g. smoothing chosen on the validation split).
    """
    ck = torch.load(runs_dir() / run_name / "ckpt.pt", map_location="cpu", weights_only=False)
    config = ModelConfig.from_dict(dict(ck["config"], **(defaults or {})))
    model = Denoiser(config)
    model.load_state_dict(ck[weights])
    st = ck["state"]
    model.save(folder)
    write_vocabulary(Path(folder), Path(st["args"]["data"]))
    reader.write(Path(folder), Path(st["args"]["data"]))
    info = dict(run=run_name, weights=weights, steps=st["step"], hours=round(st["seconds"] / 3600, 3), hardware=st["hardware"],
                data=st["data"], first_sitting_args=st["args"], sittings=st.get("sittings", []),
                parameters=sum(p.numel() for p in model.parameters()))
    (Path(folder) / "training.json").write_text(json.dumps(info, indent=1))
    size = (Path(folder) / "model.safetensors").stat().st_size / 2**20
    print(f"exported {folder}: {info['steps']} steps, {info['hours']} h, {size:.1f} MiB")
    return Path(folder)


def write_vocabulary(folder: Path, data: Path) -> None:
    """What the model was taught to say, for telling animators when a prompt is far from it:
    one sentence per Bandai-Namco (content, style) pair and every CMU caption of the training split."""
    meta, _, _, emb = build_dataset.load(data)
    chosen: dict[str, int] = {}
    for c in meta["clips"]:
        if c["split"] != "train" or (c["mirrored"] and not c["content"]):
            continue
        if c["content"]:
            key = f"{c['content']}|{c['style']}"
            if key not in chosen:
                chosen[key] = c["texts"][0]
        else:
            for t in c["texts"]:
                chosen.setdefault(meta["texts"][t], t)
    ids = sorted(set(chosen.values()))
    (folder / "vocabulary.json").write_text(json.dumps([meta["texts"][i] for i in ids], indent=0))
    np.save(folder / "vocabulary.npy", emb[ids].astype(np.float16))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="base")
    ap.add_argument("--data", type=Path, default=None, help="dataset folder (default .cache/dataset)")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this many minutes (0 = no limit)")
    ap.add_argument("--steps", type=int, default=0, help="stop at this total step count (0 = no limit)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--min-frames", type=int, default=20)
    ap.add_argument("--max-frames", type=int, default=120)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--patch", type=int, default=1, help="frames per transformer token")
    ap.add_argument("--init", type=Path, default=None, help="new run: copy matching weights from this model folder")
    ap.add_argument("--workers", type=int, default=0, help="batch-building worker processes (GPU machines)")
    ap.add_argument("--smooth-weight", type=float, default=1.0, help="weight of the velocity/acceleration losses")
    ap.add_argument("--part-mix", type=float, default=0.0,
                    help="share of windows composed from two clips for part editing (see part_mix)")
    ap.add_argument("--tremor-weight", type=float, default=0.0,
                    help="weight of the loss on the estimate's even/odd alternation beyond the real motion's")
    ap.add_argument("--clip-cap", type=int, default=160,
                    help="a clip's sampling share grows with its length up to this many frames (0: no cap)")
    ap.add_argument("--balance", type=float, default=0.0,
                    help="divide each clip's share by its content's training frames to this power (0-1)")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--decay", action="store_true", help="anneal the learning rate to a tenth over --minutes")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--geo-weight", type=float, default=1.0)
    ap.add_argument("--skip", type=float, default=0.0,
                    help="new run: the estimate passes the noisy input through, scaled by the schedule, with "
                         "this data scale (ModelConfig.skip; 0: off); the network learns what to change")
    ap.add_argument("--low-noise", type=float, default=0.0,
                    help="share of each batch whose diffusion step is drawn from the lowest fifth of the schedule "
                         "(nearly clean windows, where the denoiser must keep the detail it is given)")
    ap.add_argument("--text-dropout", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--save-minutes", type=float, default=5)
    ap.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    ap.add_argument("--export", type=Path, default=None, help="export the run's weights to this folder and exit")
    ap.add_argument("--weights", choices=["ema", "model"], default="ema", help="which weights --export writes")
    ap.add_argument("--smoothing", type=float, default=None, help="with --export: default output smoothing (frames)")
    args = ap.parse_args(argv)
    if args.data is None:
        args.data = build_dataset.default_dir()
    if args.export:
        export(args.run, args.export, args.weights,
               {} if args.smoothing is None else {"smoothing": args.smoothing})
        return 0
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
