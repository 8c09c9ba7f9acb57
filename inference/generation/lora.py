"""Low-rank adapters (LoRA) for the denoiser's `LoRALinear` layers, as explicit functions.

An `Adapter` is a named set of (down, up) pairs, one per adapted layer, kept outside the model:
`attach` wraps the layers with it at a strength, `detach` takes it off, `merge`/`unmerge` fold it
into the weights and back, `save`/`load` write it as safetensors. The up-projection starts at zero,
so a fresh adapter changes nothing. Several adapters can be attached at once (style mixing).

An adapter may also carry a `shift` of the model's condition vector (`model.CondShift`): the style's
own "word", learned with it (DreamBooth/LoRA-MDM bind a style to a rare token in the prompt; this
model reads whole-sentence embeddings, so the token is a learned vector). The learner trains the
style clips with the shift and the prior clips without it, so the low-rank layers learn to answer
the shift with the style and leave everything else as the base model makes it. It scales with the
adapter's strength like the rest.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .model import Denoiser, LoRALinear, ModelError

TARGETS = ("qkv", "proj", "ff1", "ff2")
"""Adapted layers in every transformer block: attention in/out and the feed-forward pair."""
FORMAT = "marionette-lora"
SHIFT_KEY = "cond_shift"
"""The condition shift's tensor name in an adapter file (float32; absent in adapters without one)."""


@dataclass
class Adapter:
    name: str
    rank: int
    alpha: float
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    """Layer name (as in `Denoiser.lora_layers`) -> (down (rank, in), up (out, rank))."""
    shift: torch.Tensor | None = field(default=None, repr=False)
    """(width,) shift of the condition vector while the adapter is attached, or None."""

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def parameters(self) -> list[torch.Tensor]:
        return [t for pair in self.weights.values() for t in pair] + ([self.shift] if self.shift is not None else [])

    def num_parameters(self) -> int:
        return sum(t.numel() for t in self.parameters())


def _layers(model: Denoiser) -> dict[str, LoRALinear]:
    return dict(model.lora_layers())


def create(model: Denoiser, name: str, rank: int = 8, alpha: float | None = None,
           targets: Iterable[str] = TARGETS, seed: int = 0) -> Adapter:
    """A fresh adapter for `model`: random down-projections (seeded), zero up-projections."""
    if rank < 1:
        raise ValueError(f"An adapter's rank must be at least 1; got {rank}.")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    targets = tuple(targets)
    weights = {}
    for lname, layer in _layers(model).items():
        if lname.rsplit(".", 1)[-1] not in targets:
            continue
        down = torch.randn(rank, layer.in_features, generator=gen) / math.sqrt(layer.in_features)
        up = torch.zeros(layer.out_features, rank)
        weights[lname] = (down.to(layer.weight.device), up.to(layer.weight.device))
    return Adapter(name, int(rank), float(alpha or rank), weights)


def _check(model: Denoiser, adapter: Adapter) -> dict[str, LoRALinear]:
    layers = _layers(model)
    if adapter.shift is not None and tuple(adapter.shift.shape) != (model.config.width,):
        raise ModelError(f"The adapter '{adapter.name}' was made for a model of another shape "
                         f"(condition width {adapter.shift.shape[-1]}); learn it again on this model.")
    for lname, (down, up) in adapter.weights.items():
        layer = layers.get(lname)
        if layer is None or down.shape[1] != layer.in_features or up.shape[0] != layer.out_features:
            raise ModelError(f"The adapter '{adapter.name}' was made for a model of another shape "
                             f"(layer {lname}); learn it again on this model.")
    return layers


def attach(model: Denoiser, adapter: Adapter, strength: float = 1.0, shift: float | None = None) -> None:
    """Wrap the model's layers with `adapter` at `strength` (0 = no effect, 1 = as learned).
    shift: the strength of its condition shift, when not `strength` (the learner trains the prior
    clips with the low-rank layers on and the shift off)."""
    layers = _check(model, adapter)
    if adapter.name in model.cond_shift.merged:
        raise ModelError(f"The adapter '{adapter.name}' is merged into the model; unmerge it first.")
    if adapter.shift is not None:
        model.cond_shift.adapters[adapter.name] = (adapter.shift.to(model.text_proj.weight.device),
                                                   float(strength if shift is None else shift))
    for lname, (down, up) in adapter.weights.items():
        layer = layers[lname]
        if adapter.name in layer.merged:
            raise ModelError(f"The adapter '{adapter.name}' is merged into the model; unmerge it first.")
        layer.adapters[adapter.name] = (down.to(layer.weight.device), up.to(layer.weight.device),
                                        adapter.scale * float(strength))


def set_strength(model: Denoiser, adapter: Adapter, strength: float) -> None:
    """Change an attached adapter's strength."""
    attach(model, adapter, strength)


def detach(model: Denoiser, name: str) -> None:
    """Take an attached (unmerged) adapter off every layer."""
    for _, layer in model.lora_layers():
        layer.adapters.pop(name, None)
    model.cond_shift.adapters.pop(name, None)


def attached(model: Denoiser) -> list[str]:
    """Names of the adapters attached and not merged."""
    return sorted({n for _, layer in model.lora_layers() for n in layer.adapters} | set(model.cond_shift.adapters))


def merge(model: Denoiser, name: str) -> None:
    """Fold an attached adapter (at its strength) into the base weights."""
    for _, layer in model.lora_layers():
        if name in layer.adapters:
            layer.merge_adapter(name)
    if name in model.cond_shift.adapters:
        shift, strength = model.cond_shift.adapters.pop(name)
        model.cond_shift.merged[name] = (strength * shift).detach()


def unmerge(model: Denoiser, name: str) -> None:
    """Take a merged adapter out of the weights (the base weights return exactly); it is detached."""
    for _, layer in model.lora_layers():
        if name in layer.merged:
            layer.unmerge_adapter(name)
    model.cond_shift.merged.pop(name, None)


@contextmanager
def applied(model: Denoiser, adapters: Sequence[tuple[Adapter, float]]):
    """Adapters attached at their strengths for the duration of a block, then detached (even on error).

    Hold the model's lock around it when the model is shared between threads."""
    try:
        for adapter, strength in adapters:
            attach(model, adapter, strength)
        yield model
    finally:
        for adapter, _ in adapters:
            detach(model, adapter.name)


# ------------------------------------------------------------------------------------- file
def tensors(adapter: Adapter, half: bool = True) -> dict[str, torch.Tensor]:
    dt = torch.float16 if half else torch.float32
    out = {}
    for lname, (down, up) in adapter.weights.items():
        out[f"{lname}.down"] = down.detach().to("cpu", dt).contiguous()
        out[f"{lname}.up"] = up.detach().to("cpu", dt).contiguous()
    if adapter.shift is not None:
        out[SHIFT_KEY] = adapter.shift.detach().to("cpu", torch.float32).contiguous()
    return out


def save(adapter: Adapter, path: str | Path, metadata: dict | None = None, half: bool = True) -> None:
    """Write the adapter as safetensors; `metadata` (JSON-ready) is stored in the file's header."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "name": adapter.name, "rank": str(adapter.rank), "alpha": repr(adapter.alpha),
            "card": json.dumps(metadata or {}, sort_keys=True)}
    save_file(tensors(adapter, half), str(path), metadata=meta)


def load(path: str | Path) -> tuple[Adapter, dict]:
    """(adapter in float32, card) from a file written by `save`; ValueError if it is not one."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError("not a Marionette adapter file")
        names = list(f.keys())
        raw = {k: f.get_tensor(k).float() for k in names}
    weights = {}
    for k in names:
        if k.endswith(".down"):
            lname = k[: -len(".down")]
            if f"{lname}.up" not in raw:
                raise ValueError(f"layer {lname} has no up-projection")
            weights[lname] = (raw[k], raw[f"{lname}.up"])
    shift = raw.get(SHIFT_KEY)
    if shift is not None and shift.dim() != 1:
        raise ValueError("its condition shift is not a vector")
    rank = int(meta["rank"])
    if any(d.shape[0] != rank or u.shape[1] != rank for d, u in weights.values()):
        raise ValueError("its tensors do not match its rank")
    if not weights and shift is None:
        raise ValueError("it holds neither low-rank layers nor a condition shift")
    return (Adapter(meta.get("name", Path(path).stem), rank, float(meta["alpha"]), weights, shift),
            json.loads(meta["card"]))
