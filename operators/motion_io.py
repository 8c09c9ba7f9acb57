"""Importing motion files onto the active armature."""
from __future__ import annotations

import os

import bpy
from bpy_extras.io_utils import ImportHelper

from .common import active_armature, missing_message, report_error


def import_bvh_onto(context, obj, filepath: str, frame_start: int, scale_root: bool, root_motion: str = "HIP",
                    foot_lock: bool = True):
    """Read a BVH of any known humanoid skeleton and key it on `obj` as a new Action.
    Raises MotionError with a message for the user; writes nothing on error."""
    from .. import bridge
    from ..inference.body.bvh import read_bvh
    from ..inference.retargeting.retarget import bvh_to_canonical

    clip = bvh_to_canonical(read_bvh(filepath), scale_root=scale_root)
    name = os.path.splitext(os.path.basename(filepath))[0]
    # write_clip maps the rig before it creates anything, so a rig it cannot use changes nothing.
    action = bridge.write_clip(obj, clip, name, frame_start, fps=bridge.scene_fps(context.scene), scale_root=scale_root,
                               root_motion=root_motion, foot_lock=foot_lock)
    first, last = action.frame_range
    return action, int(round(last - first)) + 1


class MARIONETTE_OT_import_motion(bpy.types.Operator, ImportHelper):
    """Import a BVH motion (Bandai-Namco, CMU, Mixamo, ...) onto the active armature as a new Action"""

    bl_idname = "marionette.import_motion"
    bl_label = "Import Motion"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".bvh"
    filter_glob: bpy.props.StringProperty(default="*.bvh", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None and context.mode in {"OBJECT", "POSE"}

    def execute(self, context):
        msg = missing_message(("numpy", "scipy"))
        if msg:
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        settings = context.scene.marionette
        try:
            action, n = import_bvh_onto(
                context, context.active_object, self.filepath, context.scene.frame_current, settings.scale_root,
                settings.root_motion, settings.foot_lock,
            )
        except Exception as e:  # noqa: BLE001 - reported to the user
            return report_error(self, e)
        scene = context.scene
        scene.frame_start = scene.frame_current
        scene.frame_end = scene.frame_current + n - 1
        note = action.get("marionette_note", "")
        self.report({"WARNING"} if note else {"INFO"}, f"Imported {n} frames as action '{action.name}'. {note}".strip())
        return {"FINISHED"}


classes = (MARIONETTE_OT_import_motion,)
register, unregister = bpy.utils.register_classes_factory(classes)
