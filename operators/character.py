"""Adding a character the motion model can drive."""
from __future__ import annotations

import addon_utils
import bpy

from ..props import CHARACTER_TYPES
from .common import missing_message, report_error


def add_rigify_metarig(context) -> bpy.types.Object:
    """Rigify's human metarig at the 3D cursor (enables Rigify if needed)."""
    if not _op_exists("object.armature_human_metarig_add"):
        addon_utils.enable("rigify", default_set=True)
    if not _op_exists("object.armature_human_metarig_add"):
        raise RuntimeError("Rigify is not available in this Blender.")
    if context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    bpy.ops.object.armature_human_metarig_add()
    obj = context.view_layer.objects.active
    obj.location = context.scene.cursor.location
    return obj


def _op_exists(idname: str) -> bool:
    mod, name = idname.split(".")
    try:
        getattr(getattr(bpy.ops, mod), name).get_rna_type()
        return True
    except (AttributeError, KeyError):
        return False


class MARIONETTE_OT_add_character(bpy.types.Operator):
    """Add an armature that Marionette can animate, at the 3D cursor"""

    bl_idname = "marionette.add_character"
    bl_label = "Add Character"
    bl_options = {"REGISTER", "UNDO"}

    character_type: bpy.props.EnumProperty(name="Character", items=CHARACTER_TYPES, default="CANONICAL")

    @classmethod
    def poll(cls, context):
        return context.mode in {"OBJECT", "POSE"}

    def execute(self, context):
        msg = missing_message(("numpy", "scipy"))
        if msg:
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        try:
            if context.mode != "OBJECT":
                bpy.ops.object.mode_set(mode="OBJECT")
            if self.character_type == "RIGIFY":
                obj = add_rigify_metarig(context)
            else:
                from .. import bridge

                obj = bridge.create_canonical_armature(context)
        except Exception as e:  # noqa: BLE001 - reported to the user
            return report_error(self, e)
        self.report({"INFO"}, f"Added '{obj.name}'.")
        return {"FINISHED"}


classes = (MARIONETTE_OT_add_character,)
register, unregister = bpy.utils.register_classes_factory(classes)
