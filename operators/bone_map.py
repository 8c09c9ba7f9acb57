"""The bone map of the active armature: detect it, fix rows by hand, save and load presets.

The map lives on the armature object (`marionette_bone_map`); when it has rows, every Marionette
operator uses it instead of detecting one. Presets are JSON files in the extension's user folder
(`rig_maps/`), which survives upgrades; the built-in maps ship in `assets/rig_maps/`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import bpy

from .common import active_armature, missing_message, report_error

# canonical joint -> label shown in the panel (the order is the panel's order)
JOINT_LABELS = {
    "pelvis": "Hips", "spine1": "Spine (lower)", "spine2": "Spine (middle)", "spine3": "Chest", "neck": "Neck",
    "head": "Head",
    **{f"{s}_{j}": f"{lab} {nm}" for s, lab in (("left", "Left"), ("right", "Right"))
       for j, nm in (("collar", "Collarbone"), ("shoulder", "Upper Arm"), ("elbow", "Forearm"), ("wrist", "Hand"),
                     ("hip", "Thigh"), ("knee", "Shin"), ("ankle", "Foot"), ("foot", "Toes"))},
}


def presets_dir(create: bool = False) -> Path | None:
    try:
        return Path(bpy.utils.extension_path_user(__package__.rsplit(".", 1)[0], path="rig_maps", create=create))
    except (ValueError, AttributeError):
        return None


def preset_files() -> list[Path]:
    d = presets_dir()
    return sorted(d.glob("*.json")) if d and d.is_dir() else []


def fill_rows(obj, joints: dict[str, str], source: str) -> None:
    rows = obj.marionette_bone_map
    rows.clear()
    for joint in JOINT_LABELS:
        row = rows.add()
        row.joint = joint
        row.bone = joints.get(joint, "")
    obj.marionette_bone_map_source = source


def rows_as_dict(obj) -> dict[str, str]:
    return {r.joint: r.bone for r in obj.marionette_bone_map if r.bone}


class MARIONETTE_OT_detect_bone_map(bpy.types.Operator):
    """Find which bone of the active armature plays each body part (by names, else by shape)"""

    bl_idname = "marionette.detect_bone_map"
    bl_label = "Detect Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None

    def execute(self, context):
        msg = missing_message(("numpy", "scipy"))
        if msg:
            self.report({"ERROR"}, msg)
            return {"CANCELLED"}
        from .. import bridge

        obj = context.active_object
        try:
            align = bridge.armature_alignment(obj, stored=False)
        except Exception as exc:  # noqa: BLE001 - reported to the user
            return report_error(self, exc)
        fill_rows(obj, dict(align.bone_map.joints), align.bone_map.name)
        n = sum(1 for r in obj.marionette_bone_map if r.bone)
        self.report({"INFO"}, f"{align.bone_map.name}: {n} of {len(JOINT_LABELS)} body parts found.")
        return {"FINISHED"}


class MARIONETTE_OT_clear_bone_map(bpy.types.Operator):
    """Forget this armature's bone map (Marionette detects one again when it needs it)"""

    bl_idname = "marionette.clear_bone_map"
    bl_label = "Clear Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = active_armature(context)
        return obj is not None and len(obj.marionette_bone_map) > 0

    def execute(self, context):
        obj = context.active_object
        obj.marionette_bone_map.clear()
        obj.marionette_bone_map_source = ""
        return {"FINISHED"}


class MARIONETTE_OT_save_bone_map(bpy.types.Operator):
    """Save this armature's bone map as a preset for other characters with the same rig"""

    bl_idname = "marionette.save_bone_map"
    bl_label = "Save Bone Map Preset"

    name: bpy.props.StringProperty(name="Preset Name", default="My Rig")

    @classmethod
    def poll(cls, context):
        obj = active_armature(context)
        return obj is not None and len(obj.marionette_bone_map) > 0

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        name = self.name.strip()
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
        if not slug:
            self.report({"ERROR"}, "Give the preset a name.")
            return {"CANCELLED"}
        folder = presets_dir(create=True)
        if folder is None:
            self.report({"ERROR"}, "Presets need Marionette installed as an extension.")
            return {"CANCELLED"}
        path = folder / f"{slug}.json"
        data = {"name": name, "up": "Z", "joints": rows_as_dict(context.active_object)}
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        self.report({"INFO"}, f"Saved bone map preset '{name}' to {path}.")
        return {"FINISHED"}


def _preset_items(self, context):
    items = [(str(p), p.stem.replace("_", " "), f"Your preset ({p})") for p in preset_files()]
    return items or [("", "(no saved presets)", "Save a bone map first")]


class MARIONETTE_OT_load_bone_map(bpy.types.Operator):
    """Use a saved bone map preset on the active armature"""

    bl_idname = "marionette.load_bone_map"
    bl_label = "Load Bone Map Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: bpy.props.EnumProperty(name="Preset", items=_preset_items)
    filepath: bpy.props.StringProperty(name="File", default="", options={"SKIP_SAVE"},
                                       description="A bone map JSON file (instead of a saved preset)")

    @classmethod
    def poll(cls, context):
        return active_armature(context) is not None

    def invoke(self, context, event):
        context.window_manager.invoke_search_popup(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from ..inference.retargeting.retarget import BoneMap

        path = self.filepath or self.preset
        if not path:
            self.report({"ERROR"}, "There is no saved bone map preset yet.")
            return {"CANCELLED"}
        obj = context.active_object
        try:
            bone_map = BoneMap.load(path)
        except Exception as exc:  # noqa: BLE001 - reported to the user
            return report_error(self, exc)
        missing = sorted(b for b in bone_map.joints.values() if b not in obj.data.bones)
        fill_rows(obj, {k: v for k, v in bone_map.joints.items() if v in obj.data.bones}, bone_map.name)
        if missing:
            self.report({"WARNING"}, f"'{bone_map.name}' names bones this armature lacks: {', '.join(missing[:6])}.")
        else:
            self.report({"INFO"}, f"Using bone map '{bone_map.name}'.")
        return {"FINISHED"}


classes = (MARIONETTE_OT_detect_bone_map, MARIONETTE_OT_clear_bone_map, MARIONETTE_OT_save_bone_map,
           MARIONETTE_OT_load_bone_map)
register, unregister = bpy.utils.register_classes_factory(classes)
