"""The animator's keys as data: which frames are keyed per bone and channel, with values and handles."""
import importlib

import numpy as np
import pytest

import bpy


@pytest.fixture
def bridge(ext):
    return importlib.import_module(ext.__name__ + ".bridge")


def test_partial_keys_come_back_as_exactly_those_frames_and_channels(ext, scene, bridge):
    bpy.ops.marionette.add_character(character_type="CANONICAL")
    obj = bpy.context.view_layer.objects.active
    obj.animation_data_create()
    action = bpy.data.actions.new("blocking")
    obj.animation_data.action = action
    bridge.assign_action_slot(obj, action)
    pb = obj.pose.bones
    pb["left_wrist"].rotation_mode = "QUATERNION"
    # hands keyed on 1, 10, 20; the pelvis's location on 1 and 20 only (x and z); the head's rotation on 10
    for f, angle in ((1, 0.0), (10, 0.6), (20, -0.3)):
        pb["left_wrist"].rotation_quaternion = (np.cos(angle / 2), np.sin(angle / 2), 0, 0)
        pb["left_wrist"].keyframe_insert("rotation_quaternion", frame=f)
    for f, x in ((1, 0.0), (20, 1.5)):
        pb["pelvis"].location = (x, 0.0, 0.1 * x)
        pb["pelvis"].keyframe_insert("location", index=0, frame=f)
        pb["pelvis"].keyframe_insert("location", index=2, frame=f)
    pb["head"].rotation_quaternion = (0.96, 0, 0.28, 0)
    pb["head"].keyframe_insert("rotation_quaternion", frame=10)
    keys = bridge.read_keys(action, obj)
    assert set(keys) == ({("left_wrist", "rotation_quaternion", i) for i in range(4)}
                         | {("pelvis", "location", 0), ("pelvis", "location", 2)}
                         | {("head", "rotation_quaternion", i) for i in range(4)})
    w = keys[("left_wrist", "rotation_quaternion", 1)]
    assert w.frames.tolist() == [1, 10, 20]
    assert np.allclose(w.values, np.sin(np.array([0.0, 0.6, -0.3]) / 2), atol=1e-6)
    assert w.handle_left.shape == (3, 2) and (w.handle_left[:, 0] <= w.frames).all()
    assert (w.handle_right[:, 0] >= w.frames).all() and w.interpolation == ("BEZIER",) * 3
    assert keys[("pelvis", "location", 0)].frames.tolist() == [1, 20]
    assert np.allclose(keys[("pelvis", "location", 2)].values, [0.0, 0.15])
    assert keys[("head", "rotation_quaternion", 2)].frames.tolist() == [10]
    # a frame range keeps only the keys inside it, and drops channels with none there
    mid = bridge.read_keys(action, obj, (5, 15))
    assert set(mid) == {("left_wrist", "rotation_quaternion", i) for i in range(4)} | \
        {("head", "rotation_quaternion", i) for i in range(4)}
    assert mid[("left_wrist", "rotation_quaternion", 0)].frames.tolist() == [10]
    # handles as Blender computed them, not a guess: moving one handle shows up
    fc = next(c for c in bridge.action_fcurves(action, obj)
              if c.data_path == 'pose.bones["left_wrist"].rotation_quaternion' and c.array_index == 1)
    fc.keyframe_points[1].handle_left_type = "FREE"
    fc.keyframe_points[1].handle_left = (7.0, 0.9)
    again = bridge.read_keys(action, obj)[("left_wrist", "rotation_quaternion", 1)]
    assert np.allclose(again.handle_left[1], (7.0, 0.9))
