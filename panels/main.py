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
        layout.prop(context.scene.marionette, "root_motion")
        layout.prop(context.scene.marionette, "foot_lock")
        layout.operator("marionette.import_motion", icon="IMPORT")


class MARIONETTE_PT_generate(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_generate"
    bl_label = "Generate"
    bl_parent_id = "MARIONETTE_PT_main"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.marionette
        job = context.window_manager.marionette_job
        layout.prop(settings, "prompt", text="")
        col = layout.column(align=True)
        col.prop(settings, "seconds")
        row = col.row(align=True)
        row.prop(settings, "use_current_frame", text="", icon="TIME")
        sub = row.row(align=True)
        sub.enabled = not settings.use_current_frame
        sub.prop(settings, "frame_start")
        row = col.row(align=True)
        row.prop(settings, "seed")
        row.operator("marionette.randomize_seed", text="", icon="FILE_REFRESH")
        col.prop(settings, "variations")
        col.prop(settings, "root_motion", text="")
        col.prop(settings, "foot_lock")
        col = layout.column(align=True)
        col.prop(settings, "read_prompt")
        col.prop(settings, "guidance")
        col.prop(settings, "steps")
        prefs = preferences.get(context)
        if prefs is not None:
            col.prop(prefs, "device")
        obj = context.active_object
        is_armature = obj is not None and obj.type == "ARMATURE"
        row = layout.row()
        row.scale_y = 1.4
        if job.running:
            row.enabled = False
            row.operator("marionette.generate", text=f"Generating {job.progress:.0%}", icon="TIME")
            layout.label(text=job.status or "Generating...", icon="INFO")
            layout.label(text="Press Esc in the viewport to cancel.")
        else:
            row.operator("marionette.generate", text="Generate" if is_armature else "Generate on a New Character",
                         icon="PLAY")
            if job.status:
                layout.label(text=job.status, icon="INFO")
        if job.read_as and not job.running:
            box = layout.box()
            for k, line in enumerate(_wrap(f'Read as: "{job.read_as}"', 48)):
                box.label(text=line, icon="INFO" if k == 0 else "BLANK1")
        if job.hint:
            box = layout.box()
            for k, line in enumerate(_wrap(job.hint, 48)):
                box.label(text=line, icon="ERROR" if k == 0 else "BLANK1")
        if is_armature and len(obj.marionette_variations):
            layout.label(text="Takes:")
            layout.template_list("MARIONETTE_UL_variations", "", obj, "marionette_variations", obj,
                                 "marionette_variation_index", rows=min(4, len(obj.marionette_variations)))
            layout.operator("marionette.keep_variation", icon="CHECKMARK")


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


class MARIONETTE_PT_bone_map(_Panel, bpy.types.Panel):
    bl_idname = "MARIONETTE_PT_bone_map"
    bl_label = "Bone Map"
    bl_parent_id = "MARIONETTE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def draw(self, context):
        from ..operators.bone_map import JOINT_LABELS

        layout = self.layout
        obj = context.active_object
        if "rig_id" in obj.data:  # Rigify's mark on a generated rig: the controls drive the bones
            layout.prop(obj, "marionette_rig_target")
        rows = obj.marionette_bone_map
        if not len(rows):
            layout.label(text="Found automatically when needed.", icon="INFO")
            layout.operator("marionette.detect_bone_map", icon="VIEWZOOM")
            layout.operator("marionette.load_bone_map", icon="FILE_FOLDER")
            return
        layout.label(text=obj.marionette_bone_map_source or "Custom", icon="ARMATURE_DATA")
        col = layout.column(align=True)
        for row in rows:
            col.prop_search(row, "bone", obj.data, "bones", text=JOINT_LABELS.get(row.joint, row.joint))
        r = layout.row(align=True)
        r.operator("marionette.detect_bone_map", text="Detect", icon="VIEWZOOM")
        r.operator("marionette.clear_bone_map", text="Clear", icon="X")
        r = layout.row(align=True)
        r.operator("marionette.save_bone_map", text="Save", icon="FILE_TICK")
        r.operator("marionette.load_bone_map", text="Load", icon="FILE_FOLDER")


classes = (MARIONETTE_PT_main, MARIONETTE_PT_generate, MARIONETTE_PT_motion_files, MARIONETTE_PT_bone_map)
register, unregister = bpy.utils.register_classes_factory(classes)
