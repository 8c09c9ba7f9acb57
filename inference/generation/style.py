"""Style presets: a LoRA adapter file plus a small card, kept in folders the caller names.

A preset is `<name>.safetensors` (the adapter, with its card in the file's header, so one file is
also the export format) and `<name>.json` (the same card, readable). Presets are tied to the base
model they were learned on (name and weights version); one made for another model is refused.
Writes go through a temporary file and a rename, so nothing half-written ever appears, and an
existing name is never overwritten unless the caller says so.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ..body.motion import MotionError

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "styles"
LICENCE_SHIPPED = "CC BY-NC 4.0"
CARD_FORMAT = 1
SUFFIX = ".safetensors"


class StyleError(MotionError):
    """A preset that cannot be used or written; the message says what to do."""


class StyleExists(StyleError):
    """A preset of this name is already there (ask before overwriting)."""


@dataclass(frozen=True)
class StyleCard:
    """What a preset is and what it was made from."""

    name: str
    """The name shown in the Style panel."""
    base_model: str
    """The base model's folder name."""
    base_version: str
    """The first 12 hex digits of the base weights' SHA-256 (`Generator.version`)."""
    rank: int = 8
    description: str = ""
    """What the style does, in a sentence."""
    data: str = ""
    """What it was learned from (clips, seconds, source)."""
    licence: str = ""
    """Licence of the adapter (shipped presets: CC BY-NC 4.0, from their training data)."""
    steps: int = 0
    seconds: float = 0.0
    """Time it took to learn."""
    hardware: str = ""
    format: int = CARD_FORMAT
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "StyleCard":
        known = set(cls.__dataclass_fields__)
        if not isinstance(d, dict) or not {"name", "base_model", "base_version"} <= set(d):
            raise StyleError("The preset has no card naming its style and base model.")
        return cls(**{k: v for k, v in d.items() if k in known})


def valid_name(name: str) -> str:
    """The name, stripped, or a StyleError saying what is wrong with it."""
    name = (name or "").strip()
    if not name:
        raise StyleError("Give the style a name.")
    if len(name) > 48 or not re.fullmatch(r"[\w][\w \-.]*", name) or name.endswith("."):
        raise StyleError(f"'{name}' cannot be a style name: use letters, digits, spaces, '-' or '_' "
                         "(at most 48 characters).")
    return name


def _atomic_write(path: Path, write) -> None:
    """`write(tmp_path)` then rename onto `path`; on any error the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; presets are shared files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@dataclass(frozen=True)
class Preset:
    """A preset on disk."""

    path: Path
    card: StyleCard

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def shipped(self) -> bool:
        return self.path.parent.resolve() == SHIPPED.resolve()


def read_preset(path: str | Path, base_model: str | None = None, base_version: str | None = None):
    """(Adapter, StyleCard) from a preset file; StyleError for a corrupt, truncated, foreign or
    other-model file (checked against `base_version` when given)."""
    from . import lora

    path = Path(path)
    if not path.is_file():
        raise StyleError(f"No style preset at {path}.")
    try:
        adapter, card_dict = lora.load(path)
    except ValueError as exc:
        raise StyleError(f"{path.name} is not a Marionette style preset ({exc}).") from exc
    except Exception as exc:  # safetensors raises its own types for damaged files
        raise StyleError(f"{path.name} is damaged or truncated and cannot be read; export it again from "
                         "where it was made.") from exc
    card = StyleCard.from_dict(card_dict)
    if base_version is not None and card.base_version != base_version:
        raise StyleError(f"The style '{card.name}' was learned on the model '{card.base_model}' "
                         f"(version {card.base_version}), not on this one ('{base_model or '?'}', version "
                         f"{base_version}). Learn it again from its clips on this model.")
    adapter.name = card.name
    return adapter, card


class StyleLibrary:
    """The presets in a user folder (written here) and read-only folders (the shipped presets)."""

    def __init__(self, folder: str | Path | None, read_only: Iterable[str | Path] = (SHIPPED,)):
        self.folder = Path(folder) if folder else None
        self.read_only = [Path(p) for p in read_only]

    def presets(self) -> list[Preset]:
        """Every readable preset, the user's first, then the shipped ones, by name."""
        out, seen = [], set()
        for folder in [self.folder, *self.read_only]:
            if folder is None or not folder.is_dir():
                continue
            for js in sorted(folder.glob("*.json")):
                st = js.with_suffix(SUFFIX)
                try:
                    card = StyleCard.from_dict(json.loads(js.read_text()))
                except (ValueError, StyleError, TypeError):
                    continue
                if st.is_file() and card.name.lower() not in seen:
                    seen.add(card.name.lower())
                    out.append(Preset(st, card))
        return out

    def find(self, name: str) -> Preset | None:
        for p in self.presets():
            if p.name.lower() == name.strip().lower():
                return p
        return None

    def path_for(self, name: str) -> Path:
        if self.folder is None:
            raise StyleError("This style library has no folder to write into.")
        return self.folder / (valid_name(name) + SUFFIX)

    def save(self, adapter, card: StyleCard, overwrite: bool = False) -> Preset:
        """Write a preset (adapter + card) into the user folder; StyleExists if the name is taken."""
        from . import lora

        name = valid_name(card.name)
        path = self.path_for(name)
        existing = self.find(name)
        if existing is not None:
            if existing.path.parent.resolve() != self.folder.resolve():
                raise StyleExists(f"'{name}' is a shipped style; choose another name.")
            if not overwrite:
                raise StyleExists(f"A style named '{name}' already exists; choose another name or confirm "
                                  "that it should be replaced.")
        adapter.name = name
        meta = json.loads(card.to_json())
        _atomic_write(path, lambda tmp: lora.save(adapter, tmp, meta))
        _atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(card.to_json()))
        return Preset(path, card)

    def remove(self, name: str) -> None:
        p = self.find(name)
        if p is None:
            raise StyleError(f"There is no style named '{name}'.")
        if p.shipped:
            raise StyleError(f"'{p.name}' is a shipped style and cannot be removed.")
        p.path.unlink(missing_ok=True)
        p.path.with_suffix(".json").unlink(missing_ok=True)

    def export(self, name: str, dest: str | Path) -> Path:
        """Copy a preset to one shareable file (the card travels in its header)."""
        p = self.find(name)
        if p is None:
            raise StyleError(f"There is no style named '{name}'.")
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / p.path.name
        if dest.suffix != SUFFIX:
            dest = dest.with_name(dest.name + SUFFIX)
        data = p.path.read_bytes()
        _atomic_write(dest, lambda tmp: tmp.write_bytes(data))
        return dest

    def import_file(self, src: str | Path, base_model: str, base_version: str, name: str | None = None,
                    overwrite: bool = False) -> Preset:
        """Add an exported preset file, checked first: nothing is written unless it is whole, a
        Marionette preset and made for this base model, and its name is free (or `overwrite`)."""
        adapter, card = read_preset(src, base_model, base_version)
        if name:
            card = StyleCard(**{**asdict(card), "name": valid_name(name)})
        return self.save(adapter, card, overwrite=overwrite)
