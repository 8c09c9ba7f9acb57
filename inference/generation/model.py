"""The denoiser: a small transformer that predicts the clean motion from a noisy one (MDM-style),
conditioned on a sentence embedding, the diffusion step, and known values + a mask (CondMDI-style).

Every linear layer inside the transformer is a `LoRALinear`, so style adapters (`lora.py`) attach
without touching the base weights.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..body.motion import MotionError
from .representation import NUM_FEATURES
from .text import EMBED_DIM


class ModelError(MotionError):
    """Weights or a model folder that cannot be used; the message says what to do."""


@dataclass
class ModelConfig:
    features: int = NUM_FEATURES
    width: int = 256
    layers: int = 6
    heads: int = 4
    ff_mult: int = 3
    dropout: float = 0.1
    text_dim: int = EMBED_DIM
    max_frames: int = 400
    window_frames: int = 120
    """Longest window seen in training; longer clips are generated as overlapping windows."""
    min_frames: int = 40
    """Shortest window seen in training; shorter requests are generated in a window this long."""
    patch: int = 2
    """Frames per transformer token. 2 halves the cost but reads two frames out of one token with
    one linear layer, which leaves even and odd frames disagreeing (a tremor at the frame rate)."""
    fps: float = 20.0
    diffusion_steps: int = 1000
    skip: float = 0.0
    """0: the network's output is the clean-motion estimate (the shipped weights). Above 0, the scale of
    the (normalised) data, and the estimate is EDM's preconditioned one (Karras et al. 2022): with
    s2 = (1 - abar_t) / abar_t the noise's variance and d this scale, the input x_t / sqrt(abar_t)
    times d^2 / (s2 + d^2) plus the network's output times sqrt(s2) d / sqrt(s2 + d^2). At low noise the
    input passes through and the network adds only what it changes; at d = 1 this is v-prediction's."""
    smoothing: float = 0.0
    foot_lock: bool = True
    """Pin planted feet (from the predicted contacts) with leg IK after sampling."""
    """Default temporal smoothing of the output (Gaussian sigma in frames), chosen on the validation split."""

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class LoRALinear(nn.Linear):
    """nn.Linear that low-rank adapters wrap: y = W x + b + sum over attached adapters of s * B(A x).

    The adapters' tensors live outside this module (`inference/lora.py` owns them), so the base
    weights and state-dict keys never change and a shared model can take per-request adapters;
    with none attached it is exactly nn.Linear. Merged adapters are folded into `weight` and
    unmerging restores the base weight bit for bit.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.adapters: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
        """Attached, unmerged adapters: name -> (down (r, in), up (out, r), scale x strength)."""
        self.merged: dict[str, torch.Tensor] = {}
        """Adapters folded into `weight`: name -> the delta added."""
        self._base_weight: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        for down, up, scale in self.adapters.values():
            if scale:
                y = y + scale * F.linear(F.linear(x, down), up)
        return y

    def merge_adapter(self, name: str) -> None:
        """Fold an attached adapter into the weight (faster inference; it stops tracking its tensors)."""
        down, up, scale = self.adapters.pop(name)
        if self._base_weight is None:
            self._base_weight = self.weight.detach().clone()
        delta = (scale * (up @ down)).detach().to(self.weight.dtype)
        self.merged[name] = delta
        with torch.no_grad():
            self.weight.add_(delta)

    def unmerge_adapter(self, name: str) -> torch.Tensor:
        """Take a merged adapter out of the weight; returns its delta. The base weight comes back exactly."""
        delta = self.merged.pop(name)
        with torch.no_grad():
            w = self._base_weight.clone()
            for d in self.merged.values():
                w += d
            self.weight.copy_(w)
        if not self.merged:
            self._base_weight = None
        return delta


class CondShift(nn.Module):
    """Where style adapters shift the condition vector (time + text), like a learned style word: the
    base model has none. `adapters`: name -> (shift (width,), strength); `merged`: name -> shift
    already scaled. No parameters of its own, so the model's weights are unchanged by it."""

    def __init__(self):
        super().__init__()
        self.adapters: dict[str, tuple[torch.Tensor, float]] = {}
        self.merged: dict[str, torch.Tensor] = {}
        self.gate: torch.Tensor | None = None
        """(B,) per-row factor on every shift, or None (all rows shifted): guidance leaves the shift
        out of its unconditioned rows (`sampler.Guided`), so a style is guided like a word."""

    @property
    def active(self) -> bool:
        return any(strength for _, strength in self.adapters.values()) or bool(self.merged)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        gate = None if self.gate is None else self.gate.to(device=cond.device, dtype=cond.dtype)[:, None]
        for shift, strength in self.adapters.values():
            if strength:
                add = strength * shift.to(cond.dtype)
                cond = cond + (add if gate is None else gate * add)
        for shift in self.merged.values():
            add = shift.to(cond.dtype)
            cond = cond + (add if gate is None else gate * add)
        return cond


class Block(nn.Module):
    """Pre-norm transformer block (self-attention over the condition token and the frames)."""

    def __init__(self, width: int, heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = LoRALinear(width, 3 * width)
        self.proj = LoRALinear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ff1 = LoRALinear(width, ff_mult * width)
        self.ff2 = LoRALinear(ff_mult * width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)
        x = x + F.dropout(self.proj(a.transpose(1, 2).reshape(b, n, w)), p, self.training)
        h = self.ff2(F.dropout(F.gelu(self.ff1(self.norm2(x))), p, self.training))
        return x + F.dropout(h, p, self.training)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Denoiser(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.input = nn.Linear(3 * c.features * c.patch, c.width)
        self.pos = nn.Parameter(torch.zeros(1, -(-c.max_frames // c.patch) + 1, c.width))
        nn.init.normal_(self.pos, std=0.02)
        self.time_mlp = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        self.text_proj = nn.Linear(c.text_dim, c.width)
        self.cond_shift = CondShift()
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.ff_mult, c.dropout) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.width)
        self.output = nn.Linear(c.width, c.features * c.patch)
        # Statistics of the features, set from the training data; part of the weights.
        self.register_buffer("mean", torch.zeros(c.features))
        self.register_buffer("std", torch.ones(c.features))
        if c.skip:
            from .diffusion import cosine_alphas_cumprod

            self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(c.diffusion_steps).float(), persistent=False)

    def forward(self, x_t, t, text, known, mask, frame_mask=None):
        """Predict the clean (normalised) motion.

        x_t: (B, T, F) noisy motion; t: (B,) diffusion step; text: (B, 384) sentence embedding (zeros =
        no text); known: (B, T, F) known normalised values (anything where mask is 0); mask: (B, T, F)
        1 where the value is known; frame_mask: (B, T) bool, True on real frames (False = padding).
        """
        b, n, _ = x_t.shape
        if n > self.config.max_frames:
            raise ModelError(f"At most {self.config.max_frames} frames can be generated at once; asked for {n}.")
        p = self.config.patch
        pad = (-n) % p
        cond = self.cond_shift(self.time_mlp(timestep_embedding(t, self.config.width)) + self.text_proj(text))
        inp = torch.cat([x_t, known * mask, mask], dim=-1)
        if pad:
            inp = F.pad(inp, (0, 0, 0, pad))
        tokens = (n + pad) // p
        h = self.input(inp.reshape(b, tokens, p * inp.shape[-1])) + cond[:, None]
        h = torch.cat([cond[:, None], h], dim=1) + self.pos[:, : tokens + 1]
        attn = None
        if frame_mask is not None and not bool(frame_mask.all()):
            fm = F.pad(frame_mask, (0, pad)).reshape(b, tokens, p).any(-1)
            keep = torch.cat([torch.ones_like(fm[:, :1]), fm], dim=1)
            attn = keep[:, None, None, :]
        for blk in self.blocks:
            h = blk(h, attn)
        out = self.output(self.norm(h[:, 1:])).reshape(b, tokens * p, -1)[:, :n]
        if self.config.skip:
            a = self.alphas_cumprod[t].view(-1, 1, 1)  # float32 whatever the autocast: abar_t is near 1 at low noise
            s2, d2 = (1 - a) / a, float(self.config.skip) ** 2
            out = (x_t.float() / a.sqrt() * (d2 / (s2 + d2)) + out.float() * (s2 * d2 / (s2 + d2)).sqrt()).to(out.dtype)
        return out

    def lora_layers(self) -> list[tuple[str, LoRALinear]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, LoRALinear)]

    # ------------------------------------------------------------------ saving and loading
    def save(self, folder: str | Path, extra: dict | None = None, half: bool = True) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: (v.half() if half and v.is_floating_point() and k not in ("mean", "std") else v).contiguous()
                 for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "marionette-denoiser"})
        cfg = dict(asdict(self.config), **(extra or {}))
        (folder / "config.json").write_text(json.dumps(cfg, indent=1))

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> "Denoiser":
        """Load a model folder (config.json + model.safetensors); a clear ModelError if anything is off."""
        folder = Path(folder)
        cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
        if not cfg_path.is_file() or not w_path.is_file():
            raise ModelError(f"No model in {folder}: it needs config.json and model.safetensors.")
        try:
            config = ModelConfig.from_dict(json.loads(cfg_path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{cfg_path} is not a valid model configuration: {exc}") from exc
        try:
            from safetensors.torch import load_file

            state = load_file(str(w_path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise ModelError(f"{w_path} is corrupt or not a safetensors file ({exc}). Reinstall the model.") from exc
        model = cls(config)
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
        if missing or extra or wrong:
            detail = "; ".join(x for x in (
                f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra else "",
                f"wrong shape {wrong[:3]}" if wrong else "") if x)
            raise ModelError(f"{w_path} does not match its config.json ({detail}).")
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return model.to(device).eval()
