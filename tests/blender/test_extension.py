"""Registration, panels, operators and the Action bridge inside Blender."""
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

import bpy
import addon_utils

from scripts.blender_env import load_extension


def test_register_unregister_twice_leaves_nothing_behind(ext, package_name):
    for _ in range(2):
        addon_utils.disable(package_name, default_set=True)
        assert not hasattr(bpy.types.Scene, "marionette")
        assert not hasattr(bpy.types.WindowManager, "marionette_job")
        assert not _op_registered("marionette.add_character")
        assert "MARIONETTE_PT_main" not in dir(bpy.types)
        load_extension()
        assert hasattr(bpy.types.Scene, "marionette")
        assert _op_registered("marionette.import_motion")
        assert "MARIONETTE_PT_main" in dir(bpy.types)


def _op_registered(idname):
    from scripts.blender_env import PACKAGE

    return importlib.import_module(PACKAGE + ".operators.character")._op_exists(idname)


_ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())


class _Layout:
    """A real UILayout whose icon arguments are checked against Blender's icon list and then
    dropped: background Blender has no icon textures and crashes when a popup holding icons closes."""

    def __init__(self, real):
        object.__setattr__(self, "_real", real)

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            icon = kwargs.pop("icon", None)
            if icon is not None and icon not in _ICONS:
                raise TypeError(f"unknown icon '{icon}'")
            result = attr(*args, **kwargs)
            return _Layout(result) if isinstance(result, bpy.types.UILayout) else result

        return call

    def __setattr__(self, name, value):
        setattr(self._real, name, value)


def _draw_panels():
    """Draw every Marionette panel into a real UILayout (a popup menu's) and return
    (panels drawn, errors raised).

    Background Blender crashes when a popup block is closed, so the drawing happens in a forked
    child that reports over a pipe and exits from inside the draw callback, before the close.
    """
    import json
    from types import SimpleNamespace

    panels = sorted(n for n in dir(bpy.types) if n.startswith("MARIONETTE_PT_"))
    assert panels
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        errors, drawn = [], []

        def draw(menu, context):
            for name in panels:
                cls = getattr(bpy.types, name)
                try:
                    if not hasattr(cls, "poll") or cls.poll(context):
                        cls.draw(SimpleNamespace(layout=_Layout(menu.layout.column())), context)
                    drawn.append(name)
                except Exception as e:  # noqa: BLE001 - reported to the parent
                    errors.append(f"{name}: {type(e).__name__}: {e}")
            os.write(write_end, json.dumps([drawn, errors]).encode())
            os._exit(0)

        try:
            wm = bpy.context.window_manager
            win = wm.windows[0]
            area = next(a for a in win.screen.areas if a.type == "VIEW_3D")
            region = next(r for r in area.regions if r.type == "UI")
            with bpy.context.temp_override(window=win, area=area, region=region):
                wm.popup_menu(draw, title="test")
        finally:
            os.write(write_end, json.dumps([[], ["popup did not draw"]]).encode())
            os._exit(1)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    drawn, errors = json.loads(data.decode())
    return drawn, errors


def test_every_panel_draws_without_errors(scene):
    drawn, errors = _draw_panels()
    assert not errors
    assert "MARIONETTE_PT_main" in drawn and "MARIONETTE_PT_motion_files" in drawn
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    drawn, errors = _draw_panels()
    assert not errors


@pytest.mark.parametrize("kind,bones", [("CANONICAL", 22), ("RIGIFY", None)])
def test_add_character_at_the_cursor(scene, kind, bones):
    scene.cursor.location = (1.0, 2.0, 0.0)
    assert bpy.ops.marionette.add_character(character_type=kind) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert obj.type == "ARMATURE"
    assert tuple(obj.location) == pytest.approx((1.0, 2.0, 0.0))
    if bones:
        assert len(obj.data.bones) == bones


def _clip(ext, bandai_bvh):
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    return retarget.bvh_to_canonical(bvh.read_bvh(bandai_bvh))


@pytest.mark.parametrize("kind", ["CANONICAL", "RIGIFY"])
def test_action_bridge_round_trip_survives_save_and_reload(ext, scene, bandai_bvh, kind, tmp_path):
    clip = _clip(ext, bandai_bvh)
    bpy.ops.marionette.add_character(character_type=kind)
    obj = bpy.context.view_layer.objects.active
    before = bpy.data.actions.new("animator's own")
    obj.animation_data_create()
    obj.animation_data.action = before
    action = ext.bridge.write_clip(obj, clip, "walk", 1, foot_lock=False, level_feet=False)  # exact conversion
    assert obj.animation_data.action == action
    assert before.use_fake_user, "the previous action is kept in the file"
    assert len(ext.bridge.action_fcurves(before)) == 0, "the previous action is not modified"
    assert tuple(action.frame_range) == (1.0, float(clip.num_frames))

    def check(o, a):
        back = ext.bridge.read_clip(o, a, 1, clip.num_frames, clip.fps)
        q = ext.inference.body.quat
        assert np.abs(q.to_matrix(back.rotations) - q.to_matrix(clip.rotations)).max() < 1e-5
        if kind == "CANONICAL":
            assert np.abs(back.root_translation - clip.root_translation).max() < 1e-5
        else:  # scaled by leg length on the way out and back
            assert np.abs(back.root_translation - clip.root_translation).max() < 1e-5 * 2

    check(obj, action)
    name = obj.name
    path = str(tmp_path / "saved.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    obj = bpy.data.objects[name]
    assert obj.animation_data.action.name == "walk"
    check(obj, bpy.data.actions["walk"])
    assert "animator's own" in bpy.data.actions


def test_canonical_armature_poses_match_forward_kinematics(ext, scene, bandai_bvh):
    clip = _clip(ext, bandai_bvh)
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    obj.location = (0, 0, 0)
    ext.bridge.write_clip(obj, clip, "walk", 1, foot_lock=False)
    pos = clip.positions()
    for f in (1, 50, 120):
        scene.frame_set(f)
        for name in ("left_wrist", "right_foot", "head"):
            j = ext.inference.body.skeleton.JOINT_NAMES.index(name)
            got = np.array(obj.matrix_world @ obj.pose.bones[name].head)
            assert np.allclose(got, pos[f - 1, j], atol=1e-4), (f, name)


def test_import_motion_operator_writes_a_new_action(ext, scene, bandai_bvh):
    bpy.ops.marionette.add_character(character_type="RIGIFY")
    obj = bpy.context.view_layer.objects.active
    n_before = len(bpy.data.actions)
    assert bpy.ops.marionette.import_motion(filepath=str(bandai_bvh)) == {"FINISHED"}
    assert len(bpy.data.actions) == n_before + 1
    action = obj.animation_data.action
    assert action.name.startswith("dataset-1_walk_normal_001")
    assert (scene.frame_start, scene.frame_end) == (1, 195)
    # the character walks: the pelvis moves over a metre
    scene.frame_set(1)
    a = np.array(obj.pose.bones["spine"].head)
    scene.frame_set(195)
    b = np.array(obj.pose.bones["spine"].head)
    assert np.linalg.norm((b - a)[:2]) > 1.0


def test_bad_input_gets_a_clear_message_and_changes_nothing(ext, scene, bandai_bvh, tmp_path):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    n_actions = len(bpy.data.actions)
    bad = tmp_path / "broken.bvh"
    bad.write_text(Path(bandai_bvh).read_text()[:3000])
    for path, words in ((tmp_path / "missing.bvh", "not found"), (bad, "truncated")):
        with pytest.raises(RuntimeError, match=words):
            bpy.ops.marionette.import_motion(filepath=str(path))
        assert len(bpy.data.actions) == n_actions
        assert obj.animation_data is None or obj.animation_data.action is None
    # a non-armature active object: the operator is not available
    bpy.ops.mesh.primitive_cube_add()
    assert not bpy.ops.marionette.import_motion.poll()
    # an armature that is not a humanoid
    arm = bpy.data.armatures.new("tentacle")
    tent = bpy.data.objects.new("tentacle", arm)
    scene.collection.objects.link(tent)
    bpy.context.view_layer.objects.active = tent
    bpy.ops.object.mode_set(mode="EDIT")
    for i in range(4):
        b = arm.edit_bones.new(f"seg{i}")
        b.head, b.tail = (0, 0, i * 0.2), (0, 0, (i + 1) * 0.2)
    bpy.ops.object.mode_set(mode="OBJECT")
    with pytest.raises(RuntimeError, match="humanoid"):
        bpy.ops.marionette.import_motion(filepath=str(bandai_bvh))
    assert len(bpy.data.actions) == n_actions


def test_a_rig_turned_on_its_side_inside_its_object_moves_like_an_upright_one(ext, scene, bandai_bvh):
    """FBX/glTF imports keep Y-up bones in an object rotated 90 degrees about X."""
    import math

    from mathutils import Matrix

    bpy.ops.marionette.add_character(character_type="CANONICAL")
    upright = bpy.context.view_layer.objects.active
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    turned = bpy.context.view_layer.objects.active
    turned.data.transform(Matrix.Rotation(-math.pi / 2, 4, "X"))  # bones now Y-up in armature space
    turned.rotation_euler = (math.pi / 2, 0, 0)  # ...and the object stands them up again
    for obj in (upright, turned):
        bpy.context.view_layer.objects.active = obj
        assert bpy.ops.marionette.import_motion(filepath=str(bandai_bvh)) == {"FINISHED"}
    for f in (1, 60, 150):
        scene.frame_set(f)
        for bone in ("head", "left_wrist", "right_ankle", "pelvis"):
            a = upright.matrix_world @ upright.pose.bones[bone].head
            b = turned.matrix_world @ turned.pose.bones[bone].head
            assert (a - b).length < 1e-3, (f, bone, a, b)


@pytest.mark.parametrize("kind", ["CANONICAL", "RIGIFY"])
def test_root_motion_on_the_hips_on_the_object_or_in_place(ext, scene, bandai_bvh, kind):
    bpy.ops.marionette.add_character(character_type=kind)
    obj = bpy.context.view_layer.objects.active
    obj.location = (2.0, -1.0, 0.0)
    obj.rotation_euler = (0, 0, 0.5)  # turned in the scene: travel follows its facing
    pelvis = "pelvis" if kind == "CANONICAL" else "spine"
    paths = {}
    for mode in ("HIP", "OBJECT", "IN_PLACE"):
        scene.marionette.root_motion = mode
        obj.location = (2.0, -1.0, 0.0)
        scene.frame_set(1)
        assert bpy.ops.marionette.import_motion(filepath=str(bandai_bvh)) == {"FINISHED"}
        track = []
        for f in (1, 100, 195):
            scene.frame_set(f)
            track.append((np.array(obj.matrix_world @ obj.pose.bones[pelvis].head), np.array(obj.location)))
        paths[mode] = track
    hip, on_obj, in_place = paths["HIP"], paths["OBJECT"], paths["IN_PLACE"]
    assert np.linalg.norm(hip[-1][0][:2] - hip[0][0][:2]) > 1.0, "the walk travels"
    for (h, _), (o, loc) in zip(hip, on_obj):
        assert np.linalg.norm(h - o) < 1e-3, "same world path, keyed on the object"
    assert np.linalg.norm(on_obj[-1][1] - on_obj[0][1]) > 1.0, "the object moves"
    assert all(np.allclose(loc, (2.0, -1.0, 0.0)) for _, loc in hip + in_place), "the object stays put"
    assert np.linalg.norm(in_place[-1][0][:2] - in_place[0][0][:2]) < 0.15, "on the spot"
