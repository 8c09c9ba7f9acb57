"""Edit Parts on real rigs: chosen parts regenerated in a range, every other channel's keys bit for bit."""
import importlib
import json

import numpy as np
import pytest

import bpy

WAVE = "a person waves both hands"


@pytest.fixture
def mods(ext):
    import torch

    torch.set_num_threads(1)
    return (importlib.import_module(ext.__name__ + ".bridge"), importlib.import_module(ext.__name__ + ".bridge.edit"))


def _walk(ext, seconds=3.0):
    from training import data

    if data.bandai_file() is None:
        pytest.skip("../shared/data is not on this machine")
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    clip = retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(24)
    return clip.slice(0, int(seconds * 24))


def _rig(kind):
    import addon_utils

    if kind == "quaternius_human_male.glb":
        from training.data import shared_data_dir

        path = shared_data_dir().parent / "rigs" / kind
        if not path.is_file():
            pytest.skip("../shared/rigs is not on this machine")
        addon_utils.enable("io_scene_gltf2", default_set=True)
        bpy.ops.import_scene.gltf(filepath=str(path))
        obj = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    else:
        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
        obj = bpy.context.view_layer.objects.active
        if kind == "rigify_generated_rig":
            bpy.ops.pose.rigify_generate()
            obj = bpy.context.view_layer.objects.active
    bpy.context.view_layer.objects.active = obj
    return obj


def _source(ext, scene, mods, kind):
    bridge, _ = mods
    scene.render.fps = 24
    obj = _rig(kind)
    action = bridge.write_clip(obj, _walk(ext), "walk", 1, fps=24.0)
    s = scene.marionette
    s.steps, s.guidance = 4, 2.5
    return obj, action


def _keys(bridge, action, obj):
    out = {}
    for fc in bridge.action_fcurves(action, obj):
        v = np.zeros(len(fc.keyframe_points) * 2)
        fc.keyframe_points.foreach_get("co", v)
        out[(fc.data_path, fc.array_index)] = v.reshape(-1, 2)
    return out


def _fc(bridge, action, obj):
    return {(fc.data_path, fc.array_index): fc for fc in bridge.action_fcurves(action, obj)}


def _check_edit(mods, obj, src, new, span, joints, root=False):
    """Kept channels: the same keys bit for bit; edited ones: the same values outside the range, new inside."""
    bridge, bridge_edit = mods
    ch = bridge_edit.RigChannels(obj)
    before, after = _keys(bridge, src, obj), _keys(bridge, new, obj)
    old, nfc = _fc(bridge, src, obj), _fc(bridge, new, obj)
    a, b = span
    first, last = bridge_edit.key_range(src, obj)
    outside = np.r_[np.arange(first, a), np.arange(b + 1, last + 1)]
    edited, moved = 0, 0.0
    for key, k in before.items():
        bone, channel = bridge_edit._parse(key[0])
        if ch.is_edited(bone, channel, set(joints), root):
            edited += 1
            v0 = np.array([old[key].evaluate(f) for f in outside])
            v1 = np.array([nfc[key].evaluate(f) for f in outside])
            assert np.abs(v1 - v0).max(initial=0.0) < 1e-5, f"{key} changed outside the range"
            inside = np.arange(a, b + 1)
            moved = max(moved, np.abs(np.array([nfc[key].evaluate(f) - old[key].evaluate(f) for f in inside])).max())
        else:
            assert np.array_equal(after[key], k), f"kept channel {key} changed"
    assert edited > 0 and moved > 0.05, "the edited parts were regenerated"
    return edited


@pytest.mark.parametrize("kind", ["rigify_metarig", "rigify_generated_rig", "quaternius_human_male.glb"])
def test_upper_body_edit_keeps_every_other_channel_bit_for_bit(ext, scene, mods, kind):
    bridge, bridge_edit = mods
    obj, src = _source(ext, scene, mods, kind)
    before = _keys(bridge, src, obj)
    s = obj.marionette_edit
    s.parts = [p.name == "upper_body" for p in importlib.import_module(ext.__name__ + ".inference.body.skeleton").BODY_PARTS]
    s.use_whole_action, s.frame_start, s.frame_end = False, 20, 50
    s.prompt, s.seed = WAVE, 3
    assert bpy.ops.marionette.edit_parts() == {"FINISHED"}
    new = obj.animation_data.action
    assert new != src and src.use_fake_user and src.name in bpy.data.actions
    assert all(np.array_equal(v, _keys(bridge, src, obj)[k]) for k, v in before.items()), "the original is untouched"
    joints = importlib.import_module(ext.__name__ + ".inference.generation.edit").EditedParts.from_parts(["upper_body"]).joints
    _check_edit(mods, obj, src, new, (20, 50), joints)
    rec = json.loads(new["marionette_edit"])
    assert rec["parts"] == ["upper_body"] and rec["frame_range"] == [20, 50] and rec["prompt"] == WAVE
    assert rec["seed"] == 3 and rec["source_action"] == src.name
    # "undo": the original is still the animator's action, and playing it again shows it as it was
    obj.animation_data.action = src
    assert _keys(bridge, src, obj).keys() == before.keys()


@pytest.mark.parametrize("kind", ["rigify_metarig", "quaternius_human_male.glb"])
def test_selected_bones_are_the_parts_regenerated(ext, scene, mods, kind):
    bridge, bridge_edit = mods
    obj, src = _source(ext, scene, mods, kind)
    ch = bridge_edit.RigChannels(obj)
    arm = [b for j in ("right_shoulder", "right_elbow", "right_wrist") for b in ch.bones_of_joint()[j]]
    for pb in obj.pose.bones:
        sel = pb.name in arm
        if hasattr(pb, "select"):
            pb.select = sel
        else:
            pb.bone.select = sel
    s = obj.marionette_edit
    s.use_selected_bones, s.prompt, s.use_whole_action = True, "a person raises the right hand", True
    assert bpy.ops.marionette.edit_parts() == {"FINISHED"}
    new = obj.animation_data.action
    first, last = bridge_edit.key_range(src, obj)
    _check_edit(mods, obj, src, new, (int(first), int(last)), ("right_shoulder", "right_elbow", "right_wrist"))
    assert json.loads(new["marionette_edit"])["bones"] == sorted(arm, key=[p.name for p in obj.pose.bones].index)


def test_lower_body_edit_runs_under_the_kept_upper_body(ext, scene, mods):
    """Keep a walk's upper body and regenerate the legs and root path with "runs forward" from frame 20
    to the end: the upper body's keys stay bit for bit, everything before frame 20 is as it was, and
    the hips now cover ground faster than the walk did."""
    bridge, bridge_edit = mods
    obj, src = _source(ext, scene, mods, "rigify_metarig")
    s = obj.marionette_edit
    s.parts = [p.name == "lower_body" for p in importlib.import_module(ext.__name__ + ".inference.body.skeleton").BODY_PARTS]
    first, last = (int(v) for v in bridge_edit.key_range(src, obj))
    s.use_whole_action, s.frame_start, s.frame_end = False, 20, last
    s.prompt, s.seed = "a person runs forward", 0
    assert bpy.ops.marionette.edit_parts() == {"FINISHED"}
    new = obj.animation_data.action
    edited = importlib.import_module(ext.__name__ + ".inference.generation.edit").EditedParts.from_parts(["lower_body"])
    _check_edit(mods, obj, src, new, (20, last), edited.joints, root=True)
    hips = bridge.armature_alignment(obj).bone_map.joints["pelvis"]

    def speed(action):
        obj.animation_data.action = action
        pos = []
        for f in (30, last):
            scene.frame_set(f)
            pos.append(np.array(obj.matrix_world @ obj.pose.bones[hips].head))
        return np.linalg.norm((pos[1] - pos[0])[:2]) / ((last - 30) / 24)

    assert speed(new) > 1.3 * speed(src)


def _datablocks():
    return {n: len(getattr(bpy.data, n)) for n in ("actions", "objects", "armatures")}


def _standing(ext, seconds=6.0):
    from training import data

    path = data.bandai_file("dataset-2_wave-both-hands_normal_001.bvh")
    if path is None:
        pytest.skip("../shared/data is not on this machine")
    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    clip = retarget.bvh_to_canonical(bvh.read_bvh(path)).resample(24)
    return clip.slice(0, min(clip.num_frames, int(seconds * 24)))


@pytest.mark.parametrize("kind,carry", [("rigify_metarig", True), ("rigify_metarig", False),
                                        ("rigify_generated_rig", True)])
def test_a_walk_edited_into_the_middle_of_a_standing_action_does_not_jump_back(ext, scene, mods, kind, carry):
    """Legs and root path regenerated with "walks forward" on frames 30-90 of a 6-s action where the
    character stands waving both hands: the hips travel, and at frame 91 they do not jump back to
    where the character stood. With Move the Rest Along the frames after the range play where the
    walk arrived (their root keys moved, on the same frames); without it the walk comes back by frame
    90 and the keys after it are the animator's, unchanged. Frames before the range and every kept
    channel stay bit for bit either way."""
    bridge, bridge_edit = mods
    scene.render.fps = 24
    obj = _rig(kind)
    src = bridge.write_clip(obj, _standing(ext), "stand", 1, fps=24.0)
    scene.marionette.steps, scene.marionette.guidance = 6, 2.5
    before = _keys(bridge, src, obj)
    s = obj.marionette_edit
    s.parts = [p.name == "lower_body" for p in importlib.import_module(ext.__name__ + ".inference.body.skeleton").BODY_PARTS]
    s.use_whole_action, s.frame_start, s.frame_end = False, 30, 90
    s.prompt, s.seed, s.carry_rest = "a person walks forward", 0, carry
    assert bpy.ops.marionette.edit_parts() == {"FINISHED"}
    new = obj.animation_data.action
    assert all(np.array_equal(v, _keys(bridge, src, obj)[k]) for k, v in before.items()), "the original is untouched"
    ch = bridge_edit.RigChannels(obj)
    joints = set(importlib.import_module(ext.__name__ + ".inference.generation.edit").EditedParts.from_parts(
        ["lower_body"]).joints)
    after, old = _keys(bridge, new, obj), _fc(bridge, src, obj)
    nfc = _fc(bridge, new, obj)
    first, last = (int(v) for v in bridge_edit.key_range(src, obj))
    for key, k in before.items():
        bone, channel = bridge_edit._parse(key[0])
        if not ch.is_edited(bone, channel, joints, True):
            assert np.array_equal(after[key], k), f"kept channel {key} changed"
        else:
            v0 = np.array([old[key].evaluate(f) for f in range(first, 30)])
            v1 = np.array([nfc[key].evaluate(f) for f in range(first, 30)])
            assert np.abs(v1 - v0).max(initial=0.0) < 1e-5, f"{key} changed before the range"
            assert np.array_equal(after[key][after[key][:, 0] > 91, 0], k[k[:, 0] > 91, 0]), \
                f"{key}: the keys after the range are on the frames they were"
    hips = bridge.armature_alignment(obj).bone_map.joints["pelvis"]

    def hip(action, frames):
        obj.animation_data.action = action
        out = []
        for f in frames:
            scene.frame_set(f)
            out.append(np.array(obj.matrix_world @ obj.pose.bones[hips].head))
        return np.array(out)

    path, stood = hip(new, range(25, last + 1)), hip(src, range(25, last + 1))
    step = np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1)  # step[i]: frame 25+i -> 26+i
    leg = float(np.linalg.norm(np.array(obj.pose.bones[hips].head)))  # about a leg's length: the hips' height
    # a brisk walk covers under 0.1 leg lengths a frame at 24 fps; a jump back covers the whole walk
    assert step.max() < 0.12 * leg, f"the hips move {step.max():.2f} in one frame (frame {25 + step.argmax()})"
    travelled = np.linalg.norm(path[90 - 25, :2] - path[30 - 25, :2])
    if carry:
        assert travelled > 0.8 * leg, "the legs walked the character forward"
        offset = path[91 - 25:, :2] - stood[91 - 25:, :2]
        assert np.linalg.norm(offset[0]) > 0.5 * leg, "the rest of the action moved with the walk"
    else:
        assert np.abs(path[91 - 25:] - stood[91 - 25:]).max() < 1e-4, "the rest plays where it stood"


def test_bad_input_gets_a_clear_message_and_changes_nothing(ext, scene, mods):
    bridge, _ = mods
    obj, src = _source(ext, scene, mods, "rigify_metarig")
    s = obj.marionette_edit
    s.prompt = WAVE

    def refused(words):
        before, keys = _datablocks(), _keys(bridge, src, obj)
        with pytest.raises(RuntimeError, match=words):
            bpy.ops.marionette.edit_parts()
        assert _datablocks() == before and obj.animation_data.action == src
        k2 = _keys(bridge, src, obj)
        assert k2.keys() == keys.keys() and all(np.array_equal(k2[k], v, equal_nan=True) for k, v in keys.items())

    s.parts = [False] * len(s.parts)
    refused("Choose the body parts")
    s.use_selected_bones = True
    for pb in obj.pose.bones:
        (pb if hasattr(pb, "select") else pb.bone).select = pb.name == "breast.L"  # maps to no joint
    refused("play no body part")
    for pb in obj.pose.bones:
        (pb if hasattr(pb, "select") else pb.bone).select = False
    refused("No bones are selected")
    s.use_selected_bones, s.parts[0] = False, True
    s.use_whole_action, s.frame_start, s.frame_end = False, 50, 400
    refused("outside the action")
    s.use_whole_action = True
    fc = next(iter(bridge.action_fcurves(src, obj)))
    v = fc.keyframe_points[5].co[1]
    fc.keyframe_points[5].co[1] = float("nan")
    refused("not numbers")
    fc.keyframe_points[5].co[1] = v
    for frames in ((), (1,)):  # an empty and a one-frame action
        act = bpy.data.actions.new("short")
        obj.animation_data.action = act
        for f in frames:
            obj.pose.bones[0].keyframe_insert("location", frame=f)
        before = _datablocks()
        with pytest.raises(RuntimeError, match="empty or one frame"):
            bpy.ops.marionette.edit_parts()
        assert _datablocks() == before and obj.animation_data.action == act
    obj.animation_data.action = src
