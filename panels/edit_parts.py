"""The Edit Parts panel: regenerate some body parts of the active armature's action in a frame range."""
from __future__ import annotations

import bpy

from ..inference.body.skeleton import BODY_PARTS
from .main import _Panel


class MARIONETTE_PT_edit_parts(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_edit_parts"
    bl_label = "Edit Parts"
    bl_parent_id = "MARIONETTE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE" and hasattr(obj, "marionette_edit")

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        s = obj.marionette_edit
        job = context.window_manager.marionette_job
        layout.prop(s, "use_selected_bones", text="Selected Bones (Pose Mode)", toggle=True)
        grid = layout.grid_flow(row_major=True, columns=2, even_columns=True, align=True)
        grid.enabled = not s.use_selected_bones
        for i, part in enumerate(BODY_PARTS):  # the skeleton's own parts, never re-typed
            grid.prop(s, "parts", index=i, text=part.label, toggle=True)
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(s, "use_whole_action", toggle=True)
        row.operator("marionette.edit_range_from_keys", text="Selected Keys", icon="KEYFRAME")
        if not s.use_whole_action:
            row = col.row(align=True)
            row.prop(s, "frame_start")
            row.prop(s, "frame_end")
        if s.use_selected_bones or any(on for part, on in zip(BODY_PARTS, s.parts) if part.root_translation):
            layout.prop(s, "carry_rest")
        layout.prop(s, "prompt", text="", placeholder="What the parts should do: \"waves the right hand\"")
        col = layout.column(align=True)
        col.prop(s, "seed")
        col.prop(s, "variations")
        col.prop(s, "output", text="")
        row = layout.row()
        row.scale_y = 1.4
        if job.running:
            row.enabled = False
            row.operator("marionette.edit_parts", text=f"Working {job.progress:.0%}", icon="TIME")
            layout.label(text="Press Esc in the viewport to cancel.")
        else:
            row.operator("marionette.edit_parts", icon="MOD_ARMATURE")
            if job.status.startswith("Edit"):
                layout.label(text=job.status, icon="INFO")


classes = (MARIONETTE_PT_edit_parts,)
register, unregister = bpy.utils.register_classes_factory(classes)
