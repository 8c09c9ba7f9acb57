"""What one Generate (or In-between, Edit Parts, Restyle) press asks of the runtime, and what it got.

A request carries everything a run needs, validated up front with messages the animator can act
on; a result records everything that was used (model included), so any take can be made again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import defaults
from ..body.motion import MotionError

if TYPE_CHECKING:  # torch-free at import: the panel side builds requests before the model loads
    from .constraints import Constraints

MAX_SECONDS = 20.0
"""Longest motion one request makes (the model chains windows past its training length)."""
MAX_VARIATIONS = 8
DEVICES = ("AUTO", "CPU", "GPU")


class RequestError(MotionError):
    """A request that cannot run; the message says what to change."""


@dataclass(frozen=True)
class Style:
    """A style preset (a LoRA adapter, `style.py`) applied at a strength; several mix."""

    name: str
    """The style preset's name."""
    strength: float = 1.0
    """0 = off, 1 = as learned, up to 1.5."""
    path: str = ""
    """The preset file (`<name>.safetensors`); empty: the shipped preset of that name."""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise RequestError("A style needs the name of a style preset.")
        if not 0.0 <= self.strength <= 1.5:
            raise RequestError(f"Style strength must be between 0 and 1.5; got {self.strength:g}.")


@dataclass(frozen=True)
class PostProcess:
    """What happens to the model's motion after sampling."""

    foot_lock: bool | None = None
    """Pin planted feet with leg IK in the runtime (None: the model's default from config.json)."""
    smoothing: float | None = None
    """Temporal smoothing in frames (None: the model's default)."""

    def __post_init__(self):
        if self.smoothing is not None and not 0.0 <= self.smoothing <= 10.0:
            raise RequestError(f"Smoothing must be between 0 and 10 frames; got {self.smoothing:g}.")


@dataclass(frozen=True)
class GenerationRequest:
    """One run: every variation of one prompt (and constraints) on one model."""

    prompt: str = ""
    """What the character should do, in plain words (may be empty when constraints say enough)."""
    seconds: float = 4.0
    """Length of the motion; with constraints, their reference clip's length wins."""
    scene_fps: float = 24.0
    """Frame rate of the scene the result is keyed into (the model runs at its own rate)."""
    seeds: tuple[int, ...] = (0,)
    """One seed per variation; the same seed gives the same motion."""
    steps: int = defaults.STEPS
    """Denoising steps."""
    guidance: float = defaults.GUIDANCE
    """Classifier-free guidance scale (1 = none; higher follows the words more closely)."""
    device: str = "AUTO"
    """AUTO (GPU when PyTorch has one), CPU or GPU."""
    model_dir: str = ""
    """Model folder; empty for the shipped model."""
    constraints: "Constraints | None" = None
    """Known values and where they hold (keys, kept parts, a root path); None for text only."""
    styles: tuple[Style, ...] = ()
    """Style presets to apply, each at its strength (several mix)."""
    post: PostProcess = field(default_factory=PostProcess)
    """Post-processing of the sampled motion."""
    read_prompt: bool = True
    """Give the model the prompt as the training sentence it reads as (`reader.PromptReader`); False:
    as written."""

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "styles", tuple(self.styles))
        if not isinstance(self.prompt, str):
            raise RequestError("The prompt must be text.")
        if not self.prompt.strip() and self.constraints is None:
            raise RequestError("Type a prompt: what should the character do?")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise RequestError(f"Duration must be more than 0 and at most {MAX_SECONDS:g} seconds; "
                               f"got {self.seconds:g}.")
        if not self.scene_fps > 0:
            raise RequestError(f"The scene's frame rate must be positive; got {self.scene_fps:g}. "
                               "Set it in Output Properties > Format.")
        if not 1 <= len(self.seeds) <= MAX_VARIATIONS:
            raise RequestError(f"Ask for 1 to {MAX_VARIATIONS} variations; got {len(self.seeds)}.")
        if any(int(s) != s or s < 0 for s in self.seeds):
            raise RequestError(f"Seeds must be whole numbers of 0 or more; got {list(self.seeds)}.")
        if not 1 <= self.steps <= 1000:
            raise RequestError(f"Steps must be between 1 and 1000; got {self.steps}.")
        if not 0.0 <= self.guidance <= 15.0:
            raise RequestError(f"Guidance must be between 0 and 15; got {self.guidance:g}.")
        if self.device.upper() not in DEVICES and ":" not in self.device:
            raise RequestError(f"Device must be one of {', '.join(DEVICES)}; got '{self.device}'.")
        if any(not isinstance(s, Style) for s in self.styles):
            raise RequestError("Styles must be given as Style(name, strength).")
        names = [s.name.strip().lower() for s in self.styles]
        if len(set(names)) != len(names):
            raise RequestError("A style is listed twice; give each active style once, with one strength.")

    def record(self) -> dict:
        """JSON-ready summary of what was asked (constraints as counts, not values)."""
        c = self.constraints
        return {
            "prompt": self.prompt, "seconds": self.seconds, "scene_fps": self.scene_fps, "seeds": list(self.seeds),
            "steps": self.steps, "guidance": self.guidance, "device": self.device,
            "styles": [[s.name, s.strength] for s in self.styles],
            "foot_lock": self.post.foot_lock, "smoothing": self.post.smoothing, "read_prompt": self.read_prompt,
            "constraints": None if c is None else {"frames": c.num_frames, "known_values": int(c.mask.sum())},
        }


@dataclass(frozen=True)
class GenerationResult:
    """Every take of one request, and what made them."""

    request: GenerationRequest
    takes: tuple = ()
    """`generate.Result` per seed, in the request's order (clip at the model's frame rate)."""
    model_name: str = ""
    """The model folder's name."""
    model_version: str = ""
    """The first 12 hex digits of the weights' SHA-256."""
    device: str = ""
    """The torch device that ran it."""
    foot_lock: bool = True
    """Whether the runtime pinned planted feet (the request's choice or the model's default)."""
    smoothing: float = 0.0
    """Smoothing actually applied, in model frames."""

    def record(self, take: int = 0) -> str:
        """JSON for one take, stored on its Action so the take can be regenerated exactly."""
        d = self.request.record()
        d.update(seed=int(self.takes[take].seed) if self.takes else None,
                 read_as=getattr(self.takes[take], "read_as", "") if self.takes else "", model=self.model_name,
                 model_version=self.model_version, device=self.device, foot_lock=self.foot_lock,
                 smoothing=self.smoothing)
        return json.dumps(d, sort_keys=True)
