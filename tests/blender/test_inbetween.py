"""In-betweening through the In-between operator on real rigs: the animator's keys stay exactly as
they were, frames outside the range are untouched, the motion passes through every key without a pop,
and bad input gets a message and changes nothing."""
import importlib

import numpy as np
import pytest

import bpy

from .test_extension import _draw_panels


@pytest.fixture(scope="module")
def walk(ext):
    from training import data

    if data.bandai_file() is None:
        pytest.skip("../shared/data is not on this machine")
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    return retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file("dataset-2_walk_normal_001.bvh")))


@pytest.fixture
def bridge(ext):
    import torch

    torch.set_num_threads(1)
    return importlib.import_module(ext.__name__ + ".bridge")


def _rig(kind):
    if kind == "metarig":
        bpy.ops.marionette.add_character(character_type="RIGIFY")
        return bpy.context.view_layer.objects.active
    if kind == "generated":
        import addon_utils

        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
        bpy.ops.pose.rigify_generate()
        rig = bpy.context.view_layer.objects.active
        for limb in ("upper_arm_parent.L", "upper_arm_parent.R", "thigh_parent.L", "thigh_parent.R"):
            rig.pose.bones[limb]["IK_FK"] = 1.0  # the animator blocks in FK
        return rig
    from benchmarks.retarget_bench import RIGS

    path = RIGS / "quaternius_human_male.glb"
    if not path.is_file():
        pytest.skip("../shared/rigs is not on this machine")
    before = set(bpy.data.objects)
    bpy.ops.import_scene.gltf(filepath=str(path))
    obj = next(o for o in set(bpy.data.objects) - before if o.type == "ARMATURE")
    bpy.context.view_layer.objects.active = obj
    return obj


def _blocking(bridge, obj, walk, fps, keep, frames=None):
    """The walk keyed on the rig, then every key off the frames in `keep` deleted: the animator's blocking."""
    scene = bpy.context.scene
    scene.render.fps = fps
    n = max(keep)
    action = bridge.write_clip(obj, walk.resample(fps).slice(0, n), "blocking", 1, foot_lock=False)
    for fc in bridge.action_fcurves(action, obj):
        kp = fc.keyframe_points
        for i in reversed(range(len(kp))):
            if int(round(kp[i].co[0])) not in keep:
                kp.remove(kp[i], fast=True)
        fc.update()
    action.name = "blocking"
    scene.frame_start, scene.frame_end = frames or (min(keep), max(keep))
    scene.use_preview_range = False
    return action


def _snapshot(bridge, action, obj) -> dict:
    """Every key of every channel: frame, value, both handles, their types, interpolation and key type."""
    out = {}
    for fc in bridge.action_fcurves(action, obj):
        out[(fc.data_path, fc.array_index)] = [
            (tuple(k.co), tuple(k.handle_left), tuple(k.handle_right), k.handle_left_type, k.handle_right_type,
             k.interpolation, k.type) for k in fc.keyframe_points]
    return out


def _settings(scene, **kw):
    s = scene.marionette
    s.steps, s.guidance = 4, 2.5
    ib = s.inbetween
    ib.use_scene_range, ib.prompt, ib.seed, ib.variations, ib.output, ib.key_every = True, "", 0, 1, "NEW_ACTION", 1
    for k, v in kw.items():
        setattr(ib, k, v)
    return ib


def _animator_keys_kept(before: dict, after_action, bridge, obj, exact_handles=False) -> None:
    after = {(fc.data_path, fc.array_index): fc for fc in bridge.action_fcurves(after_action, obj)}
    for key, pts in before.items():
        by_frame = {k.co[0]: k for k in after[key].keyframe_points}
        for co, hl, hr, tl, tr, interp, kind in pts:
            k = by_frame[co[0]]
            assert k.co[1] == co[1], (key, co)  # bit for bit (both float32 in Blender)
            assert (k.interpolation, k.handle_left_type, k.handle_right_type, k.type) == (interp, tl, tr, kind), key
            assert after[key].evaluate(co[0]) == pytest.approx(co[1], abs=1e-6), key
            if exact_handles or tl in ("FREE", "ALIGNED"):
                assert tuple(k.handle_left) == hl and tuple(k.handle_right) == hr, key


def _jumps(bridge, obj, action, fps, n):
    from benchmarks.evaluator import velocity_jumps

    return velocity_jumps(bridge.read_clip(obj, action, 1, n, fps).positions())


@pytest.mark.parametrize("kind,fps", [("metarig", 24), ("generated", 30), ("quaternius", 24), ("quaternius", 30)])
def test_full_pose_keys_stay_exactly_and_the_motion_passes_through_them(ext, scene, bridge, walk, kind, fps):
    obj = _rig(kind)
    keep = {1, fps + 1, 2 * fps + 1}
    blocking = _blocking(bridge, obj, walk, fps, keep)
    before = _snapshot(bridge, blocking, obj)
    _settings(scene)
    n_actions = len(bpy.data.actions)
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    result = obj.animation_data.action
    assert result != blocking and len(bpy.data.actions) == n_actions + 1
    assert blocking.use_fake_user and _snapshot(bridge, blocking, obj) == before, "the original is untouched"
    _animator_keys_kept(before, result, bridge, obj)
    # every frame between the keys is keyed on the channels the model drives, as GENERATED keys
    fc = next(c for c in bridge.action_fcurves(result, obj) if c.data_path.endswith("rotation_quaternion"))
    gen = sorted(k.co[0] for k in fc.keyframe_points if k.type == "GENERATED")
    assert gen == [f for f in range(2, 2 * fps + 1) if f not in keep]
    # the in-betweens move (not a hold), and pass through the middle key without a pop: no
    # velocity change there larger than the walk's own largest
    n = 2 * fps + 1
    moved = _jumps(bridge, obj, result, fps, n)
    real = walk.resample(fps).slice(0, n).positions()
    from benchmarks.evaluator import velocity_jumps

    assert moved[fps - 1] <= 1.5 * velocity_jumps(real).max() + 1e-3
    pos = bridge.read_clip(obj, result, 1, n, fps).positions()
    assert np.linalg.norm(pos[fps // 2] - pos[0], axis=-1).max() > 0.05


def test_partial_and_root_only_keys_metarig_30fps(ext, scene, bridge, walk):
    """Hands on the middle frame, the hips' location alone on a frame of its own: only those channels are
    keys there, and they stay; everything else is the model's."""
    obj = _rig("metarig")
    blocking = _blocking(bridge, obj, walk, 30, {1, 61})
    pb = obj.pose.bones
    scene.frame_set(31)
    pb["hand.L"].rotation_quaternion = (0.9, 0.3, 0.2, 0.1)
    pb["hand.L"].keyframe_insert("rotation_quaternion", frame=31)
    pb["spine"].location = (0.05, -0.4, 0.02)
    pb["spine"].keyframe_insert("location", frame=46)
    before = _snapshot(bridge, blocking, obj)
    _settings(scene)
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    result = obj.animation_data.action
    _animator_keys_kept(before, result, bridge, obj)
    scene.frame_set(46)
    assert tuple(obj.pose.bones["spine"].location) == pytest.approx((0.05, -0.4, 0.02), abs=1e-6)
    # the bones not keyed on frame 31 get the model's keys there; the hand keeps the animator's
    keys = bridge.read_keys(result, obj, (31, 31))
    assert keys[("hand.L", "rotation_quaternion", 1)].key_types == ("KEYFRAME",)
    assert keys[("thigh.L", "rotation_quaternion", 1)].key_types == ("GENERATED",)


def test_root_only_keys_drive_the_whole_body(ext, scene, bridge, walk):
    obj = _rig("metarig")
    scene.render.fps = 24
    obj.animation_data_create()
    action = bpy.data.actions.new("path")
    obj.animation_data.action = action
    pb = obj.pose.bones["spine"]
    for f, y in ((1, 0.0), (49, -1.5)):
        pb.location = (0.0, y, 0.0)
        pb.keyframe_insert("location", frame=f)
    scene.frame_start, scene.frame_end = 1, 49
    before = _snapshot(bridge, action, obj)
    _settings(scene)
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    result = obj.animation_data.action
    _animator_keys_kept(before, result, bridge, obj)
    keyed = {fc.data_path for fc in bridge.action_fcurves(result, obj)}
    assert 'pose.bones["thigh.L"].rotation_quaternion' in keyed and 'pose.bones["upper_arm.R"].rotation_quaternion' in keyed


def test_in_place_changes_only_the_in_between_frames_and_leaves_outside_the_range_alone(ext, scene, bridge, walk):
    obj = _rig("metarig")
    blocking = _blocking(bridge, obj, walk, 24, {1, 13, 25, 49, 73}, frames=(13, 49))
    before = _snapshot(bridge, blocking, obj)
    _settings(scene, output="IN_PLACE", key_every=4)
    n_actions = len(bpy.data.actions)
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    assert obj.animation_data.action == blocking and len(bpy.data.actions) == n_actions
    _animator_keys_kept(before, blocking, bridge, obj)
    after = _snapshot(bridge, blocking, obj)
    for key, pts in after.items():
        old_frames = {p[0][0] for p in before.get(key, [])}
        new = [p for p in pts if p[0][0] not in old_frames]
        frames = sorted(p[0][0] for p in new)
        assert all(p[6] == "GENERATED" for p in new), key
        assert all(13 < f < 49 for f in frames), (key, frames)  # outside the range: nothing new
        assert set(frames) <= {17, 21, 29, 33, 37, 41, 45}, (key, frames)  # every 4th frame from each key
    # outside the range the action plays exactly as before
    assert all(after[k][:1] == before[k][:1] and after[k][-1:] == before[k][-1:] for k in before)


def test_a_ten_second_gap_is_filled(ext, scene, bridge, walk):
    obj = _rig("metarig")
    blocking = _blocking(bridge, obj, walk, 24, {1, 49})
    for fc in bridge.action_fcurves(blocking, obj):  # the second pose 10 s after the first
        k = fc.keyframe_points[-1]
        k.co.x, k.handle_left.x, k.handle_right.x = 241, k.handle_left.x + 192, k.handle_right.x + 192
        fc.update()
    scene.frame_end = 241
    before = _snapshot(bridge, blocking, obj)
    _settings(scene)
    scene.marionette.steps = 10  # the panel's default: chained windows need it (4 steps snap after a key)
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    result = obj.animation_data.action
    _animator_keys_kept(before, result, bridge, obj)
    pos = bridge.read_clip(obj, result, 1, 241, 24.0).positions()
    assert np.isfinite(pos).all()
    assert np.linalg.norm(pos[1:] - pos[:-1], axis=-1).max() < 0.3  # no snap where windows join


def test_original_is_unchanged_in_a_saved_and_reloaded_file(ext, scene, bridge, walk, tmp_path):
    """The bpy module cannot undo: the animator's action, saved after an In-between and reloaded, is as it was."""
    obj = _rig("metarig")
    blocking = _blocking(bridge, obj, walk, 24, {1, 25, 49})
    before = _snapshot(bridge, blocking, obj)
    _settings(scene)
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}
    path, name = str(tmp_path / "inbetween.blend"), obj.name
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    obj = bpy.data.objects[name]
    assert _snapshot(bridge, bpy.data.actions["blocking"], obj) == before
    assert "blocking in-between" in bpy.data.actions


def _refused(bridge, obj, match):
    actions = repr({a.name: _snapshot(bridge, a, obj) for a in bpy.data.actions})  # repr: NaN equals NaN
    current = obj.animation_data.action if obj.animation_data else None
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.marionette.inbetween()
    assert repr({a.name: _snapshot(bridge, a, obj) for a in bpy.data.actions}) == actions
    assert (obj.animation_data.action if obj.animation_data else None) == current


def test_bad_input_gets_a_message_and_changes_nothing(ext, scene, bridge, walk):
    obj = _rig("metarig")
    blocking = _blocking(bridge, obj, walk, 24, {1, 25})
    _settings(scene)
    scene.frame_start, scene.frame_end = 100, 200
    _refused(bridge, obj, "no keys between frames 100 and 200")
    scene.frame_start, scene.frame_end = 1, 20
    _refused(bridge, obj, "at least two keyed frames")
    # keys only on a bone Marionette does not animate (a finger)
    scene.frame_start, scene.frame_end = 30, 60
    finger = obj.pose.bones["f_index.01.L"]
    for f in (30, 60):
        finger.keyframe_insert("rotation_quaternion", frame=f)
    _refused(bridge, obj, "only on bones Marionette does not animate")
    # NaN key values
    scene.frame_start, scene.frame_end = 1, 25
    fc = next(c for c in bridge.action_fcurves(blocking, obj) if c.data_path.endswith('["thigh.L"].rotation_quaternion'))
    good = tuple(fc.keyframe_points[0].co)
    fc.keyframe_points[0].co = (good[0], float("nan"))
    _refused(bridge, obj, "NaN")
    fc.keyframe_points[0].co = good
    # a locked channel
    fc.lock = True
    _refused(bridge, obj, "locked channels")
    fc.lock = False
    assert bpy.ops.marionette.inbetween() == {"FINISHED"}


def test_a_linked_action_is_refused(ext, scene, bridge, walk, tmp_path):
    obj = _rig("metarig")
    _blocking(bridge, obj, walk, 24, {1, 25})
    lib = str(tmp_path / "lib.blend")
    bpy.data.libraries.write(lib, {bpy.data.actions["blocking"]})
    with bpy.data.libraries.load(lib, link=True) as (src, dst):
        dst.actions = ["blocking"]
    linked = next(a for a in bpy.data.actions if a.library is not None)
    obj.animation_data.action = linked
    bridge.assign_action_slot(obj, linked)
    _settings(scene)
    _refused(bridge, obj, "linked from another file")


def test_range_from_selected_keys_and_the_panel_draws(ext, scene, bridge, walk):
    obj = _rig("metarig")
    blocking = _blocking(bridge, obj, walk, 24, {1, 25, 49, 73})
    for fc in bridge.action_fcurves(blocking, obj):
        for k in fc.keyframe_points:
            k.select_control_point = k.co[0] in (25, 49)
    assert bpy.ops.marionette.inbetween_range_from_keys() == {"FINISHED"}
    s = scene.marionette.inbetween
    assert (s.use_scene_range, s.frame_start, s.frame_end) == (False, 25, 49)
    drawn, errors = _draw_panels()
    assert not errors and "MARIONETTE_PT_inbetween" in drawn
