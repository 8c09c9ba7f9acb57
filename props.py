"""Persistent settings (on the Scene) and transient job state (on the WindowManager)."""
from __future__ import annotations

import bpy


CHARACTER_TYPES = [
    ("CANONICAL", "Marionette Skeleton", "A simple 22-bone armature matching the motion model"),
    ("RIGIFY", "Rigify Human Metarig", "Rigify's human metarig (enables the Rigify add-on if needed)"),
]


class MARIONETTE_PG_settings(bpy.types.PropertyGroup):
    scale_root: bpy.props.BoolProperty(
        name="Scale Root Motion",
        description="Scale root motion by the ratio of leg lengths, so strides fit the character",
        default=True,
    )
    character_type: bpy.props.EnumProperty(name="Character", items=CHARACTER_TYPES, default="CANONICAL")


class MARIONETTE_PG_job(bpy.types.PropertyGroup):
    running: bpy.props.BoolProperty(default=False)
    progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: bpy.props.StringProperty(default="")


classes = (MARIONETTE_PG_settings, MARIONETTE_PG_job)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()
    bpy.types.Scene.marionette = bpy.props.PointerProperty(type=MARIONETTE_PG_settings)
    bpy.types.WindowManager.marionette_job = bpy.props.PointerProperty(type=MARIONETTE_PG_job)


def unregister():
    del bpy.types.WindowManager.marionette_job
    del bpy.types.Scene.marionette
    _unregister()
