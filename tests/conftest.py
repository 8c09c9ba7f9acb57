"""Shared fixtures: real motion files from ../shared/data (extracted into .cache by make test)."""
from __future__ import annotations

import pytest

from training import data


@pytest.fixture(scope="session")
def bandai_bvh():
    path = data.bandai_file("dataset-1_walk_normal_001.bvh")
    if path is None:
        pytest.skip("Bandai-Namco data (../shared/data) is not on this machine")
    return path


@pytest.fixture(scope="session")
def cmu_dir():
    d = data.cmu_dir()
    if d is None:
        pytest.skip("CMU data (../shared/data) is not on this machine")
    return d
