"""Loading the checkout into the bpy module as a real extension (bl_ext.<repo>.marionette).

Used by tests/blender and the demo. BLENDER_USER_RESOURCES must point at a scratch folder
before bpy is first imported, so nothing touches the user's own Blender configuration.
"""
from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPO_MODULE = "marionette_dev"
PACKAGE = f"bl_ext.{REPO_MODULE}.marionette"


def _extension_repo_dir() -> str:
    """A folder holding the checkout under the name 'marionette' (its parent if already so named)."""
    if REPO.name == "marionette":
        return str(REPO.parent)
    d = tempfile.mkdtemp(prefix="marionette_repo_")
    os.symlink(REPO, os.path.join(d, "marionette"))
    return d


def load_extension():
    """Import bpy with a scratch user folder, enable the add-on as an extension, return its package."""
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="marionette_user_"))
    import bpy  # noqa: F401 - first: it sets up Blender's module path
    import addon_utils

    repos = bpy.context.preferences.extensions.repos
    if REPO_MODULE not in {r.module for r in repos}:
        repos.new(name=REPO_MODULE, module=REPO_MODULE, custom_directory=_extension_repo_dir(), source="USER")
    addon_utils.enable(PACKAGE, default_set=True, handle_error=_raise)
    return importlib.import_module(PACKAGE)


def _raise(exc):
    raise exc


def reset_scene():
    """An empty scene, with the extension still enabled."""
    import bpy

    for coll in (bpy.data.objects, bpy.data.armatures, bpy.data.meshes, bpy.data.actions, bpy.data.materials,
                 bpy.data.cameras, bpy.data.lights):
        for block in list(coll):
            coll.remove(block)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end, scene.frame_current = 1, 250, 1
    scene.render.fps, scene.render.fps_base = 30, 1.0
    _unset(getattr(scene, "marionette", None))  # settings a test changed would reach the next one
    return scene


def _unset(group) -> None:
    """Every property of a property group (and of the groups it points to) back to its default."""
    import bpy

    if group is None:
        return
    for prop in group.bl_rna.properties:
        name = prop.identifier
        if name == "rna_type" or prop.type == "COLLECTION":
            continue
        value = getattr(group, name)
        if isinstance(value, bpy.types.PropertyGroup):
            _unset(value)
        elif not prop.is_readonly:
            group.property_unset(name)
