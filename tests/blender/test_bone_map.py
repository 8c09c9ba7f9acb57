"""The Bone Map panel's operators: detect, fix a row, save and load presets, a deleted bone."""
import importlib
import json

import pytest

import bpy

from .test_extension import _draw_panels


def _rows(obj):
    return {r.joint: r.bone for r in obj.marionette_bone_map}


def _rotation_paths(obj):
    from scripts.blender_env import PACKAGE

    bridge = importlib.import_module(PACKAGE + ".bridge")
    return {fc.data_path for fc in bridge.action_fcurves(obj.animation_data.action, obj) if "rotation" in fc.data_path}


def test_detect_then_fix_a_row_and_the_fix_is_used(ext, scene, bandai_bvh):
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    obj = bpy.context.view_layer.objects.active
    assert bpy.ops.marionette.detect_bone_map() == {"FINISHED"}
    rows = _rows(obj)
    assert len(rows) == 22 and rows["left_wrist"] == "hand.L" and rows["head"] == "spine.006"
    assert obj.marionette_bone_map_source == "Rigify human metarig"
    drawn, errors = _draw_panels()
    assert "MARIONETTE_PT_bone_map" in drawn and not errors
    # the animator leaves the head out of the map: the head bone gets no keys
    next(r for r in obj.marionette_bone_map if r.joint == "head").bone = ""
    assert bpy.ops.marionette.import_motion(filepath=str(bandai_bvh)) == {"FINISHED"}
    paths = _rotation_paths(obj)
    assert 'pose.bones["spine.006"].rotation_quaternion' not in paths
    assert 'pose.bones["hand.L"].rotation_quaternion' in paths


def test_a_row_naming_a_deleted_bone_is_refused_and_nothing_is_written(ext, scene, bandai_bvh):
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    obj = bpy.context.view_layer.objects.active
    bpy.ops.marionette.detect_bone_map()
    bpy.ops.object.mode_set(mode="EDIT")
    obj.data.edit_bones.remove(obj.data.edit_bones["hand.L"])
    bpy.ops.object.mode_set(mode="OBJECT")
    n = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="hand.L"):
        bpy.ops.marionette.import_motion(filepath=str(bandai_bvh))
    assert len(bpy.data.actions) == n


def test_presets_are_saved_in_the_user_folder_and_load_onto_another_rig(ext, scene):
    ops = importlib.import_module(ext.__name__ + ".operators.bone_map")
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    first = bpy.context.view_layer.objects.active
    bpy.ops.marionette.detect_bone_map()
    next(r for r in first.marionette_bone_map if r.joint == "spine2").bone = ""
    assert bpy.ops.marionette.save_bone_map(name="Studio Rig 2") == {"FINISHED"}
    path = ops.presets_dir() / "Studio_Rig_2.json"
    assert path.is_file() and str(path).startswith(bpy.utils.extension_path_user(ext.__name__))
    saved = json.loads(path.read_text())
    assert saved["name"] == "Studio Rig 2" and "spine2" not in saved["joints"]
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    second = bpy.context.view_layer.objects.active
    assert second != first and not len(second.marionette_bone_map)
    assert bpy.ops.marionette.load_bone_map(preset=str(path)) == {"FINISHED"}
    assert {k: v for k, v in _rows(second).items() if v} == saved["joints"]
    assert second.marionette_bone_map_source == "Studio Rig 2"
    assert bpy.ops.marionette.clear_bone_map() == {"FINISHED"} and not len(second.marionette_bone_map)
