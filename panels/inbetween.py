"""The In-between panel: the animator's keys in a frame range, filled by the motion model."""
from __future__ import annotations

import bpy

from .main import _Panel


class MARIONETTE_PT_inbetween(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_inbetween"
    bl_label = "In-between"
    bl_parent_id = "MARIONETTE_PT_main"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.marionette
        s = settings.inbetween
        job = context.window_manager.marionette_job
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(s, "use_scene_range", text="Scene Range", toggle=True)
        row.operator("marionette.inbetween_range_from_keys", text="Selected Keys", icon="KEYFRAME")
        sub = col.row(align=True)
        if s.use_scene_range:
            scene = context.scene
            a, b = ((scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range
                    else (scene.frame_start, scene.frame_end))
            sub.label(text=f"Frames {a}-{b}" + (" (preview range)" if scene.use_preview_range else ""))
        else:
            sub.prop(s, "frame_start")
            sub.prop(s, "frame_end")
        layout.prop(s, "prompt", text="", placeholder="Optional: what happens between the keys")
        col = layout.column(align=True)
        row = col.row(align=True)
        row.prop(s, "seed")
        col.prop(s, "variations")
        col.prop(s, "output", text="")
        col.prop(s, "key_every")
        col.prop(settings, "foot_lock")
        row = layout.row()
        row.scale_y = 1.4
        if job.running:
            row.enabled = False
            row.operator("marionette.inbetween", text=f"Working {job.progress:.0%}", icon="TIME")
            layout.label(text=job.status or "In-betweening...", icon="INFO")
            layout.label(text="Press Esc in the viewport to cancel.")
        else:
            row.operator("marionette.inbetween", icon="IPO_BEZIER")
            if job.status.startswith("In-between"):
                layout.label(text=job.status, icon="INFO")


classes = (MARIONETTE_PT_inbetween,)
register, unregister = bpy.utils.register_classes_factory(classes)
