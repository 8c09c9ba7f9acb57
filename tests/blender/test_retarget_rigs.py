"""A real walk retargeted onto every test rig: CC0 characters (RobotExpressive included), Rigify's
metarig and generated rig, BVH-built armatures. Measured on the pose Blender evaluates from the keys."""
import importlib

import numpy as np
import pytest

import bpy

from benchmarks.retarget_bench import GLB_RIGS, RIGS, load_control_rigs, load_rigs, measure_on_rig


@pytest.fixture(scope="module")
def rigs(ext):
    import addon_utils

    from scripts.blender_env import reset_scene
    from training import data

    if data.bandai_file() is None or not RIGS.is_dir():
        pytest.skip("../shared/data or ../shared/rigs is not on this machine")
    reset_scene()
    files = [data.bandai_file("dataset-2_walk_normal_001.bvh"), data.cmu_dir() / "bvh_cgspeed" / "02_01.bvh"]
    return load_rigs(bpy, addon_utils, reset_scene, files) + load_control_rigs(bpy, addon_utils)


@pytest.fixture(scope="module")
def walk(ext):
    from training import data

    bvh = importlib.import_module(ext.__name__ + ".inference.body.bvh")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    return retarget.bvh_to_canonical(bvh.read_bvh(data.bandai_file())).resample(24)


def test_every_test_rig_is_loaded(rigs):
    labels = [label for label, _ in rigs]
    assert len(labels) == len(GLB_RIGS) + 6
    assert "m2m_rig_human.glb, A-pose rest" in labels
    assert {"rigify_metarig", "rigify_generated_rig", "quaternius_robot_expressive.glb"} <= set(labels)


def test_a_pose_rig_really_rests_in_an_a_pose(ext, rigs):
    obj = dict(rigs)["m2m_rig_human.glb, A-pose rest"]
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    joints = bridge.armature_alignment(obj).bone_map.joints
    for side in ("left", "right"):
        shoulder = obj.matrix_world @ obj.data.bones[joints[f"{side}_shoulder"]].head_local
        wrist = obj.matrix_world @ obj.data.bones[joints[f"{side}_wrist"]].head_local
        drop = (shoulder - wrist).z / (wrist - shoulder).length
        assert 0.5 < drop < 0.9  # arms about 45 degrees below horizontal


def test_walk_lands_on_every_rig(ext, rigs, walk):
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    rq = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget_quality")
    for label, obj in rigs:
        q = measure_on_rig(bpy, bridge, rq, obj, walk.slice(0, 96))
        # every rig here has all 22 roles except Bandai-Namco's skeleton (no middle spine joint) and
        # RobotExpressive (no toe bones)
        assert q.coverage >= (21 / 22 if "dataset" in label else 20 / 22 if "robot" in label else 1.0), label
        assert q.dir_err_mean_deg < 5 and q.dir_err_worst_bone_deg < 10, (label, q)
        assert q.round_trip_err < 1e-3, (label, q.round_trip_err)
        assert q.foot_slide_cm < 1.0, (label, q.foot_slide_cm)


def _keys(bridge, action, obj) -> dict:
    return {(fc.data_path, fc.array_index): np.array([k.co[1] for k in fc.keyframe_points])
            for fc in bridge.action_fcurves(action, obj)}


def test_generated_rigify_rig_is_keyed_on_its_controls(ext, rigs, walk):
    """FK controls carry the motion and the limbs switch to FK; the ORG/DEF bones get no keys unless
    the animator asks for deform-bone keys too. The rig's own pose is left as it was."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    obj = dict(rigs)["rigify_generated_rig"]
    before = {pb.name: tuple(pb.matrix_basis.col[3]) + tuple(pb.rotation_quaternion) for pb in obj.pose.bones}
    keys = _keys(bridge, bridge.write_clip(obj, walk.slice(0, 24), "fk", 1, rig_target="CONTROLS"), obj)
    bones = {path.split('"')[1] for path, _ in keys}
    assert {"torso", "thigh_fk.L", "shin_fk.R", "upper_arm_fk.L", "hand_fk.R", "head"} <= bones
    assert not any(b.startswith(("ORG-", "DEF-", "MCH-")) for b in bones)
    for limb in ("upper_arm_parent.L", "upper_arm_parent.R", "thigh_parent.L", "thigh_parent.R"):
        assert (keys[(f'pose.bones["{limb}"]["IK_FK"]', 0)] == 1.0).all()
    after = {pb.name: tuple(pb.matrix_basis.col[3]) + tuple(pb.rotation_quaternion) for pb in obj.pose.bones}
    assert after == before
    keys = _keys(bridge, bridge.write_clip(obj, walk.slice(0, 24), "deform", 1, rig_target="DEFORM"), obj)
    bones = {path.split('"')[1] for path, _ in keys}
    assert {"thigh_fk.L", "DEF-thigh.L", "DEF-shin.L", "DEF-spine.003", "DEF-upper_arm.R"} <= bones


def test_robot_feet_outside_the_leg_chain_follow_the_legs(ext, rigs, walk):
    """RobotExpressive's feet hang from the root (IK targets): they get location keys that keep them
    on the end of the shins, frame by frame, as Blender evaluates them."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    obj = dict(rigs)["quaternius_robot_expressive.glb"]
    clip = walk.slice(0, 48)
    action = bridge.write_clip(obj, clip, "robot", 1)
    keys = _keys(bridge, action, obj)
    assert ('pose.bones["Foot.L"].location', 0) in keys and ('pose.bones["Foot.R"].location', 2) in keys
    align = bridge.armature_alignment(obj)
    _, ps = bridge.evaluated_pose(obj, action, ["LowerLeg.L", "Foot.L"], 1, clip.num_frames)
    shin = np.linalg.norm(ps[:, 1] - ps[:, 0], axis=-1)
    _, p0 = align.skeleton.rest_pose()
    rest = np.linalg.norm(p0[align.skeleton.index("Foot.L")] - p0[align.skeleton.index("LowerLeg.L")])
    assert np.abs(shin - rest).max() < 1e-3 * rest
    # and the foot really travels with the walk
    assert np.linalg.norm(ps[-1, 1] - ps[0, 1]) > 0.2 * rest


def test_keys_survive_rig_to_canonical_to_rig(ext, rigs, walk):
    """Keys written on a rig, read back to canonical and written again, are the same keys."""
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    chosen = rigs[:2] + [r for r in rigs if r[0] in ("rigify_metarig", "rigify_generated_rig",
                                                      "quaternius_robot_expressive.glb")]
    for label, obj in chosen:
        a = bridge.write_clip(obj, walk.slice(0, 40), "first", 1, foot_lock=False, rig_target="DEFORM")
        back = bridge.read_clip(obj, a, 1, 40, walk.fps)
        b = bridge.write_clip(obj, back, "second", 1, foot_lock=False, rig_target="DEFORM")
        ka, kb = _keys(bridge, a, obj), _keys(bridge, b, obj)
        assert ka.keys() == kb.keys(), label
        worst = max(np.abs(ka[k] - kb[k]).max() for k in ka)
        assert worst < 1e-3, (label, worst)


def test_generated_rig_missing_a_control_is_refused_and_nothing_is_written(ext, rigs, walk):
    bridge = importlib.import_module(ext.__name__ + ".bridge")
    retarget = importlib.import_module(ext.__name__ + ".inference.retargeting.retarget")
    rig = dict(rigs)["rigify_generated_rig"]
    broken = rig.copy()
    broken.data = rig.data.copy()
    broken.animation_data_clear()
    bpy.context.scene.collection.objects.link(broken)
    view_layer = bpy.context.view_layer
    view_layer.objects.active = broken
    bpy.ops.object.mode_set(mode="EDIT")
    broken.data.edit_bones.remove(broken.data.edit_bones["toe_fk.L"])
    bpy.ops.object.mode_set(mode="OBJECT")
    actions = set(bpy.data.actions)
    with pytest.raises(retarget.RetargetError, match="toe_fk.L"):
        bridge.write_clip(broken, walk.slice(0, 10), "refused", 1)
    assert set(bpy.data.actions) == actions
    assert broken.animation_data is None or broken.animation_data.action is None
