"""Locating and extracting the motion data in ../shared/data into a cache folder (never into git).

    python -m training.data          # extract if needed, print the folder
"""
from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARCHIVES = ("bandai_namco.tar.xz", "cmu.tar.xz")


def shared_data_dir() -> Path:
    return Path(os.environ.get("MARIONETTE_SHARED_DATA", REPO.parent / "shared" / "data"))


def cache_dir() -> Path:
    return Path(os.environ.get("MARIONETTE_CACHE", REPO / ".cache")) / "data"


def extract(verbose: bool = False) -> Path | None:
    """Extract every archive not yet extracted; returns the cache folder, or None without data."""
    src = shared_data_dir()
    if not src.is_dir():
        return None
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name in ARCHIVES:
        archive = src / name
        marker = out / f".{name}.done"
        if not archive.is_file() or marker.exists():
            continue
        if verbose:
            print(f"extracting {archive} -> {out}", flush=True)
        with tarfile.open(archive) as tar:
            tar.extractall(out, filter="data")
        marker.touch()
    return out


def bandai_dir() -> Path | None:
    root = extract()
    return root / "dataset" if root and (root / "dataset").is_dir() else None


def cmu_dir() -> Path | None:
    root = extract()
    return root / "cmu" if root and (root / "cmu").is_dir() else None


def bandai_file(name: str = "dataset-1_walk_normal_001.bvh") -> Path | None:
    d = bandai_dir()
    if d is None:
        return None
    hits = sorted(d.glob(f"*/data/{name}"))
    return hits[0] if hits else None


if __name__ == "__main__":
    where = extract(verbose=True)
    if where is None:
        print(f"no data at {shared_data_dir()}; tests that need it will be skipped", file=sys.stderr)
    else:
        print(where)
