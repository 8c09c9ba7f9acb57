"""The add-on loaded as a real extension (bl_ext.marionette_dev.marionette) in the bpy module.

Under pytest-blender (a real Blender 4.2+), the same fixtures run inside Blender's own Python.
"""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")

from scripts.blender_env import PACKAGE, load_extension, reset_scene  # noqa: E402


@pytest.fixture(scope="session")
def ext():
    import importlib

    pkg = load_extension()
    for sub in ("bridge", "inference.body.quat", "inference.body.skeleton", "inference.body.bvh", "inference.retargeting.retarget"):
        importlib.import_module(f"{pkg.__name__}.{sub}")
    return pkg


@pytest.fixture
def scene(ext):
    return reset_scene()


@pytest.fixture
def package_name():
    return PACKAGE
