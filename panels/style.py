"""The Style sub-panel: presets with strengths (several on = mixing), learning, restyling, sharing."""
from __future__ import annotations

import bpy

from .main import _Panel


class MARIONETTE_PT_style(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_style"
    bl_label = "Style"
    bl_parent_id = "MARIONETTE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = getattr(context.scene, "marionette_style", None)
        if s is None:
            return
        row = layout.row()
        row.template_list("MARIONETTE_UL_styles", "", s, "items", s, "index", rows=4)
        col = row.column(align=True)
        col.operator("marionette.refresh_styles", text="", icon="FILE_REFRESH")
        col.operator("marionette.import_style", text="", icon="IMPORT")
        col.operator("marionette.export_style", text="", icon="EXPORT")
        col.operator("marionette.remove_style", text="", icon="REMOVE")
        if not s.items:
            layout.label(text="Press Refresh to list the styles.", icon="INFO")
        elif 0 <= s.index < len(s.items) and s.items[s.index].description:
            layout.label(text=s.items[s.index].description)
        active = [it.name for it in s.items if it.active]
        layout.label(text=("Applied to every generation: " + " + ".join(active)) if active else
                     "No style active: generated motion is the base model's.", icon="BRUSH_DATA")
        row = layout.row(align=True)
        row.prop(s, "restyle_amount")
        row.operator("marionette.restyle_action", icon="MOD_WAVE")
        box = layout.box()
        box.label(text="Learn from actions (at least 3, 10 s in all):")
        col = box.column(align=True)
        for a in bpy.data.actions[:40]:
            col.prop(a, "marionette_learn", text=a.name)
        box.operator("marionette.learn_style", icon="ADD")


classes = (MARIONETTE_PT_style,)
register, unregister = bpy.utils.register_classes_factory(classes)
