"""Sidebar panels. They only draw: no runtime imports, so they draw even without torch."""
from __future__ import annotations

import bpy

from .. import preferences
from ..inference import deps


class _Panel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Marionette"


class MARIONETTE_PT_main(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_main"
    bl_label = "Marionette"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        if deps.missing():
            preferences.draw_dependencies(layout)
        col = layout.column(align=True)
        if obj is not None and obj.type == "ARMATURE":
            col.label(text=f"Character: {obj.name}", icon="ARMATURE_DATA")
            action = obj.animation_data.action if obj.animation_data else None
            col.label(text=f"Action: {action.name if action else 'none'}", icon="ACTION")
        else:
            col.label(text="Select an armature, or add one:", icon="INFO")
        settings = context.scene.marionette
        row = layout.row(align=True)
        row.prop(settings, "character_type", text="")
        row.operator("marionette.add_character", text="Add", icon="ADD").character_type = settings.character_type


class MARIONETTE_PT_motion_files(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_motion_files"
    bl_label = "Motion Files"
    bl_parent_id = "MARIONETTE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.prop(context.scene.marionette, "scale_root")
        layout.operator("marionette.import_motion", icon="IMPORT")


classes = (MARIONETTE_PT_main, MARIONETTE_PT_motion_files)
register, unregister = bpy.utils.register_classes_factory(classes)
